"""The generic detector suite: every entry of DETECTORS meets the same contract."""

from __future__ import annotations

import itertools
import json
import math
import re

import numpy as np
import pytest

from detectors.changepoint import CUSUM, DETECTORS, ChangePointDetector, fleet_arl0
from detectors.changepoint.bocpd import BOCPD
from detectors.changepoint.calibration import gumbel_threshold

# KSWIN runs a KS test per update (about 0.3 ms) and BOCPD recalibrates by simulation after
# each alarm: shorter streams for them keep this suite inside its time budget.
STATIONARY_LENGTH = {"kswin": 4_000, "bocpd": 10_000}
TEST_ARL0 = 2_000.0
# Where calibration accuracy is not what a test checks, a smaller simulation will do.
LIGHT = {"bocpd": {"calibration_paths": 24, "calibration_length": 200}}


def make(name: str, **kwargs):
    return DETECTORS[name](**{**LIGHT.get(name, {}), **kwargs})


def alarms(detector, values) -> list[tuple[int, int]]:
    found = []
    for index, x in enumerate(values):
        detector.update(float(x))
        if detector.drift_detected:
            found.append((index, detector.change_point))
    return found


@pytest.fixture(params=sorted(DETECTORS))
def name(request) -> str:
    return request.param


def test_follows_the_protocol_the_drift_stage_uses(name: str) -> None:
    # Built as the drift stage builds it (monitor.stages.drift_stream), and as evaluations do.
    for detector in (DETECTORS[name](warmup=30, arl0=500.0), DETECTORS[name]()):
        assert isinstance(detector, ChangePointDetector)
        assert detector.n == 0 and detector.update_exact([1.0, 2.0]) == [] and detector.n == 2


def test_no_more_alarms_than_calibrated_on_a_stationary_stream(name: str) -> None:
    rng = np.random.default_rng(11)
    length = STATIONARY_LENGTH.get(name, 20_000)
    detector = DETECTORS[name](arl0=TEST_ARL0)
    # Unscaled, skewed input: the detector must standardise and calibrate on it itself.
    values = rng.gamma(2.0, 40.0, size=length) + 1_000.0
    found = alarms(detector, values)
    expected = length / TEST_ARL0
    # Poisson count at the calibrated rate; the bound allows a 50% calibration error
    # plus four standard deviations, so a correct detector fails it about never.
    assert len(found) <= 1.5 * expected + 4 * math.sqrt(1.5 * expected), found


def test_a_step_is_detected_within_a_bound(name: str) -> None:
    rng = np.random.default_rng(12)
    change = 800
    values = np.concatenate([rng.normal(50, 5, change), rng.normal(65, 5, 400)])
    found = [(i, cp) for i, cp in alarms(DETECTORS[name](), values) if i >= change]
    assert found, "a 3-sigma step went unnoticed"
    index, onset = found[0]
    assert index - change < 150
    assert change - 150 <= onset <= index


def test_drift_detected_is_true_for_exactly_one_update(name: str) -> None:
    rng = np.random.default_rng(13)
    detector = make(name)
    values = np.concatenate([rng.normal(0, 1, 500), rng.normal(6, 1, 300)])
    flags = []
    for x in values:
        detector.update(float(x))
        flags.append(detector.drift_detected)
    assert any(flags)
    assert not any(a and b for a, b in itertools.pairwise(flags))


def test_snapshot_round_trip_gives_the_same_future(name: str) -> None:
    rng = np.random.default_rng(14)
    values = np.concatenate([rng.normal(0, 1, 400), rng.normal(4, 1, 200), rng.normal(0, 1, 300)])
    for cut in (150, 450):  # during the warm-up, and after it
        first = make(name, seed=3)
        alarms(first, values[:cut])
        state = json.loads(json.dumps(first.snapshot()))
        assert re.fullmatch(r"[a-z_]+\.v\d+", state["format"])
        assert len(json.dumps(state)) <= 64 * 1024
        second = make(name, seed=3)
        second.restore(state)
        assert alarms(first, values[cut:]) == alarms(second, values[cut:])


def test_restore_refuses_another_format(name: str) -> None:
    detector = DETECTORS[name]()
    with pytest.raises(ValueError, match="format"):
        detector.restore({"format": "something-else.v9"})


def test_same_seed_same_alarms(name: str) -> None:
    rng = np.random.default_rng(15)
    values = np.concatenate([rng.normal(0, 1, 400), rng.normal(3, 1, 300), rng.normal(-1, 2, 300)])
    assert alarms(make(name, seed=5), values) == alarms(make(name, seed=5), values)


def test_defaults_are_not_shared_between_instances(name: str) -> None:
    cls = DETECTORS[name]
    untouched = cls()
    before = json.dumps(untouched.snapshot())
    used = cls()
    alarms(used, np.random.default_rng(16).normal(size=300))
    assert json.dumps(untouched.snapshot()) == before
    assert json.dumps(cls().snapshot()) == before
    assert used._buffer is not untouched._buffer


def test_nan_counts_as_an_update_but_changes_nothing(name: str) -> None:
    detector = DETECTORS[name]()
    for _ in range(50):
        detector.update(math.nan)
    assert detector.n == 50 and not detector.ready


def test_cusum_batch_path_matches_the_scalar_path() -> None:
    rng = np.random.default_rng(17)
    values = np.concatenate([rng.normal(10, 2, 3000), rng.normal(12, 2, 500), rng.normal(10, 2, 3000)])
    values[rng.random(values.size) < 0.01] = np.nan
    scalar = CUSUM(arl0=2_000)
    expected = [(d.detected_at, d.change_point) for d in (
        scalar.detection for x in values if (scalar.update(float(x)), scalar.drift_detected)[1])]
    batched = CUSUM(arl0=2_000)
    got = []
    for start in range(0, values.size, 777):
        got.extend((d.detected_at, d.change_point) for d in batched.update_many(values[start:start + 777]))
    assert got == expected and batched.n == scalar.n


def test_cusum_evidence_estimates_before_and_after() -> None:
    rng = np.random.default_rng(18)
    detector = CUSUM()
    detector.update_many(np.concatenate([rng.normal(100, 10, 1000), rng.normal(130, 10, 200)]))
    assert detector.detection is not None
    assert abs(detector.detection.before - 100) < 2
    # The onset estimate may reach a few values into the old regime, so "after" sits between.
    assert 105 < detector.detection.after < 145


def test_bocpd_single_path_matches_the_batched_recursion() -> None:
    rng = np.random.default_rng(19)
    detector = BOCPD(calibration_paths=20, calibration_length=100)
    detector.update_many(rng.normal(size=200))
    batch = tuple(v[None, :].copy() for v in detector._posterior)
    for x in rng.normal(0.5, 1.0, size=200):
        batch = detector._advance(batch, np.array([[(x - detector.mean) / detector.scale]]))
        detector.update(float(x))
    for single, batched in zip(detector._posterior, batch, strict=True):
        np.testing.assert_allclose(single, batched[0], rtol=1e-9, atol=1e-12)


def test_bocpd_onset_is_a_recent_run_even_when_the_long_run_is_still_likelier() -> None:
    # With a small hazard the alarm can fire while the reference run still holds the largest
    # posterior mass; the onset must come from the recent runs the alarm is about.
    rng = np.random.default_rng(21)
    change = 800
    detector = BOCPD(**LIGHT["bocpd"])
    values = np.concatenate([rng.normal(0, 1, change), rng.normal(1.5, 1, 300)])
    found = [d for d in detector.update_many(values) if d.detected_at >= change]
    assert found, "a 1.5-sigma step went unnoticed"
    onset = found[0].change_point
    assert found[0].detected_at - detector.window < onset <= found[0].detected_at
    assert abs(onset - change) < 40


def test_bocpd_refuses_a_prior_shape_that_is_not_positive() -> None:
    with pytest.raises(ValueError, match="prior_alpha must be > 0"):
        BOCPD(prior_alpha=0.0)


def test_gumbel_threshold_matches_the_law_it_fits() -> None:
    rng = np.random.default_rng(20)
    maxima = rng.gumbel(4.0, 0.8, size=20_000)
    # P(max <= h) = exp(-length / arl0): with length == arl0 that is the 1/e quantile.
    assert abs(gumbel_threshold(maxima, length=1000, arl0=1000) - np.quantile(maxima, math.exp(-1))) < 0.05


def test_fleet_budget_scales_with_the_number_of_streams() -> None:
    assert fleet_arl0(10_000, 1) == 10_000
    assert fleet_arl0(10_000, 40) == 400_000
    with pytest.raises(ValueError, match="streams"):
        fleet_arl0(10_000, 0)
