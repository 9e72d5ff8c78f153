"""Resampling a warm-up so that simulated paths wander as the stream does: blocks and an AR sieve.

A detector's threshold is set on bootstrap paths of its warm-up
(:mod:`detectors.changepoint.calibration`). Real metrics are dependent, and paths
drawn as independent values read the stream's ordinary wander as change. Two
tools keep the dependence:

* :func:`stationary_bootstrap`: blocks of the sample in arrival order, of
  geometric length (Politis & Romano 1994), with a mean length from the lag-1
  autocorrelation (:func:`block_length`). It keeps short-range dependence; blocks
  much shorter than the memory of the process lose part of it, which
  under-states the long-run variance (about a third for an AR(1) with phi = 0.9
  on a 500-value warm-up) and with it the threshold.
* :func:`sieve_paths`: the AR sieve bootstrap (Kreiss 1992; Bühlmann 1997,
  Bernoulli 3:123). An autoregression whose order the data choose by BIC
  (:func:`fit_autoregression`, Yule–Walker through Levinson–Durbin, always
  stationary) is fitted to the warm-up; paths are that autoregression driven by
  resampled residuals, so they carry the whole autocorrelation the fit found,
  however long its memory. The residuals are resampled in blocks themselves
  (:func:`stationary_bootstrap` again), so dependence the autoregression missed
  is kept as well. An independent warm-up (order 0) gives exactly the blocks
  of the first tool.

What a warm-up cannot show, no resampling of it can: a cycle seen for a few
periods fits an autoregression with roots near 1, whose paths also let the
cycle's level and amplitude drift, so a fixed daily pattern is priced as a
strongly persistent wander (few false alarms, slower detection: CUSUM's
innovations chart, :mod:`detectors.changepoint.cusum`, gives that speed back);
a mean that moves too slowly to show within the warm-up is not priced at all.

Examples
--------
>>> rng = np.random.default_rng(0)
>>> x = np.zeros(2000)
>>> for t in range(1, 2000):
...     x[t] = 0.9 * x[t - 1] + rng.normal()
>>> [round(float(c), 1) for c in fit_autoregression(x)]
[0.9]
>>> fit_autoregression(rng.normal(size=2000)).size
0
>>> paths = sieve_paths(x[:500], 4, 3000, rng)
>>> paths.shape, bool(abs(np.corrcoef(paths[0, 1:], paths[0, :-1])[0, 1] - 0.9) < 0.05)
((4, 3000), True)
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["MAX_ORDER", "block_length", "fit_autoregression", "sieve_paths", "stationary_bootstrap"]

#: Highest autoregressive order tried; at most one per 20 warm-up values.
MAX_ORDER = 10
# The simulated process starts at its mean; this many values are dropped first, enough for the
# start to fade to 1/1000 of a standard deviation at the fitted process's slowest decay.
_BURN_IN_DECAY = math.log(1e-3)
_MAX_BURN_IN = 5000


def block_length(values: np.ndarray) -> float:
    """Mean block length for a stationary bootstrap of ``values``: ``(1 + r) / (1 - r)``, r the lag-1 autocorrelation.

    That is the integrated autocorrelation time of an AR(1) with coefficient ``r``: about the number
    of consecutive values that carry one value's worth of information. 1 (independent draws) when
    ``r <= 0``; at most a quarter of the sample, so a path still mixes several blocks.

    >>> block_length(np.arange(4.0).repeat(50)) > 10, block_length(np.tile([0.0, 1.0], 100))
    (True, 1.0)
    """
    centred = values - values.mean()
    denominator = float(centred @ centred)
    r = float(centred[1:] @ centred[:-1]) / denominator if denominator > 0 else 0.0
    if not r > 0.0:
        return 1.0
    return float(min((1.0 + r) / (1.0 - r) if r < 1.0 else math.inf, max(1.0, values.size / 4.0)))


def stationary_bootstrap(n: int, paths: int, size: int, mean_block: float, rng: np.random.Generator) -> np.ndarray:
    """``(paths, size)`` indices into a sample of ``n``: blocks of geometric length (mean ``mean_block``), wrapping.

    Each index follows the previous one with probability ``1 - 1/mean_block`` and jumps to a uniform
    start otherwise (Politis & Romano 1994); ``mean_block = 1`` gives independent draws.

    >>> rng = np.random.default_rng(0)
    >>> bool((np.diff(stationary_bootstrap(10, 3, 8, 1e9, rng), axis=1) % 10 == 1).all())  # one block per path
    True
    >>> stationary_bootstrap(10, 2, 4, 1.0, rng).shape
    (2, 4)
    """
    starts = rng.integers(n, size=(paths, size))
    if mean_block <= 1.0:
        return starts
    jump = rng.random((paths, size)) < 1.0 / mean_block
    jump[:, 0] = True
    position = np.arange(size)
    last_jump = np.maximum.accumulate(np.where(jump, position, 0), axis=1)
    return (np.take_along_axis(starts, last_jump, axis=1) + (position - last_jump)) % n


def fit_autoregression(values: np.ndarray, max_order: int = MAX_ORDER) -> np.ndarray:
    """Coefficients ``a_1 .. a_p`` of ``x_t - m = sum_i a_i (x_{t-i} - m) + e_t``, ``p`` by BIC (0 to ``max_order``).

    Yule–Walker equations on the biased autocovariances, solved by the Levinson–Durbin recursion:
    the fit is always stationary. The order is at most one per 20 values. An empty array when no
    order beats independence (or the values do not vary). BIC (Schwarz 1978) rather than AIC: AIC
    gives about one independent warm-up in five a spurious lag, which only raises the threshold
    (the 1σ step delay of CUSUM went from 12.2 to 13.6 events with it).
    """
    centred = np.asarray(values, dtype=np.float64) - float(np.mean(values))
    n = centred.size
    top = min(int(max_order), n // 20)
    if top < 1:
        return np.zeros(0)
    autocovariance = np.array([float(centred[:n - k] @ centred[k:]) / n for k in range(top + 1)])
    if not autocovariance[0] > 0.0:
        return np.zeros(0)
    coefficients, variance = np.zeros(0), autocovariance[0]
    best, best_score = coefficients, n * math.log(variance)
    penalty = math.log(n)
    for order in range(1, top + 1):
        reflection = (autocovariance[order] - coefficients @ autocovariance[order - 1:0:-1]) / variance
        coefficients = np.append(coefficients - reflection * coefficients[::-1], reflection)
        variance *= 1.0 - reflection * reflection
        if not variance > 0.0:  # a perfectly predictable warm-up: nothing left to resample
            break
        score = n * math.log(variance) + penalty * order
        if score < best_score:
            best, best_score = coefficients, score
    return best


def sieve_paths(reference: np.ndarray, paths: int, size: int, rng: np.random.Generator,
                max_order: int = MAX_ORDER) -> np.ndarray:
    """``(paths, size)`` simulated values like ``reference`` in its arrival order: the AR sieve bootstrap.

    With no autoregression chosen, a stationary bootstrap of ``reference`` itself (blocks from its
    lag-1 autocorrelation); otherwise the fitted autoregression, started at the mean and run in for
    long enough to forget its start, driven by a stationary bootstrap of the centred residuals.
    """
    coefficients = fit_autoregression(reference, max_order)
    if coefficients.size == 0:
        return reference[stationary_bootstrap(reference.size, paths, size, block_length(reference), rng)]
    from scipy.signal import lfilter  # on first use, as elsewhere in the detectors

    mean = float(reference.mean())
    centred = reference - mean
    order = coefficients.size
    predicted = sum(a * centred[order - i:centred.size - i] for i, a in enumerate(coefficients, start=1))
    residuals = centred[order:] - predicted
    residuals -= residuals.mean()
    burn_in = _burn_in(coefficients)
    draws = residuals[stationary_bootstrap(residuals.size, paths, size + burn_in, block_length(residuals), rng)]
    simulated = lfilter([1.0], np.concatenate([[1.0], -coefficients]), draws, axis=1)
    return np.asarray(simulated[:, burn_in:] + mean, dtype=np.float64)


def _burn_in(coefficients: np.ndarray) -> int:
    """Values to run the autoregression in: its start decays as the largest root's modulus to the power t."""
    slowest = float(np.abs(np.roots(np.concatenate([[1.0], -coefficients]))).max())
    if not slowest > 0.0:
        return coefficients.size
    if slowest >= 1.0:
        return _MAX_BURN_IN
    return int(min(_MAX_BURN_IN, max(coefficients.size, math.ceil(_BURN_IN_DECAY / math.log(slowest)))))
