"""CUSUM's innovations chart: a level shift on a cycle or a persistent wander is found at once, and located."""

from __future__ import annotations

import json

import numpy as np
import pytest

from detectors.changepoint import CUSUM
from detectors.changepoint.onset import level_shift_onset, locate_onset, refine_onset
from monitor.evaluation_series import located_onsets

STAGE = {"warmup": 500, "arl0": 50_000}


def cycle(rng: np.random.Generator, n: int) -> np.ndarray:
    t = np.arange(n)
    return np.sin(2 * np.pi * t / 200 + rng.uniform(0, 2 * np.pi)) + rng.normal(0, 0.5, n)


def ar1(rng: np.random.Generator, n: int, phi: float) -> np.ndarray:
    out = np.empty(n)
    out[0] = rng.normal()
    noise = rng.normal(0.0, np.sqrt(1 - phi * phi), n)
    for i in range(1, n):
        out[i] = phi * out[i - 1] + noise[i]
    return out


def signature(found) -> list[tuple[int, int, int]]:
    return [(d.detected_at, d.change_point, len(d.whitening)) for d in found]


def test_a_step_on_a_cycle_is_found_within_a_few_values_and_located_where_it_began() -> None:
    delays, exact = [], 0
    for seed in range(6):
        rng = np.random.default_rng(seed)
        values = cycle(rng, 2000)
        at = int(rng.integers(900, 1600))
        values[at:] += 2.6  # 3 marginal standard deviations
        found = CUSUM(**STAGE).update_exact(values)
        assert [d.detected_at for d in found if d.detected_at < at] == []
        assert found and found[0].whitening, "a cycle's warm-up fits an autoregression"
        delays.append(found[0].detected_at - at)
        exact += abs(located_onsets(values, found)[0] - at) <= 5
    assert max(delays) < 15, delays  # the level chart alone: 186 to 464 values, or never
    assert exact == 6


def test_a_stable_cycle_raises_no_alarm() -> None:
    values = cycle(np.random.default_rng(11), 10_000)
    detector = CUSUM(**STAGE)
    assert detector.update_exact(values) == []
    assert detector.whitening.size > 0 and np.isfinite(detector.innovation_threshold)


def test_an_independent_warm_up_runs_the_level_chart_alone() -> None:
    rng = np.random.default_rng(3)
    values = np.r_[rng.normal(0, 1, 700), rng.normal(1, 1, 200)]
    detector = CUSUM(**STAGE)
    found = detector.update_exact(values[:600])
    assert found == [] and detector.whitening.size == 0 and detector.past == []
    assert detector.innovation_threshold == np.inf
    later = detector.update_exact(values[600:])
    assert later and all(d.whitening == () for d in later)


@pytest.mark.parametrize("phi", [0.5, 0.9])
def test_update_update_exact_and_update_many_agree_on_an_autocorrelated_stream(phi: float) -> None:
    rng = np.random.default_rng(5)
    values = ar1(rng, 3000, phi)
    values[1200:] += 3.0
    values[2100:] -= 3.0
    values[[40, 1500]] = np.nan
    one = CUSUM(**STAGE)
    by_update = []
    for x in values:
        one.update(float(x))
        if one.drift_detected and one.detection is not None:
            by_update.append(one.detection)
    exact = CUSUM(**STAGE).update_exact(values)
    many = CUSUM(**STAGE).update_many(values)
    assert signature(by_update) == signature(exact) == signature(many)
    assert len(exact) >= 2 and any(d.whitening for d in exact)


def test_a_snapshot_taken_while_whitening_gives_the_same_future() -> None:
    rng = np.random.default_rng(8)
    values = ar1(rng, 2500, 0.9)
    values[1800:] += 3.0
    first = CUSUM(**STAGE, seed=2)
    first.update_exact(values[:1000])
    assert first.past, "an AR(1) warm-up is whitened"
    state = json.loads(json.dumps(first.snapshot()))
    assert state["format"] == "cusum.v2"
    second = CUSUM(**STAGE, seed=2)
    second.restore(state)
    assert second.snapshot() == state  # JSON-native: what a stage stores and compares
    assert signature(first.update_exact(values[1000:])) == signature(second.update_exact(values[1000:]))



def test_an_innovations_alarm_survives_a_snapshot() -> None:
    values = cycle(np.random.default_rng(2), 1600)
    values[1300:] += 2.6
    first = CUSUM(**STAGE)
    found = first.update_exact(values)
    assert found and found[-1].whitening, "a step on a cycle alarms from the innovations chart"
    state = json.loads(json.dumps(first.snapshot()))
    assert state["detection"][6] == list(found[-1].whitening)
    second = CUSUM(**STAGE)
    second.restore(state)
    assert second.snapshot() == state and second.detection == found[-1]


def test_one_wild_value_on_an_autocorrelated_stream_raises_no_alarm() -> None:
    # A robust filter: the clipped innovation moves the chart by at most INNOVATION_CLIP - k, and the value
    # it keeps is no echo for the next predictions.
    for phi in (0.5, 0.9):
        values = ar1(np.random.default_rng(6), 3000, phi)
        detector = CUSUM(**STAGE)
        assert detector.update_exact(values[:1000]) == [] and detector.past
        values[[1500, 2200]] += 6.0
        assert detector.update_exact(values[1000:]) == []


def test_a_cusum_v1_snapshot_loads_as_the_level_chart_alone() -> None:
    rng = np.random.default_rng(4)
    values = rng.normal(0, 1, 900)
    values[700:] += 1.5
    first = CUSUM(**STAGE)
    first.update_exact(values[:600])
    state = first.snapshot()
    old = {**state, "format": "cusum.v1",
           "state": {key: state["state"][key] for key in ("up", "down", "up_start", "down_start")}}
    old["detection"] = None
    second = CUSUM(**STAGE)
    second.restore(json.loads(json.dumps(old)))
    assert second.past == [] and second.threshold == first.threshold
    assert signature(first.update_exact(values[600:])) == signature(second.update_exact(values[600:]))
    with pytest.raises(ValueError, match="snapshot format"):
        CUSUM(**STAGE).restore({**old, "format": "cusum.v0"})


def test_a_detection_snapshot_of_six_fields_still_loads() -> None:
    detector = CUSUM(warmup=50)
    values = np.r_[np.zeros(50) + np.random.default_rng(1).normal(0, 1, 50), np.full(30, 6.0)]
    found = detector.update_exact(values)
    state = json.loads(json.dumps(detector.snapshot()))
    state["detection"] = state["detection"][:6]
    again = CUSUM(warmup=50)
    again.restore(state)
    assert again.detection == found[-1]


def test_level_shift_onset_finds_the_shift_in_persistent_series() -> None:
    hits = 0
    for seed in range(40):
        rng = np.random.default_rng(seed)
        values = ar1(rng, 400, 0.9)
        at = int(rng.integers(100, 390))
        values[at:] += 3.0
        end = min(400, at + int(rng.integers(1, 30)))
        hits += level_shift_onset(values[:end], [0.9], 0.0) == at
    assert hits >= 36, hits


def test_locate_onset_splits_means_without_a_model_and_skips_nan_either_way() -> None:
    values = np.r_[np.zeros(50), np.full(10, np.nan), np.full(8, 4.0)]
    assert locate_onset(values) == refine_onset(values) == 60
    assert locate_onset(values, whitening=[0.5], mean=0.0) == 60
    assert level_shift_onset(np.array([np.nan, 1.0]), [0.5, 0.2], 0.0, coarse=1) == 1


def test_a_warm_up_its_fit_all_but_replays_runs_the_level_chart_alone() -> None:
    # 3.0, 3.1, 2.9 cycling exactly: an AR(3) predicts it to a hundredth of its spread, and the warm-up mean's
    # error (200 values are not whole cycles) would be a bias of more than one innovation in every update.
    detector = CUSUM()
    assert detector.update_exact([3.0, 3.1, 2.9] * 300) == []
    assert detector.whitening.size == 0 and detector.past == []
