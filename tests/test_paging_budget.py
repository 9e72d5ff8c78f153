"""The paging budget: statistical evidence pages at most so often per model; the rest is held, not lost."""

from __future__ import annotations

import dataclasses

import pytest

from monitor.alerts import Alert
from monitor.errors import ConfigError
from monitor.policy.alerting import AlertTriage
from monitor.policy.config import PagingBudget, default_policy, parse_policy

HOUR = 3_600_000
DAY = 24 * HOUR


def alert(ts: int, detector: str = "behaviour", model: str = "bot", severity: str = "high",
          metric: str = "output_text") -> Alert:
    return Alert.create(ts_ms=ts, model_id=model, model_version="1", detector=detector, metric=metric,
                        severity=severity, score=1, threshold=1, evidence={}, discriminator=str(ts))  # type: ignore[arg-type]


def test_the_shipped_policy_has_a_budget_for_statistical_evidence() -> None:
    budget = default_policy().alerts.paging_budget
    assert budget == PagingBudget(2, frozenset({"behaviour", "distribution", "embedding"}))


def test_pages_past_the_budget_are_held_as_evidence_and_the_week_rolls_on() -> None:
    triage = AlertTriage(default_policy())
    # Hours apart: past the dedup window, each would page.
    first = triage.process([alert(0), alert(2 * HOUR), alert(4 * HOUR)])
    assert [a.ts_ms for a in first.notify] == [0, 2 * HOUR]
    assert [a.ts_ms for a in first.held] == [4 * HOUR] and first.held[0] in first.kept
    later = triage.process([alert(7 * DAY + HOUR)])  # the first page is more than a week old now
    assert [a.ts_ms for a in later.notify] == [7 * DAY + HOUR]


def test_the_budget_is_per_model_and_never_holds_signatures_motifs_or_lower_severities() -> None:
    triage = AlertTriage(default_policy())
    busy = [alert(i * HOUR) for i in range(3)]
    result = triage.process([*busy, alert(5 * HOUR, model="other"),
                             alert(6 * HOUR, detector="motif", metric="motif:x", severity="critical"),
                             alert(7 * HOUR, detector="canary", metric="sig:c"),
                             alert(8 * HOUR, severity="medium")])
    assert [a.ts_ms for a in result.held] == [2 * HOUR]
    assert {a.ts_ms for a in result.notify} == {0, HOUR, 5 * HOUR, 6 * HOUR, 7 * HOUR, 8 * HOUR}


def test_the_budget_survives_a_snapshot_and_an_old_state_loads() -> None:
    triage = AlertTriage(default_policy())
    triage.process([alert(0), alert(2 * HOUR)])
    restored = AlertTriage(default_policy())
    restored.restore(triage.snapshot())
    assert [a.ts_ms for a in restored.process([alert(4 * HOUR)]).held] == [4 * HOUR]
    old = AlertTriage(default_policy())
    old.restore({"format": "alert_dedup.v1", "last": []})
    assert old.process([alert(4 * HOUR)]).notify


def test_no_budget_pages_everything_and_a_bad_budget_is_refused() -> None:
    policy = dataclasses.replace(default_policy(),
                                 alerts=dataclasses.replace(default_policy().alerts, paging_budget=None))
    assert len(AlertTriage(policy).process([alert(i * HOUR) for i in range(5)]).notify) == 5
    with pytest.raises(ConfigError, match="high_per_model_week must be an integer >= 1"):
        parse_policy({"alerts": {"paging_budget": {"high_per_model_week": 0, "families": ["behaviour"]}}}, "p.yaml")
    with pytest.raises(ConfigError, match="families must name at least one"):
        parse_policy({"alerts": {"paging_budget": {"high_per_model_week": 2}}}, "p.yaml")
