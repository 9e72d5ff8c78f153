"""The schema as data: DDL, migrations and dashboard columns all come from ``TABLES``."""

from __future__ import annotations

import dataclasses

import pytest

import dashboards.tables
import monitor.storage.schema as schema
from detectors.motifs.online import Candidate
from monitor.alerts import Alert, TriggerCandidate
from monitor.storage.sink import record_columns
from monitor.storage.store import Store
from monitor.storage.tables import TABLES, Column


def test_every_table_is_created_by_exactly_one_migration() -> None:
    created = [s.split()[5] for m in schema.MIGRATIONS for s in m.statements if s.startswith("CREATE TABLE")]
    assert sorted(created) == sorted(TABLES)
    assert all(f"-- migration {m.version}: {m.description}" in schema.ddl() for m in schema.MIGRATIONS)


def test_alert_and_candidate_rows_are_mapped_by_name() -> None:
    alert = Alert.create(ts_ms=5, model_id="m", model_version="1", detector="trigger", metric="x",
                         severity="high", score=2.0, threshold=1.0, evidence={}, discriminator="d")
    columns, names = record_columns("alerts", [alert])
    row = dict(zip(names, (c[0] for c in columns), strict=True))
    assert row["ts"] == 5 and row["alert_id"] == alert.alert_id and row["tenant_id"] == ""
    assert set(names) == {f.name.removesuffix("_ms") for f in dataclasses.fields(Alert)}
    # A candidate row is its ids and the detector's candidate, read through: every column is one of those
    # fields, and the detector keeps more (its hash, window counts) than the table stores.
    own = {f.name for f in dataclasses.fields(TriggerCandidate)} - {"found"}
    readable = own | {f.name.removesuffix("_ms") for f in dataclasses.fields(Candidate)}
    columns = set(TABLES["trigger_candidates"].insert_columns)
    assert own <= columns and columns <= readable


NEXT = schema.SCHEMA_VERSION + 1  # the migration a new column would come with


def _with_added_column(monkeypatch: pytest.MonkeyPatch) -> Column:
    added = Column("reviewer", "String", "who reviewed it", since=NEXT)
    alerts = TABLES["alerts"]
    grown = dataclasses.replace(alerts, columns=(*alerts.columns, added))
    tables = {**TABLES, "alerts": grown}
    monkeypatch.setattr(dashboards.tables, "TABLES", tables)
    monkeypatch.setattr(schema, "TABLES", tables)
    return added


def test_a_column_added_by_a_migration_reaches_the_dashboards(monkeypatch: pytest.MonkeyPatch) -> None:
    _with_added_column(monkeypatch)
    assert dashboards.tables.tables().alerts.reviewer == "reviewer"
    statements = schema._statements(NEXT)
    assert statements == ("ALTER TABLE alerts ADD COLUMN IF NOT EXISTS reviewer String COMMENT 'who reviewed it'",)
    assert "reviewer" not in schema._statements(1)[2]  # the shipped CREATE TABLE is unchanged


def test_a_store_made_by_the_old_migrations_takes_an_added_column(store_dsn: str,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    with Store(store_dsn) as store:
        assert store.ensure_schema() == schema.SCHEMA_VERSION
        _with_added_column(monkeypatch)
        migration = schema.Migration(NEXT, "alerts.reviewer", schema._statements(NEXT))
        monkeypatch.setattr("monitor.storage.store.MIGRATIONS", (*schema.MIGRATIONS, migration))
        assert store.ensure_schema() == NEXT
        assert store.ensure_schema() == NEXT  # idempotent
        names, _ = store.query("SELECT * FROM alerts LIMIT 0")
        assert names[-1] == "reviewer"
