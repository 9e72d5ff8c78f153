"""The ClickHouse schema, as numbered migrations derived from :data:`~monitor.storage.tables.TABLES`.

Every table is created with ``IF NOT EXISTS`` and each migration is recorded
in ``schema_migrations``, so opening a store twice, or from two workers at
once, is harmless. Add a table by giving it the next ``since``; add a column
to a shipped table with ``Column(..., since=N)`` and a migration ``N``; never
change a migration that has shipped.

Tables keep one row per deterministic id (``ReplacingMergeTree``): a retried
insert or a replayed file adds no logical rows. Until a background merge runs,
read with ``FINAL`` (``driftwatch query`` sets ``final=1`` for you).

The column contract of ``alerts`` (dashboards and playbooks rely on it) is
``TABLES["alerts"]``.
"""

from __future__ import annotations

from dataclasses import dataclass

from monitor.storage.tables import MIGRATIONS_TABLE as _MIGRATIONS_TABLE
from monitor.storage.tables import TABLES

__all__ = ["MIGRATIONS", "MIGRATIONS_TABLE", "SCHEMA_VERSION", "Migration", "ddl"]


@dataclass(frozen=True)
class Migration:
    version: int
    description: str
    statements: tuple[str, ...]


MIGRATIONS_TABLE = _MIGRATIONS_TABLE.create()

# What each migration is called in schema_migrations (a shipped store keeps these rows).
_DESCRIPTIONS = {
    1: "events, window_metrics, alerts, dead_letters",
    2: "signatures, trigger_candidates",
    3: "incidents, acknowledgements, rollback_decisions",
    4: "service_metrics",
    5: "events.content_hash, dead_letters.raw_hash",
    6: "alerts.revision",
}


def _statements(version: int) -> tuple[str, ...]:
    created = tuple(table.create() for table in TABLES.values() if table.since == version)
    added = tuple(statement for table in TABLES.values() for statement in table.added_in(version))
    return created + added


MIGRATIONS: tuple[Migration, ...] = tuple(
    Migration(version, description, _statements(version)) for version, description in _DESCRIPTIONS.items()
)
SCHEMA_VERSION = MIGRATIONS[-1].version


def ddl() -> str:
    """Every statement of the current schema, as one SQL script."""
    statements = [MIGRATIONS_TABLE]
    for migration in MIGRATIONS:
        header = f"-- migration {migration.version}: {migration.description}\n"
        statements.append(header + migration.statements[0])
        statements.extend(migration.statements[1:])
    return ";\n\n".join(statements) + ";\n"
