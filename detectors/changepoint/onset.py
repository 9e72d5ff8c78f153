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

An alarm of an innovations chart (CUSUM on an autocorrelated stream, whose
``Detection.whitening`` holds the autoregression ``a``) is located under that
model instead (:func:`level_shift_onset`): a mean split of a cycle or a
persistent wander finds the wander. :func:`locate_onset` picks the one the
alarm calls for.

Examples
--------
>>> import numpy as np
>>> values = np.r_[np.zeros(300), np.ones(12) * 3.0] + np.random.default_rng(0).normal(0, 1, 312)
>>> refine_onset(values)
300
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

__all__ = ["HISTORY", "level_shift_onset", "locate_onset", "refine_onset"]

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


def locate_onset(values: np.ndarray, *, coarse: int | None = None, whitening: Sequence[float] = (),
                 mean: float = 0.0) -> int:
    """Index into ``values`` (the last one raised the alarm) where the change began.

    :func:`level_shift_onset` when the alarm came from innovations (``whitening`` non-empty, ``mean``
    the detector's reference mean), :func:`refine_onset` otherwise.
    """
    if len(whitening):
        return level_shift_onset(values, whitening, mean, coarse=coarse)
    return refine_onset(values, coarse=coarse)


def level_shift_onset(values: np.ndarray, whitening: Sequence[float], mean: float, *,
                      coarse: int | None = None) -> int:
    """The onset of a level shift in an autoregression: the maximum-likelihood one, given the model.

    With ``e`` the innovations of ``values - mean`` under ``x_t = sum_i a_i x_{t-i} + e_t``, a shift
    ``d`` from ``tau`` on adds ``d c_j`` to ``e_{tau + j}``, where ``c_j = 1 - a_1 - ... - a_min(j, p)``:
    the whole shift to the first innovation, then what the model does not expect. The onset
    maximises ``(sum_j c_j e_{tau + j})^2 / sum_j c_j^2``, the likelihood ratio of a shift at ``tau``
    (its size fitted), down to a shift at the alarming value itself. The first ``p`` values only seed
    the model. NaN values are skipped, as the detectors skip them.

    >>> rng = np.random.default_rng(1)
    >>> x = np.zeros(300)
    >>> for t in range(1, 300):
    ...     x[t] = 0.9 * x[t - 1] + rng.normal(0, 0.44)
    >>> level_shift_onset(np.r_[x[:298], x[298:] + 3.0], [0.9], 0.0)
    298
    """
    values = np.asarray(values, dtype=np.float64)
    positions = np.flatnonzero(np.isfinite(values))
    a = np.asarray(whitening, dtype=np.float64)
    order, n = a.size, positions.size
    if n <= order:
        return int(values.size - 1 if coarse is None else coarse)
    centred = values[positions] - mean
    innovations = np.convolve(centred, np.concatenate([[1.0], -a]))[:n]
    c = 1.0 - np.concatenate([[0.0], np.cumsum(a)])  # c_0 .. c_p; c_j = c_p beyond
    tail = c[-1]
    # sum_j c_j e_{tau+j} = tail * (suffix sum from tau) + sum_{j < p} (c_j - tail) e_{tau+j}
    signature = tail * np.cumsum(innovations[::-1])[::-1]
    for j in range(order):
        signature[:n - j] += (c[j] - tail) * innovations[j:]
    weights = np.concatenate([c[:order] ** 2, np.full(max(0, n - order), tail * tail)])[:n]
    energy = np.cumsum(weights)[n - 1 - np.arange(n)]  # sum of c_j^2 over the values from tau to the end
    score = signature * signature / np.maximum(energy, 1e-300)
    score[:order] = -np.inf
    return int(positions[int(np.argmax(score))])


def _bernoulli(ones: np.ndarray, count: np.ndarray) -> np.ndarray:
    """Log-likelihood of ``ones`` events in ``count`` trials at their own rate (0 log 0 = 0)."""
    rate = ones / count
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = ones * np.log(rate) + (count - ones) * np.log1p(-rate)
    return np.nan_to_num(terms, nan=0.0, neginf=0.0)
