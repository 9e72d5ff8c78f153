"""KSWIN (Raab, Heusinger & Schleif 2020, Neurocomputing 416:340) through river.

KSWIN compares the newest ``stat_size`` values of a sliding window with a
random sample of the older ones by a Kolmogorov–Smirnov test each update and
alarms when the p-value is at most ``alpha``. Under no change each test's
p-value is (conservatively) uniform, so by a union bound over updates
``alpha = 1 / arl0`` gives at most one false alarm per ``arl0`` updates. The
KS test is rank based, so this holds whatever the input's distribution; no
simulation is needed.

The estimated onset is the first value of the newest ``stat_size``.
"""

from __future__ import annotations

import math
import random
from typing import Any

import numpy as np

from detectors.changepoint._river import RiverAdapter, river_drift

__all__ = ["KSWIN"]


class KSWIN(RiverAdapter):
    """River's KSWIN on standardised input, ``alpha`` set from ``arl0``.

    Parameters
    ----------
    window_size, stat_size
        River's sliding window and test sample sizes.
    **kwargs
        ``warmup``, ``arl0``, ``min_scale``, ``seed``: see :class:`~detectors.changepoint.base.WarmupDetector`.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(4)
    >>> stream = np.concatenate([rng.normal(0, 1, 400), rng.normal(3, 1, 200)])
    >>> detector = KSWIN()
    >>> alarms = [i for i, x in enumerate(stream) if (detector.update(x), detector.drift_detected)[1]]
    >>> 400 <= alarms[0] < 440
    True
    """

    format = "kswin.v1"

    def __init__(self, *, window_size: int = 100, stat_size: int = 30, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if not 0 < stat_size < window_size:
            raise ValueError(f"need 0 < stat_size < window_size; got {stat_size} and {window_size}")
        self.window_size = int(window_size)
        self.stat_size = int(stat_size)

    @property
    def alpha(self) -> float:
        """The per-test level: ``1 / arl0``."""
        return 1.0 / self.arl0

    def _build(self, reference_z: np.ndarray) -> Any:
        # Statistic and threshold as -log10 of the p-value and of alpha: higher is more surprising.
        self.threshold = -math.log10(self.alpha)
        return river_drift().KSWIN(alpha=self.alpha, window_size=self.window_size, stat_size=self.stat_size,
                           seed=self.seed + self.calibrations)

    def _onset(self, index: int) -> int:
        return index - self.stat_size + 1

    def _current_statistic(self) -> float:
        return -math.log10(max(float(self.river.p_value), 1e-300))

    def _after(self) -> float:
        recent = list(self.river.window)[-self.stat_size:]
        return float(np.mean(recent)) if recent else float("nan")

    def _params(self) -> dict[str, Any]:
        return {"window_size": self.window_size, "stat_size": self.stat_size}

    def _state(self) -> dict[str, Any]:
        if self.river is None:
            return {"river": None}
        version, internal, gauss = self.river._rng.getstate()
        return {"river": {"window": list(self.river.window), "n": self.river.n,
                          "p_value": float(self.river.p_value), "drift": self.river.drift_detected,
                          "rng": [version, list(internal), gauss]}}

    def _load(self, state: dict[str, Any]) -> None:
        saved = state["river"]
        if saved is None:
            self.river = None
            return
        detector = river_drift().KSWIN(alpha=self.alpha, window_size=self.window_size, stat_size=self.stat_size,
                               window=saved["window"])
        detector.n = int(saved["n"])
        detector.p_value = float(saved["p_value"])
        detector._drift_detected = bool(saved["drift"])
        version, internal, gauss = saved["rng"]
        detector._rng = random.Random()
        detector._rng.setstate((version, tuple(internal), gauss))
        self.river = detector
