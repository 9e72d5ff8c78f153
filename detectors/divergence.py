"""Divergences and two-sample tests between a current window and a reference.

Histogram divergences take two count (or probability) vectors over the same
bins and normalise them; sample statistics take two samples of numbers.
Categorical values (tool names, output classes, anything unbounded) go
through :func:`hashed_histogram` first, so the number of bins stays fixed
whatever the vocabulary.

Examples
--------
>>> round(js_divergence([10, 0], [5, 5]), 4)
0.3113
>>> stat, p = chi_square_test([90, 10], [50, 50])
>>> p < 1e-6
True
"""

from __future__ import annotations

import zlib
from collections.abc import Iterable, Sequence

import numpy as np

__all__ = ["chi_square_test", "hashed_histogram", "hellinger", "js_divergence", "kl_both_directions",
           "kl_divergence", "ks_test", "psi", "quantile_histograms", "wasserstein1"]

ArrayLike = Sequence[float] | np.ndarray

#: Pseudo-probability added to every bin before a log ratio, so an empty bin
#: gives a large but finite divergence instead of infinity.
DEFAULT_SMOOTHING = 1e-6


def _distributions(p: ArrayLike, q: ArrayLike, smoothing: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    a = np.asarray(p, dtype=np.float64).ravel()
    b = np.asarray(q, dtype=np.float64).ravel()
    if a.shape != b.shape or a.size == 0:
        raise ValueError(f"p and q must be non-empty and of the same length; got {a.size} and {b.size}")
    if (a < 0).any() or (b < 0).any():
        raise ValueError("p and q must be non-negative counts or probabilities")
    if a.sum() <= 0 or b.sum() <= 0:
        raise ValueError(f"p and q must each have positive mass; got sums {a.sum()} and {b.sum()}")
    if smoothing < 0:
        raise ValueError(f"smoothing must be >= 0; got {smoothing!r}")
    a = a / a.sum() + smoothing
    b = b / b.sum() + smoothing
    return a / a.sum(), b / b.sum()


def kl_divergence(p: ArrayLike, q: ArrayLike, *, smoothing: float = DEFAULT_SMOOTHING) -> float:
    """Kullback–Leibler divergence D(p || q) in nats, with additive smoothing."""
    a, b = _distributions(p, q, smoothing)
    mask = a > 0
    return float(np.sum(a[mask] * np.log(a[mask] / b[mask])))


def kl_both_directions(p: ArrayLike, q: ArrayLike, *,
                       smoothing: float = DEFAULT_SMOOTHING) -> tuple[float, float]:
    """(D(p || q), D(q || p)): KL is not symmetric, and each direction misses different changes."""
    return kl_divergence(p, q, smoothing=smoothing), kl_divergence(q, p, smoothing=smoothing)


def js_divergence(p: ArrayLike, q: ArrayLike, *, base: float = 2.0) -> float:
    """Jensen–Shannon divergence (not its square root); in [0, 1] for ``base=2``."""
    a, b = _distributions(p, q)
    m = (a + b) / 2

    def part(x: np.ndarray) -> float:
        mask = x > 0
        return float(np.sum(x[mask] * np.log(x[mask] / m[mask])))

    return max(0.0, float((part(a) + part(b)) / 2 / np.log(base)))


def psi(p: ArrayLike, q: ArrayLike, *, smoothing: float = 1e-4) -> float:
    """Population stability index: sum of (p - q) ln(p / q), the credit-risk convention.

    ``p`` is the current window, ``q`` the reference. Common reading: < 0.1
    stable, 0.1–0.25 some shift, > 0.25 a large shift.
    """
    a, b = _distributions(p, q, smoothing)
    return float(np.sum((a - b) * np.log(a / b)))


def hellinger(p: ArrayLike, q: ArrayLike) -> float:
    """Hellinger distance, in [0, 1]."""
    a, b = _distributions(p, q)
    return float(np.sqrt(max(0.0, 1.0 - np.sum(np.sqrt(a * b)))))


def _samples(x: ArrayLike, y: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    a = np.asarray(x, dtype=np.float64).ravel()
    b = np.asarray(y, dtype=np.float64).ravel()
    a, b = a[np.isfinite(a)], b[np.isfinite(b)]
    if a.size == 0 or b.size == 0:
        raise ValueError(f"both samples need a finite value; got {a.size} and {b.size}")
    return np.sort(a), np.sort(b)


def wasserstein1(x: ArrayLike, y: ArrayLike) -> float:
    """Earth mover's distance between two samples: the area between their empirical CDFs."""
    a, b = _samples(x, y)
    grid = np.sort(np.concatenate([a, b]))
    cdf_a = np.searchsorted(a, grid[:-1], side="right") / a.size
    cdf_b = np.searchsorted(b, grid[:-1], side="right") / b.size
    return float(np.sum(np.abs(cdf_a - cdf_b) * np.diff(grid)))


def ks_test(x: ArrayLike, y: ArrayLike) -> tuple[float, float]:
    """Two-sample Kolmogorov–Smirnov test: (statistic, asymptotic two-sided p-value).

    The p-value uses the Kolmogorov distribution at the effective sample size
    n·m/(n+m), as scipy's ``method="asymp"`` does; windows are large enough
    that the exact small-sample distribution is not needed.
    """
    a, b = _samples(x, y)
    grid = np.concatenate([a, b])
    statistic = float(np.max(np.abs(np.searchsorted(a, grid, side="right") / a.size
                                    - np.searchsorted(b, grid, side="right") / b.size)))
    from scipy import stats  # on first use: scipy.stats takes about a second to import

    effective = round(a.size * b.size / (a.size + b.size))
    p_value = float(np.clip(stats.kstwo.sf(statistic, effective), 0.0, 1.0))
    return statistic, p_value


def chi_square_test(counts_a: ArrayLike, counts_b: ArrayLike) -> tuple[float, float]:
    """Pearson's chi-square test that two count vectors share one distribution.

    Bins empty in both are dropped; with fewer than two bins left, the
    samples cannot differ and the result is (0, 1).
    """
    a = np.asarray(counts_a, dtype=np.float64).ravel()
    b = np.asarray(counts_b, dtype=np.float64).ravel()
    if a.shape != b.shape:
        raise ValueError(f"counts must have the same length; got {a.size} and {b.size}")
    if (a < 0).any() or (b < 0).any():
        raise ValueError("counts must be non-negative")
    keep = (a + b) > 0
    a, b = a[keep], b[keep]
    if a.size < 2 or a.sum() == 0 or b.sum() == 0:
        return 0.0, 1.0
    table = np.stack([a, b])
    expected = table.sum(axis=1, keepdims=True) * table.sum(axis=0, keepdims=True) / table.sum()
    statistic = float(np.sum((table - expected) ** 2 / expected))
    from scipy import stats

    return statistic, float(stats.chi2.sf(statistic, a.size - 1))


def hashed_histogram(values: Iterable[object], n_bins: int = 64) -> np.ndarray:
    """Counts of categorical ``values`` hashed into ``n_bins`` bins (CRC-32, stable across processes)."""
    if n_bins < 2:
        raise ValueError(f"n_bins must be >= 2; got {n_bins!r}")
    counts = np.zeros(n_bins, dtype=np.float64)
    for value in values:
        counts[zlib.crc32(str(value).encode("utf-8", "surrogatepass")) % n_bins] += 1
    return counts


def quantile_histograms(current: ArrayLike, reference: ArrayLike, n_bins: int = 10) -> tuple[np.ndarray, np.ndarray]:
    """Counts of both samples over bins cut at the reference's quantiles (PSI's usual binning)."""
    cur, ref = _samples(current, reference)
    edges = np.unique(np.quantile(ref, np.linspace(0, 1, n_bins + 1)[1:-1]))
    return (np.bincount(np.searchsorted(edges, cur, side="right"), minlength=edges.size + 1).astype(float),
            np.bincount(np.searchsorted(edges, ref, side="right"), minlength=edges.size + 1).astype(float))
