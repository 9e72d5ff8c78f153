"""Thresholds for a target mean run length between false alarms (ARL0).

A detector's threshold is set by simulation on its own reference data: it
draws ``paths`` bootstrap resamples of ``length`` reference values (each
standardised by a re-estimated warm-up, see
:meth:`detectors.changepoint.base.WarmupDetector._calibration_paths`), runs
its statistic along each path with no threshold, and keeps each path's
maximum. A path raises no false alarm when its maximum stays
below the threshold, so P(max <= h) = P(run length > length).

For CUSUM-type statistics the run length to a false alarm is close to
geometric and its tail exponential in ``h`` (Siegmund 1985, *Sequential
Analysis*, ch. II), so the path maxima are close to Gumbel distributed. We fit
a Gumbel law to them by moments and solve

    exp(-exp(-(h - mu) / beta)) = exp(-length / ARL0)  =>  h = mu + beta ln(ARL0 / length),

which also extrapolates to ARL0 values far beyond what a short simulation can
reach (a fleet-scaled ARL0 of 10^8, say). Alibi Detect calibrates its online
detectors' thresholds by simulation in the same spirit (expected run time).

Examples
--------
>>> import numpy as np
>>> rng = np.random.default_rng(0)
>>> maxima = rng.gumbel(5.0, 1.0, size=4000)
>>> round(gumbel_threshold(maxima, length=1000, arl0=10_000), 1)
7.3
>>> fleet_arl0(10_000, streams=50)
500000.0
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["DEFAULT_ARL0", "fleet_arl0", "gumbel_threshold"]

DEFAULT_ARL0 = 10_000.0
_EULER_GAMMA = 0.5772156649015329


def fleet_arl0(target_arl0: float, streams: int) -> float:
    """Per-stream ARL0 so that ``streams`` streams together false-alarm once per ``target_arl0`` steps.

    False alarms of independent streams add up (a union bound when they are
    not independent), so each stream gets ``streams`` times the target.
    """
    if target_arl0 <= 1:
        raise ValueError(f"target_arl0 must be > 1; got {target_arl0!r}")
    if streams < 1:
        raise ValueError(f"streams must be >= 1; got {streams!r}")
    return float(target_arl0) * streams


def gumbel_threshold(maxima: np.ndarray, *, length: int, arl0: float) -> float:
    """Threshold ``h`` with P(max over ``length`` steps <= h) = exp(-length / arl0), Gumbel-fitted."""
    values = np.asarray(maxima, dtype=np.float64)
    values = values[np.isfinite(values)]
    if values.size < 2:
        raise ValueError(f"need at least two finite path maxima; got {values.size}")
    if arl0 <= 1:
        raise ValueError(f"arl0 must be > 1; got {arl0!r}")
    beta = float(values.std(ddof=1)) * math.sqrt(6.0) / math.pi
    mu = float(values.mean()) - _EULER_GAMMA * beta
    threshold = mu + beta * math.log(arl0 / length)
    if beta == 0.0:
        # A constant reference: every path reached the same maximum. Anything above it is news.
        return float(values.max()) + 1e-9
    return threshold
