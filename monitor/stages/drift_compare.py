"""Window against reference for one metric of the drift stage: a test's p-value and the divergences."""

from __future__ import annotations

import numpy as np

from detectors.divergence import (
    chi_square_test,
    hellinger,
    js_divergence,
    kl_both_directions,
    ks_test,
    psi,
    quantile_histograms,
    wasserstein1,
)
from monitor.stages.drift_stream import CATEGORICAL

__all__ = ["compare"]


def compare(metric: str, current: np.ndarray, reference: np.ndarray) -> tuple[float, dict[str, float]] | None:
    """(p-value, divergences) of window against reference for one metric, or None if untestable."""
    current = current[np.isfinite(current)]
    reference = reference[np.isfinite(reference)]
    if current.size < 10 or reference.size < 10:
        return None
    extra = {"window_mean": float(current.mean()), "reference_mean": float(reference.mean())}
    if metric in CATEGORICAL:
        bins = CATEGORICAL[metric]
        counts = np.bincount(current.astype(np.int64), minlength=bins)[:bins].astype(float)
        base = np.bincount(reference.astype(np.int64), minlength=bins)[:bins].astype(float)
        statistic, p_value = chi_square_test(counts, base)
    else:
        counts, base = quantile_histograms(current, reference)
        statistic, p_value = ks_test(current, reference)
        extra["wasserstein"] = wasserstein1(current, reference)
    forward, backward = kl_both_directions(counts, base)
    extra.update(statistic=statistic, js=js_divergence(counts, base), psi=psi(counts, base),
                 hellinger=hellinger(counts, base), kl_forward=forward, kl_backward=backward)
    return p_value, extra
