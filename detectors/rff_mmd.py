"""Sliding-window MMD² in linear time: random Fourier features of the RBF kernel.

``k(x, y) = exp(-gamma ||x - y||²)`` is approximated by ``phi(x) · phi(y)`` with
``phi(x) = sqrt(2 / D) cos(W x + b)``, ``W ~ N(0, 2 gamma I)``, ``b ~ U(0, 2 pi)``
(Rahimi & Recht, 2007). The MMD² of a window against the reference is then
``||mean phi(window) - mean phi(reference)||²``: one ``d × D`` product per
event when it arrives, and a mean of stored features per test, instead of
the window's and the reference's kernel matrices at every test.

The null comes from the reference: ``draws`` random subsets of ``m``
reference vectors, each scored against the reference mean, scaled by the
finite-population factor ``(1/m + 1/n) / (1/m - 1/n)`` (a subset of the
reference is closer to its mean than an independent window would be).
``gamma`` is the median heuristic on a reference sample, as in
:mod:`detectors.embedding.reference`.

Examples
--------
>>> import numpy as np
>>> rng = np.random.default_rng(0)
>>> scorer = RffMmd(rng.normal(size=(400, 8)), features=128, seed=1)
>>> bool(scorer.test(scorer.features(rng.normal(size=(50, 8)))).drift)
False
>>> bool(scorer.test(scorer.features(rng.normal(loc=1.0, size=(50, 8)))).drift)
True
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import stats

__all__ = ["BLOCK", "RffMmd", "RffScore"]

_MEDIAN_SAMPLE = 200
#: Rows per matrix product in :meth:`RffMmd.features` (one shape for every call).
BLOCK = 64


@dataclass(frozen=True)
class RffScore:
    """MMD² of one window, its null threshold at ``alpha`` and its p-value under the fitted null."""

    mmd2: float
    threshold: float
    p_value: float

    @property
    def drift(self) -> bool:
        return self.mmd2 > self.threshold


class RffMmd:
    """MMD² against a fixed reference, with a cached null per window size."""

    def __init__(self, reference: np.ndarray, *, features: int = 256, alpha: float = 0.001, draws: int = 500,
                 seed: int = 0) -> None:
        if not 0.0 < alpha < 1.0:
            raise ValueError(f"alpha must be in (0, 1); got {alpha!r}")
        ref = np.asarray(reference, dtype=np.float64)
        if ref.ndim != 2 or len(ref) < 4:
            raise ValueError(f"reference must be (n >= 4, d); got {ref.shape}")
        rng = np.random.default_rng([seed, 11])
        sample = ref[rng.choice(len(ref), size=min(len(ref), _MEDIAN_SAMPLE), replace=False)]
        sq = (sample * sample).sum(axis=1)
        d2 = np.maximum(sq[:, None] + sq[None, :] - 2.0 * sample @ sample.T, 0.0)
        median = float(np.median(d2[np.triu_indices(len(sample), 1)]))
        self.gamma = 1.0 / (2.0 * median) if median > 0 else 1.0
        self.alpha, self.draws, self.seed = alpha, draws, seed
        self._omega = rng.normal(scale=np.sqrt(2.0 * self.gamma), size=(ref.shape[1], features)).astype(np.float32)
        self._phase = rng.uniform(0.0, 2.0 * np.pi, size=features).astype(np.float32)
        self._scale = np.float32(np.sqrt(2.0 / features))
        self.reference = self.features(ref).astype(np.float64)
        self.mean = self.reference.mean(axis=0)
        self._nulls: dict[int, np.ndarray] = {}
        self._thresholds: dict[int, float] = {}
        self._fits: dict[int, Any] = {}

    def features(self, vectors: np.ndarray) -> np.ndarray:
        """(m, D) float32 random features of (m, d) vectors; each row depends on its own vector only.

        The product runs on blocks of exactly :data:`BLOCK` rows (the last one padded with zeros):
        BLAS picks its kernels by shape, so one shape for every call keeps a row's bits independent of
        the batch it came in. Single precision: the cosine is vectorised there (about 20 times faster
        than in double), and the features' rounding (1e-8) is far below any MMD² that matters.
        """
        rows = np.asarray(vectors, dtype=np.float32)
        n = len(rows)
        padded = -(-n // BLOCK) * BLOCK
        if padded != n:
            rows = np.concatenate([rows, np.zeros((padded - n, rows.shape[1]), dtype=np.float32)])
        projected = np.empty((padded, self._omega.shape[1]), dtype=np.float32)
        for start in range(0, padded, BLOCK):
            np.matmul(rows[start:start + BLOCK], self._omega, out=projected[start:start + BLOCK])
        projected = projected[:n]
        projected += self._phase
        np.cos(projected, out=projected)
        projected *= self._scale
        return projected

    def null(self, m: int) -> np.ndarray:
        """Sorted null MMD² values for windows of ``m`` (drawn once, cached)."""
        null = self._nulls.get(m)
        if null is None:
            n = len(self.reference)
            if not 1 <= m < n:
                raise ValueError(f"window size must be in [1, {n}); got {m!r}")
            rng = np.random.default_rng([self.seed, 12, m])
            # Each draw is a random m-subset, as a row of 0/1 weights: one product gives every mean.
            chosen = np.argsort(rng.random((self.draws, n)), axis=1)[:, :m]
            weights = np.zeros((self.draws, n))
            np.put_along_axis(weights, chosen, 1.0 / m, axis=1)
            diff = weights @ self.reference - self.mean
            values = np.einsum("ij,ij->i", diff, diff)
            values *= (1.0 / m + 1.0 / n) / (1.0 / m - 1.0 / n)
            null = self._nulls[m] = np.sort(values)
        return null

    def test(self, window_features: np.ndarray) -> RffScore:
        """Score a window given its rows of :meth:`features`."""
        return self.test_mean(window_features.mean(axis=0), len(window_features))

    def test_mean(self, window_mean: np.ndarray, m: int) -> RffScore:
        """Score a window of ``m`` vectors given the mean of their features (a caller keeping a running sum)."""
        mmd2 = float(self.mmd2(np.asarray(window_mean)[None, :])[0])
        return RffScore(mmd2=mmd2, threshold=self.threshold(m), p_value=self.p_value(mmd2, m))

    def mmd2(self, window_means: np.ndarray) -> np.ndarray:
        """MMD² of many windows at once, one per row of feature means; each row's value depends on it only."""
        diff = window_means - self.mean
        return np.einsum("ij,ij->i", diff, diff)

    def threshold(self, m: int) -> float:
        """The null's ``1 - alpha`` quantile for windows of ``m``, from a gamma fitted to the null draws.

        ``alpha`` is far in the tail (0.001): the empirical quantile of a few hundred draws is about
        their maximum and moves a lot with the draws. The gamma with the draws' mean and variance (the
        usual approximation of an MMD² null, Gretton et al. 2009) gives a stable tail.
        """
        threshold = self._thresholds.get(m)
        if threshold is None:
            threshold = self._thresholds[m] = float(self._gamma(m).isf(self.alpha))
        return threshold

    def p_value(self, mmd2: float, m: int) -> float:
        """The fitted null's probability of an MMD² at least ``mmd2``."""
        return float(self._gamma(m).sf(mmd2))

    def _gamma(self, m: int) -> Any:
        fitted = self._fits.get(m)
        if fitted is None:
            null = self.null(m)
            mean, var = float(null.mean()), float(null.var())
            shape = mean * mean / var if var > 0 else 1e6
            fitted = self._fits[m] = stats.gamma(shape, scale=(var / mean) if mean > 0 else 1e-12)
        return fitted
