"""Distribution-only evidence pages only on a change that matters, and never rolls a model back alone."""

from __future__ import annotations

import pytest

from monitor.alerts import Alert
from monitor.errors import ConfigError
from monitor.policy.alerting import AlertTriage
from monitor.policy.config import default_policy, parse_policy
from monitor.policy.engine import SocEngine

MIN = 60_000


def shift(detector: str, metric: str, before: float | None, after: float | None, *, ts: int = 0,
          severity: str = "high") -> Alert:
    return Alert.create(ts_ms=ts, model_id="bot", model_version="2", detector=detector, metric=metric,
                        severity=severity, score=1, threshold=1,  # type: ignore[arg-type]
                        evidence={"metric": metric, "before": before, "after": after}, discriminator=f"{ts}{metric}")


@pytest.mark.parametrize(("detector", "metric", "before", "after", "expected"), [
    ("changepoint", "refusal", 0.05, 0.06, "info"),      # 1 point: under the 2-point minimum, never a page
    ("changepoint", "refusal", 0.05, 0.09, "medium"),    # real but modest: at most the cap
    ("changepoint", "refusal", 0.05, 0.40, "high"),      # large: the detector's severity
    ("divergence", "output_entropy", 6.0, 5.9, "info"),
    ("divergence", "output_entropy", 6.0, 4.5, "high"),
    ("divergence", "output_class", 0.1, 0.2, "medium"),  # no effect size for the metric: capped
    ("changepoint", "refusal", None, None, "medium"),    # no estimate: capped
])
def test_distribution_alerts_are_graded_by_the_size_of_their_change(detector: str, metric: str, before: float | None,
                                                                    after: float | None, expected: str) -> None:
    triage = AlertTriage(default_policy())
    assert triage.remap(shift(detector, metric, before, after)).severity == expected


def test_other_evidence_keeps_its_severity_and_a_lower_one_is_not_raised() -> None:
    triage = AlertTriage(default_policy())
    assert triage.remap(shift("behaviour", "output_text", 0.0, 0.0)).severity == "high"
    assert triage.remap(shift("changepoint", "refusal", 0.05, 0.40, severity="low")).severity == "low"


def test_an_explicit_override_wins_over_the_effect_size() -> None:
    policy = parse_policy({"alerts": {"severity": [{"match": {"detector": "changepoint"}, "severity": "high"}]}},
                          "test.yaml")
    assert AlertTriage(policy).remap(shift("changepoint", "refusal", 0.05, 0.06)).severity == "high"


def test_two_distribution_families_never_recommend_a_rollback_without_behaviour_evidence() -> None:
    engine = SocEngine(default_policy())
    large = [shift("changepoint", "refusal", 0.0, 0.5), shift("embedding", "embedding:mmd2", None, None, ts=MIN)]
    assert engine.evaluate(large).decisions == []
    engine = SocEngine(default_policy())
    swap = [shift("changepoint", "refusal", 0.0, 0.5), shift("behaviour", "output_text", None, None, ts=MIN)]
    assert [d.rule for d in engine.evaluate(swap).decisions] == ["multi-family-high"]


@pytest.mark.parametrize(("section", "message"), [
    ({"cap": "urgent"}, "cap must be one of"),
    ({"effect": {"refusal": {"min": -1}}}, "refusal.min must be a number >= 0"),
    ({"effect": {"refusal": {"min": 0.5, "large": 0.1}}}, "large must be >= min"),
    ({"effect": {"refusal": {"minimum": 0.5}}}, "unknown key 'minimum'"),
])
def test_bad_effect_sections_are_refused_with_the_key(section: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_policy({"alerts": {"distribution": section}}, "test.yaml")


def located(before: float, after: float, onset: int, detected: int) -> Alert:
    return Alert.create(ts_ms=0, model_id="bot", model_version="2", detector="changepoint", metric="refusal",
                        severity="high", score=1, threshold=1,
                        evidence={"metric": "refusal", "before": before, "after": after, "change_point": onset,
                                  "detection_index": detected}, discriminator=f"{onset}:{detected}")


@pytest.mark.parametrize(("before", "after", "onset", "detected", "expected"), [
    (0.001, 0.5, 3316, 3319, "medium"),   # two refusals in four events: 0.499 * 4/54 = 3.7 points
    (0.001, 1.0, 100, 100, "info"),       # one refusal: 1/51 of a 100-point change, under the 2-point minimum
    (0.02, 0.32, 1000, 1099, "high"),     # 30 points held over 100 events: 20 points
    (0.02, 0.14, 1000, 1099, "medium"),   # 12 points over 100 events: 8, under `large`
])
def test_a_change_points_size_counts_only_as_much_as_its_events_show(before: float, after: float, onset: int,
                                                                      detected: int, expected: str) -> None:
    assert AlertTriage(default_policy()).remap(located(before, after, onset, detected)).severity == expected


def test_effect_events_zero_takes_the_level_as_measured_and_a_bad_value_is_refused() -> None:
    policy = parse_policy({"alerts": {"distribution": {"effect_events": 0, "effect": {"refusal": {
        "min": 0.02, "large": 0.10}}}}}, "test.yaml")
    assert AlertTriage(policy).remap(located(0.001, 0.5, 3316, 3319)).severity == "high"
    with pytest.raises(ConfigError, match="effect_events must be an integer >= 0"):
        parse_policy({"alerts": {"distribution": {"effect_events": -1}}}, "test.yaml")
