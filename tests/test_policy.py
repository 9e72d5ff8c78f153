"""Alert policy: triage, incidents, acknowledgements and the rollback monitor."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from monitor.alerts import SEVERITIES, Alert
from monitor.errors import ConfigError
from monitor.policy.alerting import AlertTriage
from monitor.policy.config import default_policy, parse_policy
from monitor.policy.families import family_of
from monitor.policy.incidents import ack_states, acknowledge, group_incidents, upsert_incidents
from monitor.policy.rollback import RollbackMonitor
from monitor.storage.store import Store

MIN = 60_000


def alert(ts: int, detector: str = "trigger", severity: str = "high", *, version: str = "2", model: str = "bot",
          metric: str = "x", tag: str = "") -> Alert:
    return Alert.create(ts_ms=ts, model_id=model, model_version=version, detector=detector, metric=metric,
                        severity=severity, score=1, threshold=1, evidence={}, discriminator=f"{ts}{tag}")  # type: ignore[arg-type]


def policy(text: str):
    import yaml

    return parse_policy(yaml.safe_load(text), "test.yaml")


@pytest.mark.parametrize(("text", "message"), [
    ("alerts: {dedup_window: soon}", "alerts.dedup_window must be a duration"),
    ("alerts: {severity: [{match: {detector: motif}, severity: urgent}]}", "must be one of info"),
    ("rollback: {rules: [{name: r, min_families: 0}]}", "min_families must be an integer >= 1"),
    ("rollback: {rulez: []}", "unknown key 'rulez'"),
    ("alerts: {suppress: [{start: 2026-11-02T00:00:00Z, end: 2026-11-01T00:00:00Z}]}", "end must be after start"),
])
def test_policy_errors_name_the_key(text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        policy(text)


def test_triage_maps_severity_suppresses_and_dedups() -> None:
    rules = policy("""
alerts:
  dedup_window: 10m
  severity: [{match: {detector: motif}, severity: low}]
  suppress: [{model_id: bot, start: 2026-11-01T00:00:00Z, end: 2026-11-01T01:00:00Z, reason: redeploy}]
""")
    start = 1_793_491_200_000  # 2026-11-01T00:00:00Z
    triage = AlertTriage(rules)
    result = triage.process([
        alert(start + 5 * MIN), alert(start + 61 * MIN), alert(start + 65 * MIN), alert(start + 75 * MIN),
        alert(start + 62 * MIN, "motif", "high"), alert(start + 63 * MIN, model="other"),
    ])
    assert [a.alert_id for a, w in result.suppressed] == [alert(start + 5 * MIN).alert_id]
    assert result.suppressed[0][1].reason == "redeploy"
    assert [a.ts_ms - start for a in result.duplicates] == [65 * MIN]  # within 10 min of 61
    assert {a.severity for a in result.notify if a.detector == "motif"} == {"low"}
    assert len(result.notify) == 4
    restored = AlertTriage(rules)
    restored.restore(triage.snapshot())
    assert restored.process([alert(start + 80 * MIN)]).duplicates  # the dedup state survived


def test_dedup_state_is_bounded() -> None:
    triage = AlertTriage(default_policy(), max_keys=50)
    triage.process([alert(i, metric=f"m{i}") for i in range(1000)])
    assert len(triage.snapshot()["last"]) == 50


def test_incidents_one_per_version_family_and_window() -> None:
    rng = np.random.default_rng(5)
    detectors = ["trigger", "canary", "changepoint", "divergence", "embedding", "motif", "probe"]
    alerts = [alert(int(rng.integers(0, 6 * 3_600_000)), detectors[int(rng.integers(len(detectors)))],
                    SEVERITIES[int(rng.integers(5))], version=str(rng.integers(3)), tag=str(i)) for i in range(500)]
    incidents = group_incidents(alerts, window_ms=3_600_000)
    expected = {(a.model_version, family_of(a.detector), a.ts_ms // 3_600_000) for a in alerts}
    assert len(incidents) == len(expected)
    assert sum(i.alert_count for i in incidents) == len(alerts)
    assert len({aid for i in incidents for aid in i.alert_ids}) == len(alerts)
    for incident in incidents:
        assert incident.window_start_ms <= incident.first_ts_ms <= incident.last_ts_ms < incident.window_end_ms


def test_incident_upsert_merges_and_ack_state_is_kept(store_dsn: str) -> None:
    first = [alert(0, "trigger"), alert(MIN, "canary", "critical")]
    later = [alert(MIN, "canary", "critical"), alert(2 * MIN, "trigger")]
    with Store(store_dsn) as store:
        store.ensure_schema()
        upsert_incidents(store, group_incidents(first, window_ms=3_600_000))
        [merged] = upsert_incidents(store, group_incidents(later, window_ms=3_600_000))
        _, rows = store.query("SELECT incident_id, alert_count, severity, length(alert_ids) FROM incidents")
        assert rows == [(merged.incident_id, 3, "critical", 3)]
        assert ack_states(store, [merged.incident_id], kind="incident") == {merged.incident_id: "open"}
        acknowledge(store, merged.incident_id, kind="incident", state="acknowledged", actor="ana")
        acknowledge(store, merged.incident_id, kind="incident", state="resolved", actor="ana", note="fixed")
        assert ack_states(store, [merged.incident_id], kind="incident") == {merged.incident_id: "resolved"}
        with pytest.raises(ConfigError, match="state must be one of"):
            acknowledge(store, merged.incident_id, kind="incident", state="gone", actor="ana")  # type: ignore[arg-type]


def test_rollback_rules_of_the_default_policy() -> None:
    def decide(*alerts: Alert) -> list[str]:
        return [d.rule for d in RollbackMonitor(default_policy()).observe(list(alerts))]

    assert decide(alert(0, "trigger"), alert(MIN, "trigger", tag="b")) == []  # one family
    assert decide(alert(0, "trigger"), alert(14 * MIN, "changepoint")) == ["multi-family-high"]
    assert decide(alert(0, "trigger"), alert(16 * MIN, "changepoint")) == []  # outside 15 min
    assert decide(alert(0, "trigger"), alert(MIN, "changepoint", "medium")) == []  # below high
    assert decide(alert(0, "trigger"), alert(MIN, "changepoint", version="3")) == []  # two versions
    assert decide(alert(0, "canary", "critical")) == ["critical-canary"]
    assert decide(alert(0, "canary", "high")) == []


def test_rollback_decisions_do_not_depend_on_batching() -> None:
    rng = np.random.default_rng(9)
    kinds = [("trigger", "high"), ("changepoint", "high"), ("canary", "critical"), ("embedding", "medium")]
    alerts = [alert(int(rng.integers(0, 4 * 3_600_000)), *kinds[int(rng.integers(4))], tag=str(i))
              for i in range(300)]
    alerts.sort(key=lambda a: a.ts_ms)
    whole = RollbackMonitor(default_policy()).observe(alerts)
    monitor = RollbackMonitor(default_policy())
    split = [d for start in range(0, 300, 37) for d in monitor.observe(alerts[start:start + 37])]
    assert whole and [d.decision_id for d in whole] == [d.decision_id for d in split]
    resumed = RollbackMonitor(default_policy())
    head = resumed.observe(alerts[:150])
    restored = RollbackMonitor(default_policy())
    restored.restore(resumed.snapshot())
    assert [d.decision_id for d in head + restored.observe(alerts[150:])] == [d.decision_id for d in whole]
    # At most one decision per rule per version per window.
    for rule in {d.rule for d in whole}:
        times = [d.ts_ms for d in whole if d.rule == rule]
        assert all(later - earlier >= 15 * MIN for earlier, later in itertools.pairwise(times))


def test_rollback_state_is_bounded() -> None:
    monitor = RollbackMonitor(default_policy(), max_alerts=20, max_keys=30)
    monitor.observe([alert(i * 10, "embedding", "low", version=str(i % 100), tag=str(i)) for i in range(5000)])
    state = monitor.snapshot()
    assert len(state["versions"]) == 30
    assert max(len(v["alerts"]) for v in state["versions"]) <= 20


def test_decision_serialises_for_the_topic_and_the_table() -> None:
    [decision] = RollbackMonitor(default_policy()).observe([alert(0, "canary", "critical")])
    message = decision.to_json()
    assert message["decision"] == "rollback" and message["model_version"] == "2"
    assert message["alert_ids"] == [alert(0, "canary", "critical").alert_id]
    assert len(decision.to_row()) == 8 and decision.to_bytes().startswith(b"{")


def test_incident_count_past_the_id_cap() -> None:
    from monitor.policy.incidents import MAX_ALERT_IDS

    many = [alert(i, tag=str(i)) for i in range(MAX_ALERT_IDS + 200)]
    [whole] = group_incidents(many, window_ms=3_600_000)
    assert whole.alert_count == len(many) and len(whole.alert_ids) == MAX_ALERT_IDS
    [extra] = group_incidents([alert(10_000_000 % 3_600_000, tag="new")], window_ms=3_600_000)
    assert whole.merged(extra).alert_count == len(many) + 1
