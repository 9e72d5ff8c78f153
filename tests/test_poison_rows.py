"""A row the store refuses never stalls a batch: it is split out and dead-lettered, the rest written (issue 14, item 2).

Values the decoder accepts can still be refused by the store (a batch spanning more months than one insert may
hold, or a value built past the decoder). The sink halves such a batch until each refused row stands alone.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from monitor.events import Event
from monitor.storage.sink import ClickHouseSink
from monitor.storage.store import Store
from tests.conftest import make_event
from tests.streaming_support import Topics, Worker, query

MONTH_MS = 31 * 86_400_000


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    with Store(f"chdb://{tmp_path / 'store'}") as handle:
        handle.ensure_schema()
        yield handle


def event(index: int, **fields: object) -> Event:
    values: dict = {"ts": 1_793_491_200_000 + index * 1000, "model_id": "m", "model_version": "1",
                    "input": f"q{index}", "output": f"a{index}", "event_id": f"e{index}"} | fields
    return Event(**values)


@pytest.mark.parametrize(("poison", "at"), [
    ({"output_tokens": 1 << 32}, [3]),
    ({"input_tokens": 1 << 40}, [0, 7]),
    ({"output_tokens": -1}, [9]),
    ({"input_tokens": 1 << 64}, [4, 5]),
    ({"latency_ms": "not a number"}, [2]),
])
def test_refused_rows_are_dead_lettered_and_the_rest_written(store: Store, poison: dict, at: list[int]) -> None:
    events = [event(i, **(poison if i in at else {})) for i in range(10)]
    sink = ClickHouseSink(store, flush_rows=None)
    sink.add_events(events, [f"f:{i + 1}" for i in range(10)])
    sink.flush()
    assert sink.written["events"] == 10 - len(at)
    stored = {row[0] for row in store.query("SELECT event_id FROM events")[1]}
    assert stored == {f"e{i}" for i in range(10) if i not in at}
    _, letters = store.query("SELECT source, reason, field, raw FROM dead_letters ORDER BY source")
    assert [source for source, *_ in letters] == sorted(f"f:{i + 1}" for i in at)
    for _, reason, field, raw in letters:
        assert reason.startswith("the store refused this events row") and field == "events"
        assert raw == ""  # text storage is off: no preview


def test_a_batch_over_many_months_is_split_and_stored_whole(store: Store) -> None:
    # Every value is valid; one insert may not touch more than 100 partitions (months) of `events`.
    events = [event(i, ts=1_000_000_000_000 + i * MONTH_MS) for i in range(150)]
    sink = ClickHouseSink(store, flush_rows=None)
    sink.add_events(events, [f"f:{i}" for i in range(150)])
    sink.flush()
    assert store.query("SELECT count() FROM events")[1] == [(150,)]
    assert store.query("SELECT count() FROM dead_letters")[1] == [(0,)]


def test_the_worker_commits_past_a_batch_over_many_months(tmp_path: Path, kafka: Topics) -> None:
    # Before: the insert failed, the worker retried the same batch forever and committed nothing.
    bootstrap = kafka.bootstrap
    records = [make_event(i, ts=1_000_000_000_000 + i * MONTH_MS, event_id=f"p{i}") for i in range(240)]
    kafka.produce([(b"model-a", json.dumps(r).encode()) for r in records])
    worker = Worker(tmp_path, kafka.env(tmp_path), "poison").start()
    try:
        worker.wait_caught_up(bootstrap, timeout=90)
    finally:
        assert worker.stop() == 0, worker.log_text()[-3000:]
    assert query(tmp_path, "SELECT count(), uniqExact(event_id) FROM events") == [(240, 240)]


def test_a_final_flush_that_fails_exits_non_zero(tmp_path: Path, kafka: Topics) -> None:
    outage = tmp_path / "down"
    env = kafka.env(tmp_path, DRIFTWATCH_STORE_OUTAGE_FILE=str(outage),
                     DRIFTWATCH_FLUSH_INTERVAL_S="60", DRIFTWATCH_CHECKPOINT_INTERVAL_S="60")
    worker = Worker(tmp_path, env, "outage").start()
    kafka.produce([(b"model-a", json.dumps(make_event(i)).encode()) for i in range(50)])
    deadline = time.monotonic() + 60
    while "sink_buffered_rows" not in worker.log_text() and time.monotonic() < deadline:
        time.sleep(0.5)
    time.sleep(5)  # the 50 events are handled and buffered (nothing is flushed for 60 s)
    outage.touch()
    code = worker.stop(timeout=60)
    log = worker.log_text()
    assert code != 0, log[-3000:]
    assert "final flush failed" in log, log[-3000:]


CANARY = "dwc-abcdef-ghijkl-mnopqr-stuvwx"


@pytest.mark.parametrize("raw", [
    b'{"ts": 1, "output": "the user wrote a private note"}',
    f'{{"output": "{CANARY}"}}'.encode(),
    f'not json at all, {CANARY.upper().replace("-", " ")} inside'.encode(),
    b"\xff\xfe binary \x00 user text",
])
@pytest.mark.parametrize("store_text", [False, True])
def test_dead_letter_previews_honour_the_text_setting(store: Store, raw: bytes, store_text: bool) -> None:
    from monitor.storage.rows import DeadLetter

    sink = ClickHouseSink(store, store_text=store_text, flush_rows=None)
    sink.add_dead_letters([DeadLetter(source="f", reason="bad", raw=raw, line=3)])
    sink.flush()
    [(preview, size, digest, line)] = store.query("SELECT raw, raw_bytes, raw_hash, line FROM dead_letters")[1]
    assert (size, line) == (len(raw), 3) and len(digest) == 32
    assert CANARY not in preview.upper().replace(" ", "-").lower()
    if store_text:
        assert preview and ("[canary]" in preview) == (b"dwc" in raw.lower())
    else:
        assert preview == ""


@pytest.mark.parametrize("change", [{"output": "other text"}, {"tool_calls": [{"name": "refund", "arguments": {}}]},
                                    {"labels": {"k": "v"}}, {"latency_ms": 3.5}])
def test_a_stored_key_with_other_content_is_a_collision_not_a_replacement(store: Store, change: dict) -> None:
    from monitor.events import EventDecoder

    decoder = EventDecoder()
    first = decoder.decode(json.dumps(make_event(1, event_id="x")))
    second = decoder.decode(json.dumps(make_event(1, event_id="x") | change))
    for event, source in ((first, "a:1"), (first, "a:1"), (second, "b:1")):
        sink = ClickHouseSink(store, flush_rows=None)
        sink.add_events([event], [source])
        sink.flush()
    _, stored = store.query("SELECT content_hash, source FROM events")
    assert stored == [(first.content_hash, "a:1")]  # the evidence stays tied to the first content
    _, letters = store.query("SELECT source, reason, field FROM dead_letters")
    assert len(letters) == 1 and letters[0][0] == "b:1" and letters[0][2] == "$.event_id"
    assert first.content_hash in letters[0][1] and second.content_hash in letters[0][1]
