"""A sustained change point is one alert that updates, then clears; updates are stored, never paged."""

from __future__ import annotations

import base64
import json

import numpy as np
import pytest

from monitor.alerts import Alert, Findings
from monitor.events import EventDecoder
from monitor.pipeline import Pipeline
from monitor.policy.alerting import AlertTriage
from monitor.policy.config import default_policy
from monitor.stages.drift import DriftConfig, DriftStage
from monitor.storage.sink import ClickHouseSink
from monitor.storage.store import Store
from tests.conftest import make_event

DECODE = EventDecoder().decode
CONFIG = DriftConfig(reference_events=300, window_events=300, evaluate_every=100)
ANSWER = "Sure. Here is a short and helpful answer about topic {i}, with a detail or two."
REFUSAL = "I'm sorry, but I can't help with that request."


def refusal_stream(rates: list[tuple[int, float]], seed: int = 0) -> list:
    """Events whose refusal rate is ``rate`` for each ``(count, rate)`` segment in turn."""
    rng = np.random.default_rng(seed)
    events, index = [], 0
    for count, rate in rates:
        for _ in range(count):
            output = REFUSAL if rng.random() < rate else ANSWER.format(i=index % 50)
            events.append(DECODE(json.dumps(make_event(index, output=output))))
            index += 1
    return events


def run(events: list, batch_size: int = 10_000, config: DriftConfig = CONFIG) -> list[Alert]:
    pipeline = Pipeline([DriftStage(config)])
    found: list[Alert] = []
    for start in range(0, len(events), batch_size):
        found.extend(pipeline.process(events[start:start + batch_size]).alerts)
    return found


def of_metric(alerts: list[Alert], metric: str) -> list[Alert]:
    return [a for a in alerts if a.detector == "changepoint" and a.metric == metric]


@pytest.fixture(scope="module")
def step_and_back() -> list:
    # 2% refusals, then 35% for long enough that the detector re-warms on it, then 2% again.
    return refusal_stream([(1200, 0.02), (1500, 0.35), (1500, 0.02)])


def test_a_sustained_step_is_one_alert_that_updates_then_returns(step_and_back: list) -> None:
    alerts = of_metric(run(step_and_back), "refusal")
    assert alerts, "the step was not detected"
    assert len({a.alert_id for a in alerts}) == 1, [json.loads(a.evidence)["state"] for a in alerts]
    assert [a.revision for a in alerts] == list(range(len(alerts)))
    first, last = json.loads(alerts[0].evidence), json.loads(alerts[-1].evidence)
    assert first["state"] == "changed" and first["active"] and first["before"] < 0.1 < first["after"]
    assert last["state"] == "returned" and not last["active"] and last["after"] < 0.1
    assert last["crossings"] == len(alerts) and last["change_point"] == first["change_point"]
    onset = first["change_point"]
    assert 1150 <= onset <= 1300, onset


def test_a_step_that_stays_is_one_alert_and_still_active() -> None:
    alerts = of_metric(run(refusal_stream([(1200, 0.02), (3000, 0.35)], seed=1)), "refusal")
    assert len({a.alert_id for a in alerts}) == 1
    assert json.loads(alerts[-1].evidence)["active"] is True


def test_the_stream_changing_again_after_it_returned_is_a_new_alert() -> None:
    events = refusal_stream([(1200, 0.02), (1500, 0.35), (1500, 0.02), (1500, 0.35)], seed=2)
    alerts = of_metric(run(events), "refusal")
    fresh = [a for a in alerts if not a.is_update]
    assert len(fresh) == 2, [(a.revision, json.loads(a.evidence)["state"]) for a in alerts]


def test_same_revisions_in_any_batching_and_across_a_restore(step_and_back: list) -> None:
    whole = [(a.alert_id, a.revision, a.evidence) for a in run(step_and_back)]
    assert [(a.alert_id, a.revision, a.evidence) for a in run(step_and_back, batch_size=37)] == whole
    # Snapshot mid-episode (the step is on), restore into a new stage, go on.
    stage = DriftStage(CONFIG)
    pipeline = Pipeline([stage])
    found = list(pipeline.process(step_and_back[:2000]).alerts)
    key = ("model-a", "1.0")
    saved = json.loads(json.dumps(stage.snapshot(key)))
    assert any(s["episodes"] for s in saved["streams"].values()), "no episode open at the snapshot"
    restored = DriftStage(CONFIG)
    restored.restore(key, saved)
    found.extend(Pipeline([restored]).process(step_and_back[2000:]).alerts)
    assert [(a.alert_id, a.revision, a.evidence) for a in found] == whole


def test_output_length_evidence_is_in_characters() -> None:
    rng = np.random.default_rng(3)
    events = []
    for index in range(2400):
        words = int(rng.integers(20, 40)) if index < 1200 else int(rng.integers(120, 160))
        output = " ".join(f"word{(index * 7 + j) % 97}" for j in range(words))
        events.append(DECODE(json.dumps(make_event(index, output=output))))
    [first, *_] = of_metric(run(events), "output_chars")
    evidence = json.loads(first.evidence)
    assert 150 < evidence["before"] < 350 and evidence["after"] > 700, evidence
    assert abs(evidence["change_point"] - 1200) <= 5, evidence  # the best split before the alarm


def test_updates_are_stored_under_the_same_id_and_never_paged(store_dsn: str, step_and_back: list) -> None:
    alerts = of_metric(run(step_and_back), "refusal")
    assert len(alerts) >= 2
    triage = AlertTriage(default_policy()).process(alerts)
    assert [a.revision for a in triage.updates] == [a.revision for a in alerts[1:]]
    assert [a.alert_id for a in triage.notify] == [alerts[0].alert_id]  # paged once, when raised
    assert {a.ts_ms for a in triage.kept} == {alerts[0].ts_ms}  # updates keep the raise time: same incident
    with Store(store_dsn) as store:
        store.ensure_schema()
        sink = ClickHouseSink(store)
        for alert in alerts:  # one flush per revision, as a worker writes them over time
            sink.add_findings(Findings(alerts=[alert]))
            sink.flush()
        _, rows = store.query("SELECT alert_id, revision, evidence FROM alerts")
        assert len(rows) == 1 and rows[0][1] == alerts[-1].revision
        assert json.loads(rows[0][2])["state"] == "returned"
        assert [a.revision for a in sink.drain_new_alerts()] == [a.revision for a in alerts]


def test_acknowledging_the_incident_silences_it_until_the_stream_changes_again(store_dsn: str) -> None:
    from monitor.policy.engine import SocEngine
    from monitor.policy.incidents import acknowledge

    events = refusal_stream([(1200, 0.02), (1500, 0.35), (1500, 0.02), (1500, 0.35)], seed=2)
    alerts = of_metric(run(events), "refusal")
    first_episode = [a for a in alerts if a.alert_id == alerts[0].alert_id]
    second = next(a for a in alerts if a.alert_id != alerts[0].alert_id)
    engine = SocEngine(default_policy())
    with Store(store_dsn) as store:
        store.ensure_schema()
        [incident] = engine.handle(store, first_episode[:1]).incidents
        acknowledge(store, incident.incident_id, kind="incident", state="acknowledged", actor="ana")
        later = engine.handle(store, first_episode[1:])
        assert later.triage.notify == [] and len(later.triage.updates) == len(first_episode) - 1
        assert {i.incident_id for i in later.incidents} <= {incident.incident_id}
        again = engine.handle(store, [second])
        assert [a.alert_id for a in again.triage.notify] == [second.alert_id]


def logprob_stream(seed: int = 4) -> list:
    """Token log-probabilities whose mean surprisal stays put while their spread doubles at event 1200."""
    rng = np.random.default_rng(seed)
    events = []
    for index in range(2400):
        spread = 0.4 if index < 1200 else 0.8
        surprisal = np.abs(rng.normal(1.0, spread, size=60))
        surprisal += 1.0 - surprisal.mean()  # the same mean surprisal, only its spread moves
        events.append(DECODE(json.dumps(make_event(index, output=ANSWER.format(i=index % 50),
                                                   output_logprobs=(-surprisal).tolist()))))
    return events


def test_the_spread_of_token_surprisal_has_its_own_change_point() -> None:
    alerts = run(logprob_stream())
    spread = of_metric(alerts, "surprisal_std")
    assert spread, sorted({(a.detector, a.metric) for a in alerts})
    assert 1150 <= json.loads(spread[0].evidence)["change_point"] <= 1300
    assert not of_metric(alerts, "mean_surprisal")


def test_a_snapshot_from_before_episodes_and_spreads_still_loads(step_and_back: list) -> None:
    from monitor.stages.drift_stream import COLUMNS, StreamState

    stage = DriftStage(CONFIG)
    Pipeline([stage]).process(step_and_back[:900])
    saved = json.loads(json.dumps(stage.snapshot(("model-a", "1.0"))))
    [stream] = saved["streams"].values()
    # What drift_stream.v1 wrote: six columns, no surprisal_std detectors, no episodes.
    old = dict(stream, format="drift_stream.v1")
    del old["episodes"]
    del old["detectors"]["surprisal_std"]
    for part in ("reference", "window"):
        rows = np.frombuffer(base64.b64decode(old[part]["rows"]), dtype="<f8")
        rows = rows.reshape(-1, len(COLUMNS) + 1)[:, :-1]
        old[part] = dict(old[part], columns=list(COLUMNS[:-1]),
                         rows=base64.b64encode(rows.astype("<f8").tobytes()).decode())
    loaded = StreamState.from_snapshot(stage._stream_config, old)
    assert loaded.episodes == {} and tuple(loaded.reference.columns) == COLUMNS
    assert np.isnan(loaded.reference.column("surprisal_std")).all()
    assert loaded.detectors["surprisal_std"]["cusum"].n == loaded.count
