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

import numpy as np

__all__ = ["RffMmd", "RffScore"]

_MEDIAN_SAMPLE = 200


@dataclass(frozen=True)
class RffScore:
    """MMD² of one window, its null threshold at ``alpha`` and its p-value against the null draws."""

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
        self._omega = rng.normal(scale=np.sqrt(2.0 * self.gamma), size=(ref.shape[1], features))
        self._phase = rng.uniform(0.0, 2.0 * np.pi, size=features)
        self._scale = np.sqrt(2.0 / features)
        self.reference = self.features(ref)
        self.mean = self.reference.mean(axis=0)
        self._nulls: dict[int, np.ndarray] = {}
        self._thresholds: dict[int, float] = {}

    def features(self, vectors: np.ndarray) -> np.ndarray:
        """(m, D) random features of (m, d) vectors; each row depends on its own vector only.

        Row by row: a matrix product's rows can differ in the last bits with the number of rows
        (BLAS picks kernels by shape), and a row must not depend on the batch it came in.
        """
        rows = np.asarray(vectors, dtype=np.float64)
        projected = np.empty((len(rows), self._omega.shape[1]))
        omega = self._omega
        for index in range(len(rows)):
            projected[index] = rows[index] @ omega
        projected += self._phase
        return self._scale * np.cos(projected)

    def null(self, m: int) -> np.ndarray:
        """Sorted null MMD² values for windows of ``m`` (drawn once, cached)."""
        null = self._nulls.get(m)
        if null is None:
            n = len(self.reference)
            if not 1 <= m < n:
                raise ValueError(f"window size must be in [1, {n}); got {m!r}")
            rng = np.random.default_rng([self.seed, 12, m])
            values = np.empty(self.draws)
            for draw in range(self.draws):
                subset = self.reference[rng.choice(n, size=m, replace=False)]
                diff = subset.mean(axis=0) - self.mean
                values[draw] = diff @ diff
            values *= (1.0 / m + 1.0 / n) / (1.0 / m - 1.0 / n)
            null = self._nulls[m] = np.sort(values)
        return null

    def test(self, window_features: np.ndarray) -> RffScore:
        """Score a window given its rows of :meth:`features`."""
        return self.test_mean(window_features.mean(axis=0), len(window_features))

    def test_mean(self, window_mean: np.ndarray, m: int) -> RffScore:
        """Score a window of ``m`` vectors given the mean of their features (a caller keeping a running sum)."""
        diff = window_mean - self.mean
        mmd2 = float(diff @ diff)
        null = self.null(m)
        threshold = self._thresholds.get(m)
        if threshold is None:
            threshold = self._thresholds[m] = float(np.quantile(null, 1.0 - self.alpha))
        p_value = (1.0 + float(np.count_nonzero(null >= mmd2))) / (1.0 + len(null))
        return RffScore(mmd2=mmd2, threshold=threshold, p_value=p_value)
