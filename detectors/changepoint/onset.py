"""Where a detected change began: the best single split of the values before the alarm.

An online detector's own onset estimate is coarse: CUSUM's is the start of
its excursion, which on autocorrelated data often began well before the
change as the statistic wandered. Once an alarm says *that* something
changed, the values since the previous change (at most ``history`` of them,
what a stream keeps anyway) locate *where* far better: the split that
maximises the standardised difference of means,

    ``|S_k - (k / n) S_n| / sqrt(k (n - k) / n)``,

the likelihood-ratio statistic of one change in mean (Hinkley 1970; the
single step of binary segmentation, Scott & Knott 1974). It uses only
values up to the alarm, so it stays an online estimate.

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
    """Index into ``values`` (the last one raised the alarm) where the single best mean split puts the change.

    NaN values are skipped (an index counts them, as the detectors do). ``coarse`` (the
    detector's own estimate) is returned when too few finite values remain to split.
    """
    values = np.asarray(values, dtype=np.float64)
    positions = np.flatnonzero(np.isfinite(values))
    n = positions.size
    if n < 2 * _EDGE + 1:
        return int(values.size - 1 if coarse is None else coarse)
    finite = values[positions]
    sums = np.cumsum(finite - finite.mean())
    k = np.arange(1, n)
    score = np.abs(sums[:-1]) / np.sqrt(k * (n - k) / n)
    score[: _EDGE - 1] = -np.inf
    score[n - _EDGE:] = -np.inf
    split = int(np.argmax(score)) + 1  # the first value after the split
    return int(positions[split])
