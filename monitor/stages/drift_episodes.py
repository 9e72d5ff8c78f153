"""Change-point episodes: a sustained change is one alert that updates, then clears.

A change-point detector adopts the new regime after an alarm: it warms up
and calibrates again on the values that follow (see
:class:`detectors.changepoint.base.WarmupDetector`). Without more, a stream
that moved and stayed would raise a new alert at each later crossing, and a
stream that moved back would raise yet another. An :class:`Episode` ties
them together per (stream, metric):

* the first alarm opens the episode and raises its alert (revision 0),
  ``state: "changed"``, with the baseline (the level before) and the level
  after;
* a later alarm that moves the level further, or elsewhere, is the same
  change going on: the same alert, next revision, with the new level, the
  number of crossings and ``active: true``;
* a later alarm that brings the level back within half the way to the
  baseline closes the episode: a last revision with ``state: "returned"``
  and ``active: false``. The next change opens a new episode;
* an analyst acknowledging the alert, or its incident, accepts the change
  (:mod:`monitor.stages.drift_acks`): a last revision with ``state:
  "acknowledged"`` and ``active: false`` closes the episode, and its level
  becomes the stream's :class:`Accepted` level for that metric. An alarm
  that stays on the accepted side (short of half the way back to the old
  baseline, or further out) is the accepted regime seen again, not news;
  one that comes back half the way to the old baseline, or crosses it,
  opens a new episode, which returns when an alarm is in the accepted
  regime again.

Examples
--------
>>> from monitor.alerts import Alert
>>> alert = Alert.create(ts_ms=0, model_id="m", model_version="1", detector="changepoint", metric="refusal",
...                      severity="medium", score=9, threshold=8, discriminator="x",
...                      evidence={"before": 0.0, "after": 0.3})
>>> episode = Episode(alert=alert, baseline=0.0, level=0.3)
>>> episode.follow(level=0.35, ts_ms=10, statistic=7.0, detection_index=900, change_point=880).revision
1
>>> update = episode.follow(level=0.02, ts_ms=20, statistic=8.0, detection_index=1500, change_point=1490)
>>> episode.closed, json.loads(update.evidence)["state"], update.revision
(True, 'returned', 2)
>>> accepted = Accepted(level=0.3, baseline=0.0)
>>> accepted.covers(0.36), accepted.covers(0.9), accepted.covers(0.1), accepted.covers(-0.2)
(True, True, False, False)
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, fields
from typing import Any

from monitor.alerts import Alert

__all__ = ["ACCEPTED_FORMAT", "ACKNOWLEDGED", "CHANGED", "EPISODE_FORMAT", "RETURNED", "Accepted", "Episode"]

EPISODE_FORMAT = "changepoint_episode.v1"
CHANGED = "changed"
RETURNED = "returned"
ACKNOWLEDGED = "acknowledged"
ACCEPTED_FORMAT = "changepoint_accepted.v1"
# Back "within half the way" to the baseline counts as returned: a partial retreat is still a change.
_RETURN_FRACTION = 0.5


@dataclass
class Episode:
    """One sustained change of one metric of one stream, and its alert's latest revision."""

    alert: Alert
    baseline: float
    level: float
    crossings: int = 1
    closed: bool = field(default=False)

    def follow(self, *, level: float, ts_ms: int, statistic: float | None, detection_index: int,
               change_point: int, accepted: Accepted | None = None) -> Alert:
        """A later alarm of this episode's metric: the alert's next revision (closing it if back).

        Back is within half the way to the baseline or, for an episode that left an ``accepted``
        regime, anywhere in that regime again (:meth:`Accepted.covers`).
        """
        self.crossings += 1
        if accepted is not None:
            returned = accepted.covers(level)
        else:
            returned = abs(level - self.baseline) <= _RETURN_FRACTION * abs(self.level - self.baseline)
        self.level = level
        evidence = json.loads(self.alert.evidence)
        evidence.update(after=level, crossings=self.crossings, last_detection_index=detection_index, updated_ts=ts_ms,
                        last_change_point=change_point, state=RETURNED if returned else CHANGED,
                        active=not returned)
        if statistic is not None:
            evidence["last_statistic"] = statistic
        self.alert = self.alert.revised(at_ms=ts_ms, evidence=evidence)
        self.closed = returned
        return self.alert

    def acknowledge(self, *, ts_ms: int, index: int) -> Alert:
        """An analyst accepted the change: the alert's last revision, closing it at stream update ``index``."""
        evidence = json.loads(self.alert.evidence)
        evidence.update(state=ACKNOWLEDGED, active=False, acknowledged_index=index, updated_ts=ts_ms)
        self.alert = self.alert.revised(at_ms=ts_ms, evidence=evidence)
        self.closed = True
        return self.alert

    # --- persistence ---------------------------------------------------------
    def snapshot(self) -> dict[str, Any]:
        return {"format": EPISODE_FORMAT, "baseline": self.baseline, "level": self.level,
                "crossings": self.crossings, "alert": {f.name: getattr(self.alert, f.name) for f in fields(Alert)}}

    @classmethod
    def from_snapshot(cls, state: dict[str, Any]) -> Episode:
        if not isinstance(state, dict) or state.get("format") != EPISODE_FORMAT:
            got = state.get("format") if isinstance(state, dict) else type(state).__name__
            raise ValueError(f"episode snapshot format must be {EPISODE_FORMAT!r}; got {got!r}")
        return cls(alert=Alert(**state["alert"]), baseline=float(state["baseline"]), level=float(state["level"]),
                   crossings=int(state["crossings"]))


@dataclass(frozen=True)
class Accepted:
    """The level of an acknowledged change, the metric's reference until the next episode opens.

    ``baseline`` is the level before that change. The accepted regime is
    everything on ``level``'s side of the point half the way back to
    ``baseline`` (the line ``Episode.follow`` draws to call a return), further
    out included. Why not a band around ``level``: the levels of an alarm
    (the detector's mean since its onset, right after a crossing) are noisy
    and biased away from the reference; a crossing at the accepted level
    measured 0.87 against a true 0.35 and an accepted 0.21 (refusal rate, in
    ``tests/test_changepoint_acknowledgements.py``'s replay). A band would
    page on it, where the open episode it replaced only counts a crossing.
    So after an acknowledgement, as in an open episode, a move further the
    same way is not news; a move back is.
    """

    level: float
    baseline: float

    def covers(self, level: float) -> bool:
        """Whether ``level`` is still the accepted regime: short of half the way back to the baseline, or beyond."""
        shift = self.level - self.baseline
        return (level - self.baseline) * shift > _RETURN_FRACTION * shift * shift

    def snapshot(self) -> dict[str, Any]:
        return {"format": ACCEPTED_FORMAT, "level": self.level, "baseline": self.baseline}

    @classmethod
    def from_snapshot(cls, state: dict[str, Any]) -> Accepted:
        if not isinstance(state, dict) or state.get("format") != ACCEPTED_FORMAT:
            got = state.get("format") if isinstance(state, dict) else type(state).__name__
            raise ValueError(f"accepted-level snapshot format must be {ACCEPTED_FORMAT!r}; got {got!r}")
        return cls(level=float(state["level"]), baseline=float(state["baseline"]))
