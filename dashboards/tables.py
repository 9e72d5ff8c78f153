"""Table and column names for dashboard SQL, read from the storage schema.

The dashboards never spell a table or column name on their own: they ask
:func:`tables` for it, which reads the table descriptions of
:data:`monitor.storage.tables.TABLES` (columns added by later migrations
included). Renaming a column there makes
every dashboard that uses it fail to build, instead of shipping a panel that
errors in Grafana.

Examples
--------
>>> t = tables()
>>> f"SELECT {t.alerts.severity} FROM {read(t.alerts)}"
'SELECT severity FROM alerts FINAL'
>>> t.alerts.sevrity
Traceback (most recent call last):
...
monitor.errors.SchemaNameError: table alerts has no column 'sevrity'; columns: alert_id, ts, model_id, ...
"""

from __future__ import annotations

from dataclasses import dataclass

from monitor.errors import SchemaNameError
from monitor.storage.tables import TABLES

__all__ = ["SchemaNameError", "Table", "Tables", "read", "tables"]


class Table:
    """One table: ``str(table)`` is its name, attributes are its columns.

    Column names come back as plain strings, so they drop into f-strings;
    an unknown attribute raises :class:`SchemaNameError`.

    Examples
    --------
    >>> t = Table("demo", ("ts", "value"), "MergeTree")
    >>> f"SELECT {t.value} FROM {t}", t.replacing
    ('SELECT value FROM demo', False)
    """

    __slots__ = ("_columns", "_engine", "_name")

    def __init__(self, name: str, columns: tuple[str, ...], engine: str) -> None:
        self._name = name
        self._columns = columns
        self._engine = engine

    def __getattr__(self, column: str) -> str:
        if column.startswith("__"):
            raise AttributeError(column)
        if column not in self._columns:
            shown = ", ".join(self._columns[:3])
            raise SchemaNameError(f"table {self._name} has no column {column!r}; columns: {shown}, ...")
        return column

    def __str__(self) -> str:
        return self._name

    def __format__(self, spec: str) -> str:
        return format(self._name, spec)

    @property
    def replacing(self) -> bool:
        """Whether the table keeps one row per key only after a merge."""
        return self._engine == "ReplacingMergeTree"

    @property
    def column_names(self) -> tuple[str, ...]:
        return self._columns


@dataclass(frozen=True)
class Tables:
    """Every table the dashboards read, by name."""

    events: Table
    window_metrics: Table
    alerts: Table
    dead_letters: Table
    signatures: Table
    trigger_candidates: Table
    incidents: Table
    acknowledgements: Table
    rollback_decisions: Table
    service_metrics: Table


def tables() -> Tables:
    """The storage schema's tables as :class:`Tables`."""
    found = {name: Table(name, spec.column_names, spec.engine_name) for name, spec in TABLES.items()}
    wanted = Tables.__dataclass_fields__
    missing = sorted(set(wanted) - set(found))
    if missing:
        raise SchemaNameError(f"the storage schema lacks tables the dashboards read: {', '.join(missing)}")
    return Tables(**{name: found[name] for name in wanted})


def read(table: Table, alias: str = "") -> str:
    """``table [AS alias] FINAL`` for a ReplacingMergeTree, so a row stored twice counts once.

    >>> read(tables().alerts, "a")
    'alerts AS a FINAL'
    """
    named = f"{table} AS {alias}" if alias else str(table)
    return f"{named} FINAL" if table.replacing else named
