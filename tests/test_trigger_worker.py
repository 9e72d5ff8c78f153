"""Issue 15 end to end in the streaming worker: a named trigger becomes a rollback decision in a flush.

The Kafka records are stand-ins (topic, partition, offset, value, ack); the
rest is real: the shipped settings with no known signatures, the Ingestor and
pipeline from the registry, the chdb store and sink, and the worker's SOC
observer from ``streams.app`` (the one the Faust app installs), which writes the
decision and hands it back for the rollback topic.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

from monitor.evaluation_triggers import TRIGGERS, build_stream, clean_pool, poisoned_pool
from monitor.events import EventDecoder
from monitor.ingest import Ingestor
from monitor.policy.engine import engine_from_settings
from monitor.policy.status import rollback_status
from monitor.registry import build_pipeline
from monitor.settings import load_settings
from monitor.storage.sink import ClickHouseSink
from monitor.storage.store import Store
from streams.app import soc_observer
from streams.worker import Message, StreamWorker
from tests.test_stream_worker import DictCheckpoints, KafkaEventStandIn

ONSET = 2500
BATCH = 256


def test_a_named_trigger_is_published_as_a_rollback_decision_by_the_workers_flush(
        shared_data: Path, tmp_path: Path) -> None:
    signatures = tmp_path / "none.yaml"
    signatures.write_text("signatures: []\n", encoding="utf-8")
    settings = load_settings(embedding="off", signatures=str(signatures), signature_table=False,
                             store=f"chdb://{tmp_path / 'store'}", flush_rows=1)
    events, triggered = build_stream(clean_pool(shared_data), poisoned_pool(shared_data, "refusal", "badnet"),
                                     n_events=3200, onset=ONSET, rate=0.02, seed=7, prefix="w")
    published: list[Message] = []

    async def publish(messages: list[Message]) -> None:
        published.extend(messages)

    with Store(settings.store.dsn) as store:
        store.ensure_schema()
        observer = soc_observer(engine_from_settings(settings), store, settings.kafka.topic_rollback)
        worker = StreamWorker(settings, Ingestor(EventDecoder(), build_pipeline(settings)),
                              ClickHouseSink(store, flush_rows=None), checkpoints=DictCheckpoints(),
                              publish=publish, observers=[observer])
        flushed_at = None  # the first event index whose flush published a rollback decision
        for start in range(0, len(events), BATCH):
            records = [KafkaEventStandIn(0, i, json.dumps(e).encode()) for i, e in
                       enumerate(events[start:start + BATCH], start)]
            asyncio.run(worker.handle(records))
            asyncio.run(worker.flush())
            assert all(record.acked for record in records)
            if flushed_at is None and any(topic == settings.kafka.topic_rollback for topic, _, _ in published):
                flushed_at = start + len(records) - 1
        status = rollback_status(store, "support-bot")
    assert min(triggered) == ONSET
    assert flushed_at is not None and ONSET <= flushed_at <= ONSET + 500 + BATCH, flushed_at
    decisions = [json.loads(value) for topic, _, value in published if topic == settings.kafka.topic_rollback]
    assert {d["rule"] for d in decisions} == {"named-trigger"}
    reasons = " ".join(decisions[0]["reasons"])
    assert any(f"'{word.lower()}'" in reasons for word in TRIGGERS["badnet"]), reasons  # n-grams are lowercased
    assert "first event w-" in reasons and "payload consistency" in reasons
    # The stored decision is what rollback-status reports to a playbook.
    assert status.state == "rollback" and status.decisions[0].decision_id == decisions[0]["decision_id"]
