"""Where a detected change began: the best single split of the values before the alarm.

An online detector's own onset estimate is coarse: CUSUM's is the start of
its excursion, which on autocorrelated data often began well before the
change as the statistic wandered. Once an alarm says *that* something
changed, the values since the previous change (at most ``history`` of them,
what a stream keeps anyway) locate *where* far better: the split that
maximises the standardised difference of means,

    ``|S_k - (k / n) S_n| / sqrt(k (n - k) / n)``,

the likelihood-ratio statistic of one change in mean (Hinkley 1970; the
single step of binary segmentation, Scott & Knott 1974); for a 0/1 metric
(refusals) the split of the largest Bernoulli likelihood instead. It uses
only values up to the alarm, so it stays an online estimate.

Examples
--------
>>> import numpy as np
>>> values = np.r_[np.zeros(300), np.ones(12) * 3.0] + np.random.default_rng(0).normal(0, 1, 312)
>>> refine_onset(values)
300
"""

from __future__ import annotations

import numpy as np

__all__ = ["HISTORY", "refine_onset"]

#: Values before an alarm a stream keeps to locate its onset.
HISTORY = 500
# Splits this close to either end are not considered: a mean of one or two values is noise.
_EDGE = 3


def refine_onset(values: np.ndarray, *, coarse: int | None = None) -> int:
    """Index into ``values`` (the last one raised the alarm) where the single best split puts the change.

    NaN values are skipped (an index counts them, as the detectors do). ``coarse`` (the
    detector's own estimate) is returned when too few finite values remain to split.
    """
    values = np.asarray(values, dtype=np.float64)
    positions = np.flatnonzero(np.isfinite(values))
    n = positions.size
    if n < 2 * _EDGE + 1:
        return int(values.size - 1 if coarse is None else coarse)
    finite = values[positions]
    k = np.arange(1, n)
    if np.isin(finite, (0.0, 1.0)).all():
        # A 0/1 stream (refusals): the split of the largest Bernoulli likelihood, which a rare event
        # needs; the normal statistic places a sparse rise late.
        ones = np.cumsum(finite)[:-1]
        score = _bernoulli(ones, k) + _bernoulli(finite.sum() - ones, n - k)
    else:
        sums = np.cumsum(finite - finite.mean())
        score = np.abs(sums[:-1]) / np.sqrt(k * (n - k) / n)
    score[: _EDGE - 1] = -np.inf
    score[n - _EDGE:] = -np.inf
    split = int(np.argmax(score)) + 1  # the first value after the split
    return int(positions[split])


def _bernoulli(ones: np.ndarray, count: np.ndarray) -> np.ndarray:
    """Log-likelihood of ``ones`` events in ``count`` trials at their own rate (0 log 0 = 0)."""
    rate = ones / count
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = ones * np.log(rate) + (count - ones) * np.log1p(-rate)
    return np.nan_to_num(terms, nan=0.0, neginf=0.0)
