"""Onsets located by the best mean split before the alarm, on autocorrelated series where CUSUM's own start is late."""

from __future__ import annotations

import numpy as np

from detectors.changepoint import CUSUM
from detectors.changepoint.onset import refine_onset
from monitor.evaluation_series import located_onsets


def ar1(rng: np.random.Generator, n: int, phi: float) -> np.ndarray:
    noise = rng.normal(0.0, np.sqrt(1 - phi * phi), size=n)
    out = np.empty(n)
    out[0] = rng.normal()
    for i in range(1, n):
        out[i] = phi * out[i - 1] + noise[i]
    return out


def test_a_located_onset_is_within_the_margin_more_often_than_the_detectors_own() -> None:
    own, located = 0, 0
    for seed in range(12):
        rng = np.random.default_rng(seed)
        values = ar1(rng, 2000, 0.9)
        at = int(rng.integers(900, 1500))
        values[at:] += 3.0
        found = [d for d in CUSUM(warmup=500, arl0=50_000).update_exact(values) if d.detected_at >= at]
        if not found:
            continue
        own += abs(found[0].change_point - at) <= 5
        located += abs(located_onsets(values, found)[0] - at) <= 5
    assert located >= 10 and located > own, (located, own)


def test_nan_values_keep_their_indices_and_too_few_values_fall_back() -> None:
    values = np.r_[np.zeros(50), np.full(10, np.nan), np.full(8, 4.0)]
    assert refine_onset(values) == 60
    assert refine_onset(np.array([1.0, 2.0, np.nan]), coarse=1) == 1


def test_a_rare_event_rise_is_located_by_its_bernoulli_likelihood() -> None:
    errors = []
    for seed in range(100):
        rng = np.random.default_rng(seed)
        values = np.r_[rng.random(400) < 0.005, rng.random(100) < 0.08].astype(float)
        errors.append(abs(refine_onset(values) - 400))
    assert np.median(errors) <= 15 and np.mean(np.asarray(errors) <= 20) >= 0.65
