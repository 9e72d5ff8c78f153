"""Embedding drift algorithms on synthetic vectors: exactness of the sum tricks, bounds, errors."""

from __future__ import annotations

import numpy as np
import pytest

from detectors.embedding.energy import energy_from_sums
from detectors.embedding.mmd import mmd2_from_sums
from detectors.embedding.null import NullDistribution
from detectors.embedding.reference import Reference
from detectors.embedding.scorer import EmbeddingScorer
from detectors.probe import LinearProbe


def brute_mmd2(x: np.ndarray, y: np.ndarray, gamma: float) -> float:
    def gram(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        return np.exp(-gamma * ((a[:, None, :] - b[None, :, :]) ** 2).sum(-1))
    kxx, kyy, kxy = gram(x, x), gram(y, y), gram(x, y)
    n, m = len(x), len(y)
    return ((kxx.sum() - np.trace(kxx)) / (n * (n - 1)) + (kyy.sum() - np.trace(kyy)) / (m * (m - 1))
            - 2 * kxy.mean())


def brute_energy(x: np.ndarray, y: np.ndarray) -> float:
    def dist(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        return np.sqrt(((a[:, None, :] - b[None, :, :]) ** 2).sum(-1))
    n, m = len(x), len(y)
    return 2 * dist(x, y).mean() - dist(x, x).sum() / (n * (n - 1)) - dist(y, y).sum() / (m * (m - 1))


def test_batch_statistics_match_a_direct_computation() -> None:
    rng = np.random.default_rng(3)
    reference, batch = rng.normal(size=(120, 6)), rng.normal(0.3, 1.0, size=(30, 6))
    scorer = EmbeddingScorer(reference, draws=20, seed=0)
    score = scorer.score(batch)
    gamma = scorer.reference.gamma
    assert score.mmd2 == pytest.approx(brute_mmd2(reference, batch, gamma), rel=1e-4, abs=3e-5)
    assert score.energy == pytest.approx(brute_energy(reference, batch), rel=1e-4, abs=3e-5)
    assert score.centroid_shift == pytest.approx(np.linalg.norm(batch.mean(0) - reference.mean(0)), rel=1e-5)
    cosine = (batch / np.linalg.norm(batch, axis=1, keepdims=True)) @ (
        reference / np.linalg.norm(reference, axis=1, keepdims=True)).T
    expected = 1 - np.sort(cosine, axis=1)[:, -scorer.k:].mean(axis=1)
    np.testing.assert_allclose(score.novelty, expected, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(scorer.novelty(batch), expected, rtol=1e-4, atol=1e-5)


# Tolerances: the sums are float32 kernel values of order 1 whose difference is the statistic.
def test_null_draws_equal_scoring_the_subsample_against_the_rest() -> None:
    rng = np.random.default_rng(4)
    vectors = rng.normal(size=(80, 5))
    reference = Reference.build(vectors, seed=0)
    null = NullDistribution.draw(reference, m=20, draws=1, rng=np.random.default_rng(9))
    chosen = np.random.default_rng(9).choice(80, size=20, replace=False)
    batch, rest = vectors[chosen], np.delete(vectors, chosen, axis=0)
    assert null.mmd2[0] == pytest.approx(brute_mmd2(rest, batch, reference.gamma), rel=1e-4, abs=3e-5)
    assert null.energy[0] == pytest.approx(brute_energy(rest, batch), rel=1e-4, abs=3e-5)
    assert null.centroid[0] == pytest.approx(np.linalg.norm(batch.mean(0) - rest.mean(0)), rel=1e-5)


def test_gaussian_false_alarm_rate_is_at_most_alpha_and_a_shift_is_found() -> None:
    rng = np.random.default_rng(5)
    alarms, detections = [], []
    for trial in range(25):
        scorer = EmbeddingScorer(rng.normal(size=(300, 8)), alpha=0.1, draws=100, seed=trial)
        alarms.append(scorer.score(rng.normal(size=(40, 8))).drift)
        detections.append(scorer.score(rng.normal(0.5, 1.0, size=(40, 8))).drift)
    # alpha 0.1 over 25 trials: mean 2.5, binomial sd 1.5; allow 3 sd
    assert sum(alarms) <= 7
    assert np.mean(detections) >= 0.9


def test_reference_memory_is_vectors_plus_a_few_rows() -> None:
    reference = Reference.build(np.random.default_rng(6).normal(size=(500, 384)).astype(np.float32))
    payload = 500 * 384 * 4
    assert payload <= reference.nbytes() <= payload + 500 * 8 * 2 + 500 * 4 * 2 + 384 * 4
    # the same layout at 10,000 x 384 stays under the 16 MiB budget
    assert 10_000 * 384 * 4 + 10_000 * 24 + 384 * 4 <= 16 * 2**20


@pytest.mark.parametrize(("call", "message"), [
    (lambda: Reference.build(np.zeros((1, 3))), "at least 2 rows"),
    (lambda: Reference.build(np.full((4, 3), np.nan)), "NaN"),
    (lambda: EmbeddingScorer(np.zeros((10, 3)), alpha=1.5), "alpha"),
    (lambda: EmbeddingScorer(np.random.default_rng(0).normal(size=(10, 3)), draws=5).score(np.zeros((4, 2))),
     "shape"),
    (lambda: mmd2_from_sums(ref_sum=1, n=1, batch_sum=1, m=5, cross_sum=1), "at least 2"),
    (lambda: energy_from_sums(ref_sum=1, n=5, batch_sum=1, m=1, cross_sum=1), "at least 2"),
    (lambda: LinearProbe(np.zeros((2, 2)), 0.0), "vector"),
])
def test_bad_input_is_refused_with_what_was_expected(call, message: str) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ValueError, match=message):
        call()


def test_identical_reference_points_do_not_divide_by_zero() -> None:
    scorer = EmbeddingScorer(np.ones((30, 4)), draws=20, seed=0)
    score = scorer.score(np.ones((5, 4)))
    assert np.isfinite(score.mmd2) and not score.drift
