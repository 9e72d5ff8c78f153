"""Rollback triggers: a policy evaluated over a sliding window of alerts.

:class:`RollbackMonitor` is pure and transport-agnostic: the streaming
worker calls :meth:`RollbackMonitor.observe` with each batch of new alerts,
``replay`` and ``rollback-status --reevaluate`` call it once with stored
alerts. It keeps, per model version, the alerts of the last ``window`` (at
most ``max_alerts`` of them) and, across versions, at most ``max_keys``
versions, forgetting the least recently alerted first: the state is bounded
whatever the alert rate.

A rule fires at most once per model version per window: a burst of alerts
makes one decision, not one per alert. The decision id is a hash of the rule,
the version and the alerts behind it, so evaluating the same alerts again
(a replay, a restarted worker) gives the same ids and the store no repeats.

Examples
--------
>>> from monitor.alerts import Alert
>>> from monitor.policy.config import default_policy
>>> monitor = RollbackMonitor(default_policy())
>>> def alert(ts, detector, severity):
...     return Alert.create(ts_ms=ts, model_id="bot", model_version="2", detector=detector,
...                         metric="x", severity=severity, score=1, threshold=1,
...                         evidence={}, discriminator=str(ts))
>>> monitor.observe([alert(0, "trigger", "high")])
[]
>>> [d.rule for d in monitor.observe([alert(60_000, "changepoint", "high")])]
['multi-family-high']
"""

from __future__ import annotations

import json
from collections import OrderedDict, deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from monitor.alerts import Alert, severity_rank, stable_id
from monitor.errors import ConfigError
from monitor.policy.config import Policy, RollbackRule
from monitor.policy.families import family_of
from monitor.storage.tables import TABLES

__all__ = ["ROLLBACK_COLUMNS", "ROLLBACK_STATE_FORMAT", "RollbackDecision", "RollbackMonitor"]

ROLLBACK_STATE_FORMAT = "rollback_monitor.v1"
ROLLBACK_COLUMNS = TABLES["rollback_decisions"].insert_columns


@dataclass(frozen=True)
class RollbackDecision:
    """A recommendation about one model version: a ``rollback_decisions`` row.

    ``to_json`` is the message for the ``driftwatch-rollback`` topic.
    """

    decision_id: str
    ts_ms: int
    model_id: str
    model_version: str
    decision: str
    rule: str
    reasons: tuple[str, ...]
    alert_ids: tuple[str, ...]

    def to_row(self) -> tuple[Any, ...]:
        return (self.decision_id, self.ts_ms, self.model_id, self.model_version, self.decision, self.rule,
                list(self.reasons), list(self.alert_ids))

    def to_json(self) -> dict[str, Any]:
        return {"decision_id": self.decision_id, "ts": self.ts_ms, "model_id": self.model_id,
                "model_version": self.model_version, "decision": self.decision, "rule": self.rule,
                "reasons": list(self.reasons), "alert_ids": list(self.alert_ids)}

    def to_bytes(self) -> bytes:
        return json.dumps(self.to_json(), sort_keys=True).encode()


@dataclass(frozen=True, slots=True)
class _Seen:
    ts_ms: int
    alert_id: str
    detector: str
    family: str
    rank: int
    severity: str
    summary: str = ""  # what the alert's evidence names (a motif's phrase, first event, payload)

    def describe(self) -> str:
        return f"{self.severity} {self.detector} alert {self.alert_id[:12]}" + (f": {self.summary}" if self.summary
                                                                               else "")


def evidence_summary(alert: Alert) -> str:
    """A named trigger's phrase, first event and payload evidence, from its structured evidence; else ''."""
    return summarize_evidence(alert.detector, alert.evidence)


def summarize_evidence(detector: str, raw: Any) -> str:
    """:func:`evidence_summary` from an alert's detector and stored evidence (JSON text or a mapping)."""
    if detector != "motif":
        return ""
    try:
        evidence = json.loads(raw) if isinstance(raw, str) else dict(raw)
    except (TypeError, ValueError):
        return ""
    payload = evidence.get("payload") or {}
    novelty = evidence.get("novelty") or {}
    return (f"trigger {evidence.get('ngram', '')!r} ({novelty.get('kind', '?')} since the reference: "
            f"{novelty.get('reference_anomalous', 0)}/{novelty.get('reference_support', 0)} anomalous then, "
            f"{evidence.get('anomalous_support', 0)}/{evidence.get('support', 0)} now), first event "
            f"{evidence.get('first_event_id', '')}, payload consistency {payload.get('consistency', 0)} over "
            f"{payload.get('answers_hashed', 0)} answers, {evidence.get('distinct_users', 0)} users")


@dataclass
class _VersionWindow:
    alerts: deque[_Seen] = field(default_factory=deque)
    fired_at: dict[str, int] = field(default_factory=dict)  # rule name -> ts of its last decision


def _matches(rule: RollbackRule, seen: _Seen) -> bool:
    return (seen.rank >= severity_rank(rule.min_severity)
            and (rule.detectors is None or seen.detector in rule.detectors)
            and (rule.families is None or seen.family in rule.families))


class RollbackMonitor:
    """Evaluate a policy's rollback rules continuously over incoming alerts.

    Parameters
    ----------
    policy
        The validated policy (its ``rollback`` section).
    max_alerts
        Most alerts kept per model version within the window.
    max_keys
        Most model versions tracked.
    """

    def __init__(self, policy: Policy, *, max_alerts: int = 512, max_keys: int = 10_000) -> None:
        if max_alerts <= 0 or max_keys <= 0:
            raise ConfigError(f"max_alerts and max_keys must be > 0; got {max_alerts!r}, {max_keys!r}")
        self.window_ms = policy.rollback.window_ms
        self.rules = policy.rollback.rules
        self.max_alerts = max_alerts
        self.max_keys = max_keys
        self._windows: OrderedDict[tuple[str, str], _VersionWindow] = OrderedDict()

    def observe(self, alerts: Sequence[Alert]) -> list[RollbackDecision]:
        """Feed new alerts (any order); return the decisions they complete."""
        decisions = []
        for alert in sorted(alerts, key=lambda a: (a.ts_ms, a.alert_id)):
            key = (alert.model_id, alert.model_version)
            window = self._windows.get(key)
            if window is None:
                window = self._windows[key] = _VersionWindow()
                if len(self._windows) > self.max_keys:
                    self._windows.popitem(last=False)
            self._windows.move_to_end(key)
            if any(seen.alert_id == alert.alert_id for seen in window.alerts):
                continue  # the same alert twice (a retried batch) is one piece of evidence
            window.alerts.append(_Seen(alert.ts_ms, alert.alert_id, alert.detector, family_of(alert.detector),
                                       severity_rank(alert.severity), alert.severity, evidence_summary(alert)))
            newest = max(seen.ts_ms for seen in window.alerts)
            while window.alerts and (window.alerts[0].ts_ms <= newest - self.window_ms
                                     or len(window.alerts) > self.max_alerts):
                window.alerts.popleft()
            decisions.extend(self._evaluate(key, window, alert.ts_ms))
        return decisions

    def _evaluate(self, key: tuple[str, str], window: _VersionWindow, now_ms: int) -> list[RollbackDecision]:
        out = []
        for rule in self.rules:
            last = window.fired_at.get(rule.name)
            if last is not None and now_ms - last < self.window_ms:
                continue
            matching = [seen for seen in window.alerts if _matches(rule, seen) and seen.ts_ms <= now_ms]
            families = sorted({seen.family for seen in matching})
            if len(matching) < rule.min_alerts or len(families) < rule.min_families:
                continue
            if rule.needs_families is not None and not rule.needs_families.intersection(families):
                continue
            window.fired_at[rule.name] = now_ms
            ids = tuple(sorted(seen.alert_id for seen in matching))
            reasons = (f"rule {rule.name}: {rule.description or 'matched'}",
                       f"{len(matching)} alert(s) from {len(families)} famil{'y' if len(families) == 1 else 'ies'} "
                       f"({', '.join(families)}) within {self.window_ms // 60_000} min",
                       *(seen.describe() for seen in matching[:10]))
            out.append(RollbackDecision(
                decision_id=stable_id("rollback", rule.name, key[0], key[1], *ids), ts_ms=now_ms,
                model_id=key[0], model_version=key[1], decision="rollback", rule=rule.name,
                reasons=reasons, alert_ids=ids))
        return out

    def snapshot(self) -> dict[str, Any]:
        """The window state as JSON-ready values."""
        return {"format": ROLLBACK_STATE_FORMAT, "versions": [
            {"key": list(key), "fired_at": window.fired_at,
             "alerts": [[s.ts_ms, s.alert_id, s.detector, s.severity, s.summary] for s in window.alerts]}
            for key, window in self._windows.items()]}

    def restore(self, state: dict[str, Any]) -> None:
        if state.get("format") != ROLLBACK_STATE_FORMAT:
            raise ConfigError(f"rollback state format must be {ROLLBACK_STATE_FORMAT!r}; got {state.get('format')!r}")
        self._windows = OrderedDict()
        for entry in state["versions"]:
            window = _VersionWindow(fired_at={k: int(v) for k, v in entry["fired_at"].items()})
            for ts_ms, alert_id, detector, severity, *summary in entry["alerts"]:
                window.alerts.append(_Seen(int(ts_ms), alert_id, detector, family_of(detector),
                                           severity_rank(severity), severity, summary[0] if summary else ""))
            self._windows[(entry["key"][0], entry["key"][1])] = window
