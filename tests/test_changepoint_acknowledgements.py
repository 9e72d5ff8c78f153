"""Acknowledging a change point silences it in the drift stage until the stream changes again.

The store says which change-point alerts are accepted (``monitor.storage.accepted``), the drift
stage closes their episodes and takes their level as the reference (``monitor.stages.drift_acks``).
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path

import numpy as np
import pytest

from monitor.accepted_changes import AcceptedChanges, StaticAccepted
from monitor.alerts import Alert, Findings
from monitor.errors import SnapshotError
from monitor.events import EventDecoder
from monitor.pipeline import Pipeline
from monitor.policy.incidents import Incident, acknowledge, upsert_incidents
from monitor.stages.drift import DriftConfig, DriftStage
from monitor.stages.drift_stream import StreamState
from monitor.storage.accepted import TableAccepted, accepted_alert_ids
from monitor.storage.sink import ClickHouseSink
from monitor.storage.store import Store
from tests.conftest import make_event
from tests.soc_cli import invoke
from tests.test_changepoint_lifecycle import ANSWER, REFUSAL, of_metric, refusal_stream

CONFIG = DriftConfig(reference_events=300, window_events=300, evaluate_every=100, acknowledgement_reload_s=0)
KEY = ("model-a", "1.0")


def states(alerts: list[Alert]) -> list[tuple[str, int, str]]:
    return [(a.alert_id[:8], a.revision, json.loads(a.evidence)["state"]) for a in alerts]


def run(stage: DriftStage, events: list, batch_size: int = 10_000) -> list[Alert]:
    pipeline = Pipeline([stage])
    found: list[Alert] = []
    for start in range(0, len(events), batch_size):
        found.extend(pipeline.process(events[start:start + batch_size]).alerts)
    return of_metric(found, "refusal")


@pytest.fixture(scope="module")
def step() -> list:
    """2% refusals, then a sustained 35%."""
    return refusal_stream([(1200, 0.02), (3000, 0.35)], seed=1)


@pytest.fixture(scope="module")
def step_alert(step: list) -> str:
    alerts = run(DriftStage(CONFIG), step)
    assert len({a.alert_id for a in alerts}) == 1, states(alerts)  # one sustained shift, one alert
    return alerts[0].alert_id


@pytest.fixture(scope="module")
def step_away_and_back() -> list:
    """2%, a 35% step an analyst will accept, 2% again (a different change), then back to the accepted 35%."""
    return refusal_stream([(1200, 0.02), (1500, 0.35), (1500, 0.02), (1500, 0.35)], seed=2)


# --- which alerts the store says are accepted --------------------------------------------------------
def _alert(ts_ms: int, *, detector: str = "changepoint", tag: str = "") -> Alert:
    return Alert.create(ts_ms=ts_ms, model_id="m", model_version="1", detector=detector, metric="refusal",
                        severity="medium", score=9, threshold=8, evidence={"state": "changed"},
                        discriminator=f"{detector}:{ts_ms}:{tag}")


def _store_alerts(store: Store, alerts: list[Alert]) -> None:
    sink = ClickHouseSink(store)
    sink.add_findings(Findings(alerts=alerts))
    sink.flush()


def _incident(alerts: list[Alert]) -> Incident:
    first, last = min(a.ts_ms for a in alerts), max(a.ts_ms for a in alerts)
    return Incident("inc-1", "m", "1", "distribution", "medium", first, last + 1, first, last, len(alerts),
                    tuple(sorted(a.alert_id for a in alerts)))


def test_accepted_alert_ids_read_from_a_real_store(store_dsn: str) -> None:
    now = int(time.time() * 1000)
    direct, resolved, divergence = _alert(now - 60_000, tag="d"), _alert(now - 50_000, tag="r"), \
        _alert(now - 40_000, detector="divergence")
    before, after = _alert(now - 30_000, tag="b"), _alert(now + 3_600_000, tag="a")  # around the incident's ack
    suppressed, reopened = _alert(now - 20_000, tag="s"), _alert(now - 10_000, tag="o")
    with Store(store_dsn) as store:
        store.ensure_schema()
        assert accepted_alert_ids(store) == frozenset()
        _store_alerts(store, [direct, resolved, divergence, before, after, suppressed, reopened])
        upsert_incidents(store, [_incident([before, after])])
        acknowledge(store, direct.alert_id, kind="alert", state="acknowledged", actor="ana")
        acknowledge(store, resolved.alert_id, kind="alert", state="resolved", actor="ana")
        acknowledge(store, divergence.alert_id, kind="alert", state="acknowledged", actor="ana")
        acknowledge(store, suppressed.alert_id, kind="alert", state="suppressed", actor="policy")
        acknowledge(store, reopened.alert_id, kind="alert", state="acknowledged", actor="ana")
        time.sleep(0.01)  # newest row wins on updated_at (ms)
        acknowledge(store, reopened.alert_id, kind="alert", state="open", actor="bob")
        acknowledge(store, "inc-1", kind="incident", state="acknowledged", actor="ana")
        accepted = accepted_alert_ids(store)
    # Only change points; the incident's alert raised before its ack, not the one after; not suppressed/reopened.
    assert accepted == {direct.alert_id, resolved.alert_id, before.alert_id}


def test_the_table_source_rereads_on_a_new_ack_and_survives_an_unmigrated_store(
        store_dsn: str, caplog: pytest.LogCaptureFixture) -> None:
    changes = AcceptedChanges(TableAccepted(store_dsn))
    with caplog.at_level(logging.DEBUG, logger="monitor.accepted_changes"):
        assert changes.poll() is None and changes.poll() is None  # no schema yet: kept (empty), no raise
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "unreadable" in warnings[0].getMessage(), caplog.records  # warned once
    alert = _alert(int(time.time() * 1000) - 1000)
    with Store(store_dsn) as store:
        store.ensure_schema()
        _store_alerts(store, [alert])
    assert changes.poll() == frozenset()
    assert changes.poll() is None  # fingerprint unchanged: not read again
    with Store(store_dsn) as store:
        acknowledge(store, alert.alert_id, kind="alert", state="acknowledged", actor="ana")
    assert changes.poll() == {alert.alert_id}


# --- the drift stage -----------------------------------------------------------------------------------
def test_an_alert_accepted_before_it_opens_closes_at_once_and_its_level_stays_silent(
        step: list, step_alert: str) -> None:
    alerts = run(DriftStage(CONFIG, accepted=StaticAccepted({step_alert})), step)
    assert states(alerts) == [(step_alert[:8], 0, "changed"), (step_alert[:8], 1, "acknowledged")]
    assert json.loads(alerts[1].evidence)["active"] is False
    # The same in any batching (a replay with the acknowledgement already stored).
    assert [(a.revision, a.evidence) for a in run(DriftStage(CONFIG, accepted=StaticAccepted({step_alert})),
                                                     step, batch_size=37)] == [(a.revision, a.evidence) for a in alerts]


def test_an_acknowledgement_learned_mid_stream_closes_the_episode_at_the_next_batch(
        step: list, step_alert: str) -> None:
    source = StaticAccepted()
    stage = DriftStage(CONFIG, accepted=source)
    pipeline = Pipeline([stage])
    before = of_metric(pipeline.process(step[:1800]).alerts, "refusal")
    assert before and before[0].alert_id == step_alert and json.loads(before[-1].evidence)["active"]
    source.alert_ids = frozenset({step_alert})  # an analyst acks it; the next poll sees a new fingerprint
    after = [of_metric(pipeline.process(step[start:start + 300]).alerts, "refusal")
             for start in range(1800, len(step), 300)]
    [closed] = after[0]
    evidence = json.loads(closed.evidence)
    assert (closed.alert_id, evidence["state"], evidence["active"]) == (step_alert, "acknowledged", False)
    assert evidence["acknowledged_index"] == 1800  # before the batch's first event
    assert not any(after[1:]), states([a for batch in after[1:] for a in batch])


def test_after_acceptance_a_different_change_is_a_new_alert_and_the_accepted_level_is_not(
        step_away_and_back: list) -> None:
    unacked = run(DriftStage(CONFIG), step_away_and_back)
    first = unacked[0].alert_id
    # Without the ack: the step, its return, and the second step to 35% as a fresh alert.
    assert [(a.alert_id == first, json.loads(a.evidence)["state"]) for a in unacked] == [
        (True, "changed"), (True, "returned"), (False, "changed")], states(unacked)
    alerts = run(DriftStage(CONFIG, accepted=StaticAccepted({first})), step_away_and_back)
    assert [(a.alert_id == first, a.revision, json.loads(a.evidence)["state"]) for a in alerts] == [
        (True, 0, "changed"), (True, 1, "acknowledged"), (False, 0, "changed"), (False, 1, "returned")], \
        states(alerts)
    away, back = (json.loads(a.evidence) for a in alerts[2:])
    assert away["before"] > 0.2 > away["after"], away  # the drop to 2%, measured against the accepted 35%
    assert alerts[2].ts_ms > step_away_and_back[2700].ts_ms
    assert back["after"] > 0.2 and not back["active"]  # back at the accepted level: no new alert, none open
    fresh = [a for a in alerts if not a.is_update]
    assert len(fresh) == 2  # paged: the step, and the change away from what was accepted


def test_the_accepted_level_survives_a_snapshot_and_restore(step_away_and_back: list) -> None:
    first = run(DriftStage(CONFIG), step_away_and_back[:2000])[0].alert_id
    whole = run(DriftStage(CONFIG, accepted=StaticAccepted({first})), step_away_and_back)
    stage = DriftStage(CONFIG, accepted=StaticAccepted({first}))
    found = run(stage, step_away_and_back[:2000])
    assert states(found)[-1][2] == "acknowledged"
    saved = json.loads(json.dumps(stage.snapshot(KEY)))
    [stream] = saved["streams"].values()
    assert stream["format"] == "drift_stream.v3" and set(stream["accepted"]) == {"refusal"}
    restored = DriftStage(CONFIG)  # no source: only the snapshot knows the change was accepted
    restored.restore(KEY, saved)
    found.extend(run(restored, step_away_and_back[2000:]))
    assert [(a.alert_id, a.revision, a.evidence) for a in found] == [(a.alert_id, a.revision, a.evidence)
                                                                     for a in whole]


def test_a_v2_snapshot_still_restores_with_no_accepted_level(step: list) -> None:
    stage = DriftStage(CONFIG)
    run(stage, step[:1800])  # an episode is open
    saved = json.loads(json.dumps(stage.snapshot(KEY)))
    [stream] = saved["streams"].values()
    old = dict(stream, format="drift_stream.v2")
    del old["accepted"]
    loaded = StreamState.from_snapshot(stage._stream_config, old)
    current = StreamState.from_snapshot(stage._stream_config, stream)
    assert loaded.accepted == {} and "refusal" in loaded.episodes
    assert (loaded.count, set(loaded.episodes)) == (current.count, set(current.episodes)) and loaded.count == 1800
    with pytest.raises(SnapshotError, match="accepted level"):
        StreamState.from_snapshot(stage._stream_config, dict(stream, accepted={"refusal": {"format": "v0"}}))
    with pytest.raises(SnapshotError):
        StreamState.from_snapshot(stage._stream_config, dict(stream, format="drift_stream.v9"))


# --- a crossing at the accepted level, with the shipped settings ---------------------------------
# Seed 5, default drift settings: every change-point metric alarms at 1,206 (onset 1,200), then a
# burst of refusals at 1,797 crosses again at the same 35% (an update of the open alert), then the
# drop back to 2% at 4,200 alarms at about 4,261.
SEEDS = (5, 6, 11, 12)
CROSSING_RATES = [(1200, 0.02), (1500, 0.35), (1500, 0.35), (1500, 0.02)]


def answer_events(rates: list[tuple[int, float]], seed: int) -> list[dict]:
    """Event dicts (``refusal_stream``'s answers) whose refusal rate is ``rate`` for each segment."""
    rng = np.random.default_rng(seed)
    events, index = [], 0
    for count, rate in rates:
        for _ in range(count):
            output = REFUSAL if rng.random() < rate else ANSWER.format(i=index % 50)
            events.append(make_event(index, output=output))
            index += 1
    return events


def test_a_crossing_at_the_accepted_level_is_silent_and_the_drop_is_not() -> None:
    decode = EventDecoder().decode
    events = [decode(json.dumps(e)) for e in answer_events(CROSSING_RATES, seed=5)]
    config = DriftConfig(acknowledgement_reload_s=0)
    unacked = run(DriftStage(config), events, batch_size=2048)
    first = unacked[0].alert_id
    crossing = [a for a in unacked if a.revision == 1]
    assert crossing and json.loads(crossing[0].evidence)["state"] == "changed", states(unacked)
    assert events[1200].ts_ms < crossing[0].window_end_ms < events[2700].ts_ms  # at the 35% level
    alerts = run(DriftStage(config, accepted=StaticAccepted({first})), events, batch_size=2048)
    assert [(a.alert_id == first, json.loads(a.evidence)["state"]) for a in alerts] == [
        (True, "changed"), (True, "acknowledged"), (False, "changed")], states(alerts)
    assert alerts[2].ts_ms > events[4200].ts_ms


def test_after_acceptance_a_drop_and_its_return_are_one_alert_and_the_regime_is_quiet_again() -> None:
    # Accepted 35%, a drop to 2% (a new alert), back to 35% (its return) for 4,000 more events. Seeds 5, 6,
    # 11 and 12 failed this before (a return read as still changed, or a crossing after it paged).
    # The alarm levels are noisy (the accepted step measured 0.21 to 0.62, returns up to 0.63, a crossing
    # on seed 11 at 7,106 measured 0.88): the accepted regime is a half-space, and outlives the drop.
    decode = EventDecoder().decode
    config = DriftConfig(acknowledgement_reload_s=0)
    got, timing = {}, {}
    for seed in SEEDS:
        events = [decode(json.dumps(e)) for e in answer_events([(1200, 0.02), (1500, 0.35), (1500, 0.02),
                                                                (4000, 0.35)], seed=seed)]
        first = run(DriftStage(config), events[:2000], batch_size=2048)[0].alert_id
        alerts = run(DriftStage(config, accepted=StaticAccepted({first})), events, batch_size=2048)
        got[seed] = [(a.alert_id == first, json.loads(a.evidence)["state"]) for a in alerts]
        # The drop raised after it began, its return soon after the stream came back.
        timing[seed] = [events[2700].ts_ms < a.ts_ms and a.window_end_ms < events[4400].ts_ms for a in alerts[2:]]
    expected = [(True, "changed"), (True, "acknowledged"), (False, "changed"), (False, "returned")]
    assert got == {seed: expected for seed in SEEDS}
    assert timing == {seed: [True, True] for seed in SEEDS}


# --- end to end: replay, `driftwatch ack`, replay again -------------------------------------------
def _changepoints(dsn: str) -> dict[str, tuple[int, int, str]]:
    """alert id -> (event time, revision, latest state) of the stored change-point alerts."""
    with Store(dsn) as store:
        _, rows = store.query("SELECT alert_id, toUnixTimestamp64Milli(ts), revision, evidence FROM alerts "
                              "WHERE detector = 'changepoint'")
    return {alert_id: (int(ts), revision, json.loads(evidence)["state"]) for alert_id, ts, revision, evidence in rows}


def test_driftwatch_ack_of_the_incident_reaches_the_next_replay(tmp_path: Path, store_dsn: str) -> None:
    events = answer_events(CROSSING_RATES, seed=5)
    step, longer = tmp_path / "step.jsonl", tmp_path / "longer.jsonl"
    step.write_text("".join(json.dumps(e) + "\n" for e in events[:2700]), encoding="utf-8")
    # The same events, more at the accepted level, then a drop back to 2% (the next hour's incident).
    longer.write_text("".join(json.dumps(e) + "\n" for e in events), encoding="utf-8")
    env = {"DRIFTWATCH_EMBEDDING": "off"}
    assert invoke("replay", str(step), "--store", store_dsn, env=env).exit_code == 0
    first = _changepoints(store_dsn)
    # One alert per metric, updated by the crossing at the new level, still changed.
    assert first and {(revision, state) for _, revision, state in first.values()} == {(1, "changed")}, first
    with Store(store_dsn) as store:
        _, rows = store.query("SELECT incident_id, alert_ids FROM incidents WHERE family = 'distribution'")
    [incident] = [incident for incident, ids in rows if set(first) <= set(ids)]
    acked = invoke("ack", incident, "--kind", "incident", "--actor", "ana", "--store", store_dsn, env=env)
    assert acked.exit_code == 0, acked.output

    assert invoke("replay", str(longer), "--store", store_dsn, env=env).exit_code == 0
    second = _changepoints(store_dsn)
    assert {alert_id: second[alert_id][2] for alert_id in first} == dict.fromkeys(first, "acknowledged")
    new = {alert_id: ts for alert_id, (ts, _, _) in second.items() if alert_id not in first}
    # Nothing new at the accepted level (the crossing is silent); the drop is news.
    assert new and min(new.values()) > events[4200]["ts"], new
