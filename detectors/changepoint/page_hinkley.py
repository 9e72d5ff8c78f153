"""Page–Hinkley (Page 1954; Hinkley 1971) through river, threshold calibrated by simulation.

River's Page–Hinkley accumulates deviations from the running mean, with a
tolerance ``delta`` and a forgetting factor ``alpha``, and alarms when the
accumulated rise (or fall) exceeds ``threshold`` (river's default 50, for
unscaled data). Here the input is standardised and ``threshold`` is set for
``arl0``: river's recursion is run on bootstrap paths of the reference (as a
linear filter, so without a Python loop) and the path maxima are Gumbel
fitted (:mod:`detectors.changepoint.calibration`).

The estimated onset is the first update after the firing side's
accumulated sum was last at its extreme (read from river's state).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from detectors.changepoint._river import RiverAdapter, river_drift
from detectors.changepoint.calibration import gumbel_threshold

__all__ = ["PageHinkley"]


class PageHinkley(RiverAdapter):
    """River's PageHinkley on standardised input, ``threshold`` set for ``arl0``.

    Parameters
    ----------
    delta, alpha, min_instances
        River's tolerance, forgetting factor and minimum count.
    calibration_paths, calibration_length
        Size of the bootstrap simulation that sets the threshold.
    **kwargs
        ``warmup``, ``arl0``, ``min_scale``, ``seed``: see :class:`~detectors.changepoint.base.WarmupDetector`.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(5)
    >>> stream = np.concatenate([rng.normal(0, 1, 1000), rng.normal(1.5, 1, 500)])
    >>> detector = PageHinkley()
    >>> alarms = [i for i, x in enumerate(stream) if (detector.update(x), detector.drift_detected)[1]]
    >>> 1000 <= alarms[0] < 1200
    True
    """

    format = "page_hinkley.v1"

    def __init__(self, *, delta: float = 0.005, alpha: float = 1 - 1e-4, min_instances: int = 30,
                 calibration_paths: int = 100, calibration_length: int = 10_000, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if not 0 < alpha <= 1:
            raise ValueError(f"alpha must be in (0, 1]; got {alpha!r}")
        self.delta = float(delta)
        self.alpha = float(alpha)
        self.min_instances = int(min_instances)
        self.calibration_paths = int(calibration_paths)
        self.calibration_length = int(calibration_length)
        self.up_start = 0
        self.down_start = 0

    def _build(self, reference_z: np.ndarray) -> Any:
        from scipy.signal import lfilter

        paths = self._calibration_paths(self.calibration_paths, self.calibration_length)
        steps = np.arange(1, self.calibration_length + 1)
        deviation = paths - np.cumsum(paths, axis=1) / steps
        rise = lfilter([1.0], [1.0, -self.alpha], deviation - self.delta, axis=1)
        fall = lfilter([1.0], [1.0, -self.alpha], deviation + self.delta, axis=1)
        rise_test = rise - np.minimum.accumulate(rise, axis=1)
        fall_test = np.maximum.accumulate(np.maximum(fall, -1.0), axis=1) - fall
        counted = steps >= self.min_instances
        maxima = np.maximum(rise_test[:, counted].max(axis=1), fall_test[:, counted].max(axis=1))
        self.threshold = gumbel_threshold(maxima, length=self.calibration_length, arl0=self.arl0)
        self.up_start = self.down_start = self.n
        return river_drift().PageHinkley(min_instances=self.min_instances, delta=self.delta,
                                 threshold=self.threshold, alpha=self.alpha)

    def _track(self, index: int) -> None:
        # River keeps the running extremes, not where they happened; we keep that.
        if self.river._sum_increase <= self.river._min_increase:
            self.up_start = index + 1
        if self.river._sum_decrease >= self.river._max_decrease:
            self.down_start = index + 1

    def _rising(self) -> bool:
        return (self.river._sum_increase - self.river._min_increase
                >= self.river._max_decrease - self.river._sum_decrease)

    def _onset(self, index: int) -> int:
        return min(index, self.up_start if self._rising() else self.down_start)

    def _current_statistic(self) -> float:
        if self._rising():
            return float(self.river._sum_increase - self.river._min_increase)
        return float(self.river._max_decrease - self.river._sum_decrease)

    def _params(self) -> dict[str, Any]:
        return {"delta": self.delta, "alpha": self.alpha, "min_instances": self.min_instances,
                "calibration_paths": self.calibration_paths, "calibration_length": self.calibration_length}

    def _state(self) -> dict[str, Any]:
        if self.river is None:
            return {"river": None}
        r = self.river
        # The running minimum starts at +inf, which JSON cannot hold: None stands for it.
        least = None if r._min_increase == float("inf") else r._min_increase
        return {"river": {"mean": r._x_mean.get(), "count": r._x_mean.n, "sum_increase": r._sum_increase,
                          "sum_decrease": r._sum_decrease, "min_increase": least,
                          "max_decrease": r._max_decrease, "drift": r.drift_detected},
                "up_start": self.up_start, "down_start": self.down_start}

    def _load(self, state: dict[str, Any]) -> None:
        saved = state["river"]
        if saved is None:
            self.river = None
            return
        r = river_drift().PageHinkley(min_instances=self.min_instances, delta=self.delta,
                              threshold=self.threshold, alpha=self.alpha)
        r._x_mean.n = float(saved["count"])
        r._x_mean._mean = float(saved["mean"])
        r._sum_increase = float(saved["sum_increase"])
        r._sum_decrease = float(saved["sum_decrease"])
        r._min_increase = float("inf") if saved["min_increase"] is None else float(saved["min_increase"])
        r._max_decrease = float(saved["max_decrease"])
        r._drift_detected = bool(saved["drift"])
        self.river = r
        self.up_start, self.down_start = int(state["up_start"]), int(state["down_start"])
