"""Alert handling before anyone is paged: severity mapping, dedup, suppression.

Stored alerts keep what the detectors raised (an update is a new revision of one, written by the
detector, never by triage).
:class:`AlertTriage` decides what happens next to each alert:

- its severity is remapped by the policy's overrides (first match wins);
  without one, distribution-only evidence (a change point, a divergence) is
  graded by the size of its change: ``info`` under the metric's minimum
  effect, at most the policy's cap (``medium``) under its large effect;
- an alert inside a maintenance window is *suppressed*: kept, not notified,
  and recorded as ``suppressed`` in ``acknowledgements``;
- a repeat of the same (model, version, detector, metric, tenant) within the
  dedup window of the last notified one is a *duplicate*: kept, not notified;
- a ``high`` alert of the paging budget's families (behaviour, distribution,
  embedding: statistical evidence) past the budget of its model (so many
  pages per 7 days of event time) is *held*: kept as evidence, not notified;
  signatures, named motifs and probes are never held;
- a later revision of an alert (:attr:`Alert.is_update`: new evidence of a
  change already alerted, e.g. a sustained change point still active or
  returned) is an *update*: stored and kept as evidence under the same id
  (incidents and rollback count an id once), never notified.

The dedup state is one timestamp per key, capped at ``max_keys`` (the least
recently seen key is forgotten first), so a stream of distinct metrics cannot
grow it without bound; the budget state is, per model, the times of its last
``high_per_week`` budgeted pages, capped the same way.

Examples
--------
>>> from monitor.alerts import Alert
>>> from monitor.policy.config import default_policy
>>> triage = AlertTriage(default_policy())
>>> def alert(ts):
...     return Alert.create(ts_ms=ts, model_id="m", model_version="1", detector="trigger",
...                         metric="signature:x", severity="high", score=1, threshold=1,
...                         evidence={}, discriminator=str(ts))
>>> result = triage.process([alert(0), alert(60_000), alert(700_000)])
>>> len(result.notify), len(result.duplicates)
(2, 1)
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from monitor.alerts import Alert, Severity, severity_rank
from monitor.errors import ConfigError
from monitor.policy.config import MaintenanceWindow, Policy
from monitor.policy.families import family_of

__all__ = ["DEDUP_STATE_FORMAT", "DISTRIBUTION", "AlertTriage", "TriageResult"]

_HIGH = severity_rank("high")

#: The family of distribution-only evidence (change points, divergences), see :mod:`monitor.policy.families`.
DISTRIBUTION = "distribution"

DEDUP_STATE_FORMAT = "alert_dedup.v2"  # v2 adds the paging budget's page times; v1 loads with none
_DEDUP_STATE_V1 = "alert_dedup.v1"
_WEEK_MS = 7 * 24 * 3_600_000
DedupKey = tuple[str, str, str, str, str]


@dataclass
class TriageResult:
    """Alerts of one call, by what to do with them (severities already mapped)."""

    notify: list[Alert] = field(default_factory=list)
    duplicates: list[Alert] = field(default_factory=list)
    suppressed: list[tuple[Alert, MaintenanceWindow]] = field(default_factory=list)
    updates: list[Alert] = field(default_factory=list)
    held: list[Alert] = field(default_factory=list)  # over the model's paging budget

    @property
    def kept(self) -> list[Alert]:
        """Alerts that count as evidence (incidents, rollback): all but suppressed."""
        return [*self.notify, *self.duplicates, *self.updates, *self.held]


class AlertTriage:
    """Apply a policy's severity map, maintenance windows and dedup window.

    Parameters
    ----------
    policy
        The validated policy.
    max_keys
        Most dedup keys remembered.
    """

    def __init__(self, policy: Policy, *, max_keys: int = 100_000) -> None:
        if max_keys <= 0:
            raise ConfigError(f"max_keys must be > 0; got {max_keys!r}")
        self.policy = policy
        self.max_keys = max_keys
        self._last: OrderedDict[DedupKey, int] = OrderedDict()
        # model_id -> event times of its budgeted pages in the last week, oldest first (at most the budget).
        self._pages: OrderedDict[str, list[int]] = OrderedDict()

    def severity_for(self, alert: Alert) -> Severity:
        """The policy's override if one matches; else, for distribution-only evidence, by effect size."""
        for override in self.policy.alerts.severity:
            if override.matches(alert.detector, alert.metric, alert.model_id):
                return override.severity  # type: ignore[return-value]  # validated on load
        if family_of(alert.detector) == DISTRIBUTION:
            return self._by_effect(alert)
        return alert.severity

    def _by_effect(self, alert: Alert) -> Severity:
        """``info`` under the metric's minimum change, at most the cap under its large change."""
        settings = self.policy.alerts
        cap: Severity = settings.distribution_cap  # type: ignore[assignment]  # validated on load
        capped = alert.severity if severity_rank(alert.severity) <= severity_rank(cap) else cap
        effect = next((e for e in settings.effects if e.metric == alert.metric), None)
        change = _change(alert, settings.effect_events)
        if effect is None or change is None:
            return capped
        if change < effect.minimum:
            return "info"
        return alert.severity if change >= effect.large else capped

    def remap(self, alert: Alert) -> Alert:
        """The alert with the policy's severity (the same object when unchanged)."""
        severity = self.severity_for(alert)
        return alert if severity == alert.severity else dataclasses.replace(alert, severity=severity)

    def process(self, alerts: Sequence[Alert]) -> TriageResult:
        """Triage alerts in event-time order."""
        result = TriageResult()
        window = self.policy.alerts.dedup_window_ms
        for alert in sorted(alerts, key=lambda a: (a.ts_ms, a.alert_id)):
            alert = self.remap(alert)
            if alert.is_update:
                result.updates.append(alert)
                continue
            maintenance = next((w for w in self.policy.alerts.suppress
                                if w.covers(alert.ts_ms, alert.model_id, alert.model_version, alert.detector)),
                               None)
            if maintenance is not None:
                result.suppressed.append((alert, maintenance))
                continue
            key = (alert.model_id, alert.model_version, alert.detector, alert.metric, alert.tenant_id)
            last = self._last.get(key)
            if last is not None and 0 <= alert.ts_ms - last < window:
                result.duplicates.append(alert)
                continue
            if self._over_budget(alert):
                result.held.append(alert)
                continue
            self._last[key] = alert.ts_ms
            self._last.move_to_end(key)
            if len(self._last) > self.max_keys:
                self._last.popitem(last=False)
            result.notify.append(alert)
        return result

    def _over_budget(self, alert: Alert) -> bool:
        """Whether ``alert`` is a budgeted page its model has no budget left for (else it is counted)."""
        budget = self.policy.alerts.paging_budget
        if (budget is None or severity_rank(alert.severity) < _HIGH
                or family_of(alert.detector) not in budget.families):
            return False
        pages = [ts for ts in self._pages.get(alert.model_id, []) if 0 <= alert.ts_ms - ts < _WEEK_MS]
        if len(pages) >= budget.high_per_week:
            return True
        self._pages[alert.model_id] = [*pages, alert.ts_ms]
        self._pages.move_to_end(alert.model_id)
        if len(self._pages) > self.max_keys:
            self._pages.popitem(last=False)
        return False

    def snapshot(self) -> dict[str, Any]:
        return {"format": DEDUP_STATE_FORMAT, "last": [[*key, ts] for key, ts in self._last.items()],
                "pages": [[model, times] for model, times in self._pages.items()]}

    def restore(self, state: dict[str, Any]) -> None:
        if state.get("format") not in (DEDUP_STATE_FORMAT, _DEDUP_STATE_V1):
            raise ConfigError(f"dedup state format must be {DEDUP_STATE_FORMAT!r}; got {state.get('format')!r}")
        self._last = OrderedDict((tuple(entry[:5]), int(entry[5])) for entry in state["last"])  # type: ignore[misc]
        self._pages = OrderedDict((str(model), [int(t) for t in times]) for model, times in state.get("pages", []))


def _change(alert: Alert, effect_events: int) -> float | None:
    """``|after - before|`` from a distribution alert's evidence, or None where it has no such estimate.

    A change point's ``after`` is the mean of the values since its onset (``change_point`` to
    ``detection_index``). Over a handful of events that is noise, not a size: on a model that refuses once
    in a thousand answers, two refusals four events apart read as a 50-point change. The change is shrunk
    toward none by ``n / (n + effect_events)`` for its ``n`` events, the mean of the ``n`` values and
    ``effect_events`` more at the old level. A divergence's levels come from whole windows and are kept.
    """
    try:
        evidence = json.loads(alert.evidence)
        before, after = evidence.get("before"), evidence.get("after")
        onset, detected = evidence.get("change_point"), evidence.get("detection_index")
    except (TypeError, ValueError, AttributeError):
        return None
    if not isinstance(before, (int, float)) or not isinstance(after, (int, float)):
        return None
    change = abs(float(after) - float(before))
    if isinstance(onset, int) and isinstance(detected, int) and not isinstance(onset, bool):
        events = max(detected - onset + 1, 1)
        change *= events / (events + effect_events)
    return change if math.isfinite(change) else None
