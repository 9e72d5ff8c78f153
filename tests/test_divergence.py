"""Divergences, tests and BH against scipy reference values."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats
from scipy.spatial import distance

from detectors.divergence import (
    chi_square_test,
    hashed_histogram,
    hellinger,
    js_divergence,
    kl_both_directions,
    kl_divergence,
    ks_test,
    psi,
    quantile_histograms,
    wasserstein1,
)
from detectors.multiple_testing import benjamini_hochberg


@pytest.fixture
def histograms() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(1)
    return rng.integers(1, 50, size=12).astype(float), rng.integers(1, 50, size=12).astype(float)


def smoothed(p: np.ndarray, eps: float) -> np.ndarray:
    p = p / p.sum() + eps
    return p / p.sum()


def test_js_matches_scipy(histograms) -> None:
    p, q = histograms
    assert js_divergence(p, q) == pytest.approx(distance.jensenshannon(p, q, base=2) ** 2, rel=1e-9)
    assert js_divergence(p, p) == pytest.approx(0.0, abs=1e-12)


def test_kl_both_directions_match_scipy(histograms) -> None:
    p, q = histograms
    p[3] = 0.0  # an empty bin: smoothing keeps the divergence finite
    forward, backward = kl_both_directions(p, q, smoothing=1e-6)
    assert forward == pytest.approx(stats.entropy(smoothed(p, 1e-6), smoothed(q, 1e-6)), rel=1e-9)
    assert backward == pytest.approx(stats.entropy(smoothed(q, 1e-6), smoothed(p, 1e-6)), rel=1e-9)
    assert kl_divergence(p, q) == forward != backward


def test_psi_is_the_symmetrised_kl(histograms) -> None:
    p, q = histograms
    a, b = smoothed(p, 1e-4), smoothed(q, 1e-4)
    assert psi(p, q) == pytest.approx(stats.entropy(a, b) + stats.entropy(b, a), rel=1e-9)


def test_hellinger_matches_scipy(histograms) -> None:
    p, q = histograms
    expected = distance.euclidean(np.sqrt(p / p.sum()), np.sqrt(q / q.sum())) / np.sqrt(2)
    assert hellinger(p, q) == pytest.approx(expected, rel=1e-9)


def test_wasserstein_and_ks_match_scipy() -> None:
    rng = np.random.default_rng(2)
    x, y = rng.normal(0, 1, 700), rng.normal(0.3, 1.4, 400)
    assert wasserstein1(x, y) == pytest.approx(stats.wasserstein_distance(x, y), rel=1e-9)
    statistic, p_value = ks_test(x, y)
    reference = stats.ks_2samp(x, y, method="asymp")
    assert statistic == pytest.approx(reference.statistic, rel=1e-12)
    assert p_value == pytest.approx(reference.pvalue, rel=1e-6)


def test_chi_square_matches_scipy() -> None:
    a, b = np.array([30.0, 12, 0, 7, 51]), np.array([22.0, 20, 0, 3, 40])
    statistic, p_value = chi_square_test(a, b)
    keep = (a + b) > 0
    reference = stats.chi2_contingency(np.stack([a[keep], b[keep]]), correction=False)
    assert statistic == pytest.approx(reference.statistic, rel=1e-9)
    assert p_value == pytest.approx(reference.pvalue, rel=1e-9)
    assert chi_square_test([5, 0], [7, 0]) == (0.0, 1.0)


def test_benjamini_hochberg_matches_scipy() -> None:
    p = np.random.default_rng(3).uniform(size=40) ** 3
    reject, adjusted = benjamini_hochberg(p, q=0.1)
    np.testing.assert_allclose(adjusted, stats.false_discovery_control(p, method="bh"), rtol=1e-12)
    assert (reject == (adjusted <= 0.1)).all()


def test_benjamini_hochberg_skips_nan() -> None:
    reject, adjusted = benjamini_hochberg([0.001, np.nan, 0.9])
    assert reject.tolist() == [True, False, False] and np.isnan(adjusted[1])


def test_hashed_histogram_is_bounded_and_stable() -> None:
    values = [f"tool-{i}" for i in range(10_000)]
    counts = hashed_histogram(values, n_bins=32)
    assert counts.shape == (32,) and counts.sum() == 10_000
    assert (hashed_histogram(values, n_bins=32) == counts).all()
    assert counts.min() > 200  # CRC-32 spreads names roughly evenly


def test_quantile_histograms_cover_both_samples() -> None:
    rng = np.random.default_rng(4)
    current, reference = quantile_histograms(rng.normal(1, 1, 300), rng.normal(0, 1, 500))
    assert current.sum() == 300 and reference.sum() == 500
    assert psi(current, reference) > 0.25  # a 1-sigma shift is a large PSI


@pytest.mark.parametrize("bad", [([], []), ([1, 2], [1]), ([-1, 2], [1, 2]), ([0, 0], [1, 1])])
def test_histogram_divergences_refuse_bad_input(bad) -> None:
    with pytest.raises(ValueError):
        js_divergence(*bad)
