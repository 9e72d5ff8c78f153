"""ADWIN (Bifet & Gavaldà 2007, SDM) through river, calibrated by its own bound.

ADWIN drops the older part of its window when two sub-windows' means differ
by more than a Hoeffding-style bound at confidence ``delta``; its Theorem 3.1
bounds the false-positive probability by ``delta`` per check. Checks run
every ``clock`` updates, so ``delta = clock / arl0`` gives at most one false
alarm per ``arl0`` updates: a conservative calibration (the bound is loose;
the evaluation command reports the realised rate).

The estimated onset is the start of the window ADWIN keeps after the cut.
Snapshots pickle river's Rust-backed state (base64): restore only snapshots
that this service wrote.
"""

from __future__ import annotations

import base64
import pickle
from typing import Any

import numpy as np

from detectors.changepoint._river import RiverAdapter, river_drift

__all__ = ["ADWIN"]


class ADWIN(RiverAdapter):
    """River's ADWIN on standardised input, ``delta`` set from ``arl0``.

    Parameters
    ----------
    clock
        Updates between checks for a cut (river's default 32).
    **kwargs
        ``warmup``, ``arl0``, ``min_scale``, ``seed``: see :class:`~detectors.changepoint.base.WarmupDetector`.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(3)
    >>> stream = np.concatenate([rng.normal(0, 1, 1000), rng.normal(1.5, 1, 500)])
    >>> detector = ADWIN()
    >>> alarms = [i for i, x in enumerate(stream) if (detector.update(x), detector.drift_detected)[1]]
    >>> 1000 <= alarms[0] < 1150
    True
    """

    format = "adwin.v1"

    def __init__(self, *, clock: int = 32, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if clock < 1:
            raise ValueError(f"clock must be >= 1; got {clock!r}")
        self.clock = int(clock)

    @property
    def delta(self) -> float:
        """The confidence ADWIN runs at: ``clock / arl0``, capped at 0.5."""
        return min(0.5, self.clock / self.arl0)

    def _build(self, reference_z: np.ndarray) -> Any:
        # ADWIN exposes no test statistic; its threshold is the confidence it runs at.
        self.threshold = self.delta
        return river_drift().ADWIN(delta=self.delta, clock=self.clock)

    def _onset(self, index: int) -> int:
        return index - int(self.river.width) + 1

    def _after(self) -> float:
        return float(self.river.estimation)

    def _params(self) -> dict[str, Any]:
        return {"clock": self.clock}

    def _state(self) -> dict[str, Any]:
        if self.river is None:
            return {"river": None}
        return {"river": base64.b64encode(pickle.dumps(self.river)).decode("ascii")}

    def _load(self, state: dict[str, Any]) -> None:
        blob = state["river"]
        self.river = None if blob is None else pickle.loads(base64.b64decode(blob))  # our own state
