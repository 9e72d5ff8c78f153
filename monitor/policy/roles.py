"""Least-privilege ClickHouse users for a server deployment.

``driftwatch schema --roles`` prints SQL for three roles, each with a user:

- ``driftwatch_writer``: the replay and streaming workers. INSERT on the
  tables they write, nothing else except the id columns the writers read to
  stay idempotent (the sink drops alerts already stored; incidents are merged
  with their stored row; rollback decisions are written once).
- ``driftwatch_analyst``: SELECT on every table, plus INSERT on
  ``acknowledgements`` so an analyst can acknowledge or resolve.
- ``driftwatch_grafana``: SELECT on the tables the dashboards read, and on
  ``events`` and ``dead_letters`` without the raw-text columns.

The schema itself is applied by an administrator (``driftwatch schema --apply``).

Examples
--------
>>> sql = roles_sql("driftwatch")
>>> "GRANT INSERT ON driftwatch.alerts TO driftwatch_writer_role;" in sql
True
>>> "GRANT SELECT ON driftwatch.* TO driftwatch_analyst_role;" in sql
True
"""

from __future__ import annotations

import re
from types import MappingProxyType

from monitor.errors import ConfigError
from monitor.storage.tables import TABLES

__all__ = ["DASHBOARD_TABLES", "WRITER_TABLES", "role_statements", "roles_sql"]

WRITER_TABLES = ("events", "window_metrics", "alerts", "dead_letters", "signatures", "trigger_candidates",
                 "incidents", "acknowledgements", "rollback_decisions", "service_metrics")
# Read whole by the dashboards; none holds raw model text.
DASHBOARD_TABLES = ("alerts", "window_metrics", "trigger_candidates", "incidents", "acknowledgements",
                    "rollback_decisions", "service_metrics", "signatures")
# Column-level grants on tables that can hold raw text (store_text, dead-letter previews).
_DASHBOARD_COLUMNS = MappingProxyType({
    "events": tuple(c for c in TABLES["events"].insert_columns if c not in ("input", "output")),
    "dead_letters": tuple(c for c in TABLES["dead_letters"].insert_columns if c != "raw"),
})
_WRITER_READS = MappingProxyType({"alerts": ("alert_id",), "rollback_decisions": ("decision_id",),
                 "incidents": ("incident_id", "model_id", "model_version", "family", "severity", "window_start",
                               "window_end", "first_ts", "last_ts", "alert_count", "alert_ids"),
                 "schema_migrations": ("version",)})
_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def roles_sql(database: str = "default") -> str:
    """The CREATE ROLE / CREATE USER / GRANT script for ``database``."""
    if not _IDENTIFIER.match(database):
        raise ConfigError(f"database must be a plain identifier; got {database!r}")
    db = database
    lines = [
        f"-- driftwatch least-privilege roles for database {db}, to run as an administrator.",
        "-- Replace each CHANGE-ME password (or use IDENTIFIED WITH sha256_hash BY '<hex>').",
        "CREATE ROLE IF NOT EXISTS driftwatch_writer_role;",
        "CREATE ROLE IF NOT EXISTS driftwatch_analyst_role;",
        "CREATE ROLE IF NOT EXISTS driftwatch_grafana_role;",
        "",
        "-- writer: INSERT only, plus the id columns it reads to keep retried writes idempotent",
    ]
    lines += [f"GRANT INSERT ON {db}.{table} TO driftwatch_writer_role;" for table in WRITER_TABLES]
    lines += [f"GRANT SELECT({', '.join(cols)}) ON {db}.{table} TO driftwatch_writer_role;"
              for table, cols in _WRITER_READS.items()]
    lines += [
        "",
        "-- analyst: read everything, and record acknowledgements",
        f"GRANT SELECT ON {db}.* TO driftwatch_analyst_role;",
        f"GRANT INSERT ON {db}.acknowledgements TO driftwatch_analyst_role;",
        "",
        "-- grafana: the dashboard tables, and no raw text",
    ]
    lines += [f"GRANT SELECT ON {db}.{table} TO driftwatch_grafana_role;" for table in DASHBOARD_TABLES]
    lines += [f"GRANT SELECT({', '.join(cols)}) ON {db}.{table} TO driftwatch_grafana_role;"
              for table, cols in _DASHBOARD_COLUMNS.items()]
    lines += [
        "",
        "CREATE USER IF NOT EXISTS driftwatch_writer IDENTIFIED WITH sha256_password BY 'CHANGE-ME';",
        "CREATE USER IF NOT EXISTS driftwatch_analyst IDENTIFIED WITH sha256_password BY 'CHANGE-ME';",
        # readonly=2: no writes, but the Grafana plugin may still set per-query settings.
        "CREATE USER IF NOT EXISTS driftwatch_grafana IDENTIFIED WITH sha256_password BY 'CHANGE-ME' "
        "SETTINGS readonly = 2;",
        # A user's granted roles are its default roles unless told otherwise.
        "GRANT driftwatch_writer_role TO driftwatch_writer;",
        "GRANT driftwatch_analyst_role TO driftwatch_analyst;",
        "GRANT driftwatch_grafana_role TO driftwatch_grafana;",
    ]
    return "\n".join(lines) + "\n"


def role_statements(database: str = "default") -> list[str]:
    """The statements of :func:`roles_sql`, one string each, comments dropped."""
    statements = []
    for chunk in roles_sql(database).split(";"):
        text = "\n".join(line for line in chunk.splitlines() if not line.lstrip().startswith("--")).strip()
        if text:
            statements.append(text)
    return statements
