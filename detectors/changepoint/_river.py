"""Shared plumbing for the river adapters: standardise, feed, read the alarm.

River's detectors (Montiel et al. 2021, JMLR 22:110) keep their own state;
the adapter adds our warm-up (standardisation and calibration for ``arl0``),
the absolute ``change_point`` estimate and versioned snapshots. River leaves
thresholds to the user; each adapter sets one of river's parameters from
``arl0`` as its module explains.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from detectors.changepoint.base import WarmupDetector

__all__ = ["RiverAdapter", "river_drift"]


def river_drift() -> Any:
    """``river.drift``, imported on first use: it pulls in scikit-learn (about 1.5 s)."""
    from river import drift

    return drift


class RiverAdapter(WarmupDetector):
    """Base of the river adapters: ``_build()`` makes the river detector after calibration.

    Examples
    --------
    >>> from detectors.changepoint import ADWIN
    >>> detector = ADWIN(warmup=20)
    >>> detector.river is None
    True
    >>> detector.update_many([float(i % 5) for i in range(30)])
    []
    >>> type(detector.river).__name__
    'ADWIN'
    """

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.river: Any = None

    def _calibrate(self, reference_z: np.ndarray) -> None:
        self.river = self._build(reference_z)

    def _build(self, reference_z: np.ndarray) -> Any:
        raise NotImplementedError

    def _onset(self, index: int) -> int:
        raise NotImplementedError

    def _step(self, z: float, index: int) -> bool:
        self.river.update(z)
        self._track(index)
        if not self.river.drift_detected:
            return False
        self.change_point = self._onset(index)
        self._statistic = self._current_statistic()
        self._after_z = self._after()
        return True

    def _track(self, index: int) -> None:
        """Hook run after every update (onset bookkeeping)."""

    def _current_statistic(self) -> float:
        return float("nan")

    def _after(self) -> float:
        return float("nan")
