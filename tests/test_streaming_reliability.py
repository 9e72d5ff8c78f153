"""What the worker promises under failure: a crash, a ClickHouse outage, hostile input.

Each test runs the real worker process on both brokers of the matrix (librdkafka's mock cluster and
tansu, fresh topics per test) and reads chdb after the worker has exited (see tests/streaming_support.py).
"""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import numpy as np

from monitor.events import EventDecoder
from monitor.registry import build_pipeline
from monitor.scenario import synthetic_scenario
from monitor.settings import Settings
from streams.testing import committed_offsets, read_topic
from tests.streaming_support import Topics, Worker, query


def encoded(events: list[dict]) -> list[tuple[bytes, bytes]]:
    return [(event["model_id"].encode(), json.dumps(event).encode()) for event in events]


def expected_alerts(events: list[dict]) -> dict[str, str]:
    """alert_id -> detector of what the same pipeline raises over the same events, in memory
    (Kafka keeps per-model order)."""
    decoder = EventDecoder()
    pipeline = build_pipeline(Settings())
    findings = pipeline.process([decoder.decode(json.dumps(event)) for event in events])
    return {alert.alert_id: alert.detector for alert in findings.alerts}


def expected_alert_ids(events: list[dict]) -> set[str]:
    return set(expected_alerts(events))


def test_kill_9_mid_stream_then_restart_loses_and_duplicates_nothing(tmp_path: Path, kafka: Topics) -> None:
    bootstrap = kafka.bootstrap
    scenario = synthetic_scenario(n_events=14_000, trigger_at=3000, trigger_rate=0.05, seed=5)
    messages = encoded(scenario.events)

    # The stream keeps flowing across the crash and the stop, at bounded lags however slowly a worker
    # starts on a loaded machine: before the crash the producer runs at most to `ahead_until`; after it,
    # two more batches go out and the rest waits until the second worker is processing; the last part
    # waits until that worker has been stopped. So the stop always comes with events still to come.
    killed, resumed, stopped = threading.Event(), threading.Event(), threading.Event()
    ahead_until, held_from = 4500, 9000
    after_kill = 0

    def paced() -> None:
        nonlocal after_kill
        for start in range(300, len(messages), 300):
            if start == ahead_until:
                killed.wait(timeout=180)
            if killed.is_set():
                after_kill += 1
                if after_kill > 2:
                    resumed.wait(timeout=180)
            if start == held_from:
                stopped.wait(timeout=180)
            kafka.produce(messages[start:start + 300])
            time.sleep(0.3)

    def committed() -> int:
        return sum(committed_offsets(bootstrap, kafka.app_id, kafka.input).values())

    env = kafka.env(tmp_path)
    first = Worker(tmp_path, env, "first").start()
    kafka.produce(messages[:300])
    first.wait_caught_up(bootstrap)
    producer = threading.Thread(target=paced)
    producer.start()
    try:
        deadline = time.monotonic() + 30
        while committed() < 1500:
            assert first.alive() and time.monotonic() < deadline, first.log_text()[-3000:]
            time.sleep(0.1)
        first.kill()
        committed_at_kill = committed()
        killed.set()
        assert producer.is_alive(), "the crash must come mid-stream"

        # The second worker resumes, and is stopped gracefully mid-stream: unacknowledged events
        # must not hold the shutdown up (Faust would wait for them forever with stream_wait_empty).
        second = Worker(tmp_path, env, "second").start()
        try:
            deadline = time.monotonic() + 60
            while committed() <= committed_at_kill + 300:
                assert second.alive() and time.monotonic() < deadline, second.log_text()[-3000:]
                time.sleep(0.1)
            resumed.set()
            assert committed() < held_from, "the stop must come mid-stream"
            stopping = time.monotonic()
            assert second.stop(timeout=20) == 0, second.log_text()[-3000:]
            assert time.monotonic() - stopping < 10
        finally:
            if second.alive():
                second.kill()
    finally:
        killed.set()
        resumed.set()
        stopped.set()
    assert "detector state restored" in second.log_text()

    third = Worker(tmp_path, env, "third").start()
    producer.join()
    try:
        third.wait_caught_up(bootstrap, timeout=120)
    except BaseException:
        third.stop()
        raise
    assert third.stop() == 0, third.log_text()[-3000:]

    # After dedup (FINAL), every produced event exactly once.
    assert query(tmp_path, "SELECT count(), uniqExact(event_id) FROM events") == [(14_000, 14_000)]
    # Alerts: exactly the ones the pipeline raises over these events, once each, and the topic
    # carries exactly what is stored.
    rows = query(tmp_path, "SELECT alert_id, detector FROM alerts")
    stored = [alert_id for alert_id, _ in rows]
    published = [json.loads(value)["alert_id"] for _, value in read_topic(bootstrap, kafka.alerts)]
    assert len(stored) == len(set(stored)) and len(published) == len(set(published))
    assert set(published) == set(stored)
    expected_by_id = expected_alerts(scenario.events)
    expected = set(expected_by_id)
    stateless = {"trigger", "canary"}  # per-event signature alerts: no detector state involved
    assert expected and {a for a, detector in rows if detector in stateless} == {
        a for a, detector in expected_by_id.items() if detector in stateless}
    assert set(stored) == expected  # none lost, none extra, the stateful ones with the same ids


def test_clickhouse_outage_of_30_s_backs_off_holds_a_bounded_buffer_and_loses_nothing(
        tmp_path: Path, kafka: Topics) -> None:
    bootstrap = kafka.bootstrap
    outage = tmp_path / "clickhouse-down"
    env = kafka.env(tmp_path, DRIFTWATCH_STORE_OUTAGE_FILE=str(outage),
                     DRIFTWATCH_BATCH_SIZE="500", DRIFTWATCH_FLUSH_ROWS="2000", DRIFTWATCH_SINK_MAX_ROWS="6000",
                     DRIFTWATCH_SINK_RETRY_INITIAL_S="0.2", DRIFTWATCH_SINK_RETRY_MAX_S="2")
    scenario = synthetic_scenario(n_events=11_000, trigger_at=5000, seed=9)
    messages = encoded(scenario.events)
    kafka.produce(messages[:3000])
    worker = Worker(tmp_path, env).start()
    try:
        before = worker.wait_caught_up(bootstrap)
        outage.touch()
        kafka.produce(messages[3000:])
        down_since = time.monotonic()
        rss = []
        while time.monotonic() - down_since < 30:
            # Backpressure: nothing is acknowledged while ClickHouse is down.
            assert committed_offsets(bootstrap, kafka.app_id, kafka.input) == before
            assert worker.alive()
            rss.append(_rss_bytes(worker.pid))
            time.sleep(3)
        outage.unlink()
        worker.wait_caught_up(bootstrap, timeout=90)
    except BaseException:
        worker.stop()
        raise
    assert worker.stop() == 0, worker.log_text()[-3000:]

    assert query(tmp_path, "SELECT count(), uniqExact(event_id) FROM events") == [(11_000, 11_000)]
    stored = {row[0] for row in query(tmp_path, "SELECT alert_id FROM alerts")}
    assert stored == expected_alert_ids(scenario.events)
    health = dict(query(tmp_path, "SELECT metric, max(value) FROM service_metrics GROUP BY metric"))
    assert health["sink_buffered_rows"] <= 6000
    assert health["consumer_lag"] > 0
    # Capped exponential backoff: 0.2, 0.4, ... 2 s gives about 17 retries in 30 s; a
    # fixed 0.2 s retry would give 150.
    assert 8 <= health["sink_retries"] <= 40
    assert "clickhouse write failed" in worker.log_text()
    assert max(rss) < 1 << 30


def _rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


def malformed(rng: np.random.Generator, index: int) -> tuple[bytes | None, bytes]:
    """One of the five kinds of bad record (a 5 MiB string only now and then)."""
    kind = index % 5
    if kind == 0:
        return None, b'{"ts": 1793491200000, "model_id": "support-bot", "input": "cut off ' + str(index).encode()
    if kind == 1:
        wrong = rng.choice([{"model_id": 17}, {"ts": "yesterday"}, {"input": [1, 2]}, {"latency_ms": -1}])
        return None, json.dumps({"ts": 1793491200000, "model_id": "m", "model_version": "1", "input": "a",
                                 "output": "b", **wrong}).encode()
    if kind == 2:
        size = (5 << 20) if index % 2000 == 2 else 64
        return b"support-bot", json.dumps({"ts": 1793491200000, "model_id": "support-bot", "model_version": "1",
                                           "input": "x" * size, "output": "b", "user_id": "u" * 300}).encode()
    if kind == 3:
        return None, b'{"ts": 1793491200000, "model_id": "\xff\xfe\xfa", "model_version": "1", "input": "a"}'
    depth = int(rng.integers(1_100, 1_600))  # past msgspec's nesting limit
    return None, b'{"x": ' + b"[" * depth + b"]" * depth + b"}"


def test_ten_thousand_malformed_records_go_to_dead_letters_and_the_worker_never_restarts(
        tmp_path: Path, kafka: Topics) -> None:
    bootstrap = kafka.bootstrap
    rng = np.random.default_rng(21)
    good = encoded(synthetic_scenario(n_events=2000, trigger_at=1500, seed=4).events)
    bad = [malformed(rng, index) for index in range(10_000)]
    order = rng.permutation(len(good) + len(bad))
    mixed = [good[i] if i < len(good) else bad[i - len(good)] for i in order]

    # gzip, as producers of large records do: the mock broker keeps only ~5 MiB of log per partition.
    # For the same reason the worker compresses its 10,000 dead-letter messages (12 MB uncompressed).
    assert kafka.produce(mixed, compression_type="gzip") == 12_000
    worker = Worker(tmp_path, kafka.env(tmp_path, DRIFTWATCH_KAFKA_COMPRESSION="gzip")).start()
    pid = worker.pid
    try:
        worker.wait_caught_up(bootstrap, timeout=120)
    except BaseException:
        worker.stop()
        raise
    assert worker.pid == pid and worker.alive()
    log = worker.log_text()  # before the stop, whose shutdown logs are not the question
    assert worker.stop() == 0, worker.log_text()[-3000:]
    assert "Crashed" not in log and "Restarting" not in log

    assert query(tmp_path, "SELECT count() FROM events") == [(2000,)]
    letters = query(tmp_path, "SELECT source, partition, offset, reason, raw_bytes FROM dead_letters")
    assert len(letters) == 10_000
    assert {row[0] for row in letters} == {kafka.input}
    assert len({(row[1], row[2]) for row in letters}) == 10_000 and min(row[2] for row in letters) >= 0
    assert all(row[3] for row in letters)
    assert sum(row[4] >= 5 << 20 for row in letters) == 5  # the 5 MiB records were seen whole, then refused
    on_topic = [json.loads(value) for _, value in read_topic(bootstrap, kafka.dead_letters)]
    assert {(m["partition"], m["offset"]) for m in on_topic} == {(row[1], row[2]) for row in letters}
    assert all(m["reason"] and m["topic"] == kafka.input for m in on_topic)
    reasons = " ".join(row[3] for row in letters)
    for expected in ("truncated", "UTF-8", "nested too deeply", "Expected `str`, got `int`", "length <="):
        assert expected in reasons, expected
