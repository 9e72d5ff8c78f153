"""The state of one drift-watched stream: (model_id, model_version, tenant).

A stream keeps a reference (its first N events, a pinned set, or the
previous version's recent events), a rolling window of the events since,
one change-point detector per (metric, detector name), the open change-point
episode per metric and the level an analyst accepted per metric
(:mod:`monitor.stages.drift_episodes`), and the last few event ids so an
alarm can name the events around its change point. All of it is bounded by
the configuration and snapshots to JSON with a version (``drift_stream.v2``
snapshots, from before acknowledgements, load with no accepted level;
``drift_stream.v1`` ones, from before episodes, with no episode either).
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from detectors.changepoint import DETECTORS, ChangePointDetector, Detection, fleet_arl0
from detectors.changepoint.onset import HISTORY, locate_onset
from detectors.windows import RollingWindow
from monitor.errors import SnapshotError
from monitor.stages.drift_episodes import Accepted, Episode

__all__ = ["CATEGORICAL", "CHANGEPOINT_METRICS", "COLUMNS", "NUMERIC", "StreamConfig", "StreamState"]

FORMAT = "drift_stream.v3"
# v2: no accepted levels (loads with none); v1: no episodes either, no surprisal_std (NaN spreads).
_OLD_FORMATS = ("drift_stream.v2", "drift_stream.v1")
#: One row per event, in this order, in reference and window.
COLUMNS = ("refusal", "output_chars", "output_entropy", "mean_surprisal", "output_class", "tools", "surprisal_std")
NUMERIC = ("output_chars", "output_entropy", "mean_surprisal", "surprisal_std")
TOOL_BINS = 32
CATEGORICAL = {"refusal": 2, "output_class": 3, "tools": TOOL_BINS}
# With output_logprobs: the mean token surprisal and its spread (STAR, arXiv 2601.08511, finds CUSUM on
# probability shifts near AUROC 1). Without them both are NaN, which the detectors count and skip.
CHANGEPOINT_METRICS = ("refusal", "output_chars", "output_entropy", "mean_surprisal", "surprisal_std")
_RECENT_IDS = 256


@dataclass(frozen=True)
class StreamConfig:
    """What a stream needs from the stage's configuration.

    Examples
    --------
    >>> StreamConfig(reference_events=500, window_events=500, detectors=("cusum",), arl0=10_000,
    ...              fleet_streams=3, refusal_flag_rate=0.05, entropy_flag_sigmas=3.0).stream_arl0
    150000.0
    """

    reference_events: int
    window_events: int
    detectors: tuple[str, ...]
    arl0: float
    fleet_streams: int
    refusal_flag_rate: float
    entropy_flag_sigmas: float

    @property
    def stream_arl0(self) -> float:
        """ARL0 of each detector: the fleet budget split over keys, metrics and detectors."""
        return fleet_arl0(self.arl0, self.fleet_streams * len(CHANGEPOINT_METRICS) * len(self.detectors))


class StreamState:
    """Reference, window, detectors and recent ids of one stream.

    Examples
    --------
    >>> config = StreamConfig(reference_events=10, window_events=10, detectors=("cusum",), arl0=1e4,
    ...                       fleet_streams=1, refusal_flag_rate=0.05, entropy_flag_sigmas=3.0)
    >>> stream = StreamState(config)
    >>> stream.flags((1.0, 20.0, 2.0, float("nan"), 0.0, 0.0, float("nan")))  # a refusal, nothing refused before
    ['refusal']
    >>> for i in range(12):
    ...     stream.append(i, f"e{i}", 1000 * i, (0.0, 20.0, 2.0, float("nan"), 0.0, 0.0, float("nan")))
    >>> stream.reference_complete, len(stream.window), stream.ids_around(11, span=0)
    (True, 2, (['e11'], 11000))
    """

    def __init__(self, config: StreamConfig, reference_rows: Sequence[Sequence[float]] | None = None) -> None:
        self.config = config
        self.count = 0
        self.reference = RollingWindow(COLUMNS, config.reference_events)
        self.reference_complete = False
        if reference_rows:
            self.reference.extend_rows(reference_rows[-config.reference_events:])
            self._complete_reference()
        self.window = RollingWindow(COLUMNS, config.window_events)
        self.detectors = {metric: {name: self._detector(metric, name) for name in config.detectors}
                          for metric in CHANGEPOINT_METRICS}
        self.recent: deque[tuple[int, str, int]] = deque(maxlen=_RECENT_IDS)
        self.since_evaluation = 0
        self.active: set[str] = set()
        self.entropy_floor = -math.inf
        #: metric -> its open change-point episode (at most one per metric).
        self.episodes: dict[str, Episode] = {}
        #: metric -> the level an analyst accepted; a later episode's return comes back to it.
        self.accepted: dict[str, Accepted] = {}

    def _detector(self, metric: str, name: str) -> ChangePointDetector:
        # The 0/1 refusal stream needs nothing special: detectors smooth a 0/1 warm-up themselves.
        return DETECTORS[name](warmup=self.config.reference_events, arl0=self.config.stream_arl0)

    # --- per event -----------------------------------------------------------
    def flags(self, row: Sequence[float]) -> list[str]:
        """Reasons to flag this event for the trigger-motif miner (before it joins the state)."""
        reasons = []
        refusal, entropy = row[0], row[2]
        if refusal >= 1.0:
            rate = self.refusal_rate()
            if rate < self.config.refusal_flag_rate:
                reasons.append("refusal")
        if self.reference_complete and entropy < self.entropy_floor:
            reasons.append("entropy_collapse")
        return reasons

    def refusal_rate(self) -> float:
        """The reference's refusal rate (as far as it is built); 0 before any event."""
        rows = len(self.reference)
        return self.reference.column("refusal").mean() if rows else 0.0

    def append(self, index: int, event_id: str, ts_ms: int, row: Sequence[float]) -> None:
        """Take one event into reference or window, not into the detectors (the stage feeds those)."""
        self.count += 1
        self.recent.append((index, event_id, ts_ms))
        if not self.reference_complete:
            self.reference.append(ts_ms, row)
            if self.reference.full:
                self._complete_reference()
        else:
            self.window.append(ts_ms, row)
            self.since_evaluation += 1

    def _complete_reference(self) -> None:
        self.reference_complete = True
        entropy = self.reference.column("output_entropy")
        # "Far below the reference": under its 1st percentile and k standard deviations under its
        # mean, so a reference full of one-word answers does not flag one-word answers.
        low = float(np.quantile(entropy, 0.01))
        self.entropy_floor = min(low, float(entropy.mean() - self.config.entropy_flag_sigmas * entropy.std()))

    def onset(self, metric: str, detection: Detection) -> int:
        """Where the change ``detection`` found began: the best split of the metric's held values up to it.

        The window holds the stream's latest values, the alarm's event last (its index is the detection's):
        at most :data:`~detectors.changepoint.onset.HISTORY` of them are split
        (:func:`~detectors.changepoint.onset.locate_onset`: a mean split, or under the autoregression whose
        innovations alarmed). The detector's own estimate when they do not line up.
        """
        if not self.reference_complete or not len(self.window) or detection.detected_at != self.count - 1:
            return detection.change_point
        values = self.window.column(metric)[-HISTORY:]
        if metric == "output_chars":
            values = np.log1p(values)  # as the detectors see it
        start = self.count - len(values)
        return start + locate_onset(values, coarse=detection.change_point - start, whitening=detection.whitening,
                                    mean=detection.before)

    def ids_around(self, index: int, span: int = 2) -> tuple[list[str], int | None]:
        """Event ids within ``span`` of update ``index`` still held, and the ts at ``index``."""
        ids = [event_id for i, event_id, _ in self.recent if abs(i - index) <= span]
        at = next((ts for i, _, ts in self.recent if i == index), None)
        return ids, at

    # --- persistence ---------------------------------------------------------
    def snapshot(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "count": self.count,
            "reference": self.reference.snapshot(),
            "reference_complete": self.reference_complete,
            "entropy_floor": None if math.isinf(self.entropy_floor) else self.entropy_floor,
            "window": self.window.snapshot(),
            "detectors": {metric: {name: d.snapshot() for name, d in by_name.items()}
                          for metric, by_name in self.detectors.items()},
            "recent": [list(item) for item in self.recent],
            "since_evaluation": self.since_evaluation,
            "active": sorted(self.active),
            "episodes": {metric: episode.snapshot() for metric, episode in sorted(self.episodes.items())},
            "accepted": {metric: accepted.snapshot() for metric, accepted in sorted(self.accepted.items())},
        }

    @classmethod
    def from_snapshot(cls, config: StreamConfig, state: dict[str, Any]) -> StreamState:
        if not isinstance(state, dict) or state.get("format") not in (FORMAT, *_OLD_FORMATS):
            got = state.get("format") if isinstance(state, dict) else type(state).__name__
            raise SnapshotError(f"stream snapshot format must be {FORMAT!r}; got {got!r}")
        stream = cls(config)
        stream.count = int(state["count"])
        stream.reference = _widened(RollingWindow.from_snapshot(state["reference"]))
        stream.reference_complete = bool(state["reference_complete"])
        floor = state["entropy_floor"]
        stream.entropy_floor = -math.inf if floor is None else float(floor)
        stream.window = _widened(RollingWindow.from_snapshot(state["window"]))
        saved = state["detectors"]
        for metric, by_name in stream.detectors.items():
            if metric not in saved and state["format"] == "drift_stream.v1":
                for detector in by_name.values():  # a metric added since: it starts now, indices aligned
                    detector.update_exact([math.nan] * stream.count)
                continue
            for name, detector in by_name.items():
                if name not in saved.get(metric, {}):
                    raise SnapshotError(f"snapshot lacks detector {name!r} for metric {metric!r}")
                detector.restore(saved[metric][name])
        stream.recent.extend((int(i), str(e), int(t)) for i, e, t in state["recent"])
        stream.since_evaluation = int(state["since_evaluation"])
        stream.active = set(state["active"])
        try:
            stream.episodes = {metric: Episode.from_snapshot(saved)
                               for metric, saved in state.get("episodes", {}).items()}
            stream.accepted = {metric: Accepted.from_snapshot(saved)
                               for metric, saved in state.get("accepted", {}).items()}
        except (KeyError, TypeError, ValueError) as exc:
            raise SnapshotError(f"stream snapshot has a bad change-point episode or accepted level: {exc}") from exc
        return stream


def _widened(window: RollingWindow) -> RollingWindow:
    """``window`` with the columns of :data:`COLUMNS`: a column added since its snapshot is NaN."""
    if tuple(window.columns) == COLUMNS:
        return window
    missing = [c for c in window.columns if c not in COLUMNS]
    if missing:
        raise SnapshotError(f"stream snapshot has columns {missing!r} this version does not know")
    widened = RollingWindow(COLUMNS, window.max_count)
    old = {name: i + 1 for i, name in enumerate(window.columns)}
    widened.extend_rows([(row[0], *(row[old[c]] if c in old else math.nan for c in COLUMNS))
                         for row in window.rows()])
    return widened
