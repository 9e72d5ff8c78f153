"""update_exact gives, bit for bit, what repeated update gives, for every detector."""

from __future__ import annotations

import json

import numpy as np
import pytest

from detectors.changepoint import DETECTORS
from detectors.changepoint.base import Detection


def _assert_exact_as_repeated_update(name: str, values: np.ndarray, split: int) -> list[Detection]:
    """Feed ``values`` one by one to one detector and in two ``update_exact`` calls to another; return the alarms."""
    one, many = DETECTORS[name](warmup=30, arl0=300), DETECTORS[name](warmup=30, arl0=300)
    alarms = []
    for x in values.tolist():
        one.update(x)
        if one.drift_detected and one.detection is not None:
            alarms.append(one.detection)
    found = many.update_exact(values[:split].tolist()) + many.update_exact(values[split:].tolist())
    assert repr(found) == repr(alarms)  # repr: a NaN statistic equals itself
    assert json.dumps(many.snapshot()) == json.dumps(one.snapshot())
    assert many.drift_detected == one.drift_detected
    return alarms


@pytest.mark.parametrize("name", sorted(DETECTORS))
def test_update_exact_equals_repeated_update(name: str) -> None:
    rng = np.random.default_rng(4)
    values = np.concatenate([rng.normal(0, 1, 150), rng.normal(3, 1, 150), rng.integers(0, 2, 150),
                             [np.nan, np.inf, 5.0], rng.normal(-2, 0.5, 200)])
    assert len(_assert_exact_as_repeated_update(name, values, 350)) >= 1


@pytest.mark.parametrize("name", sorted(DETECTORS))
def test_update_exact_skips_non_finite_values_while_warming_as_update_does(name: str) -> None:
    rng = np.random.default_rng(5)
    values = np.concatenate([[np.nan] * 40, rng.normal(0, 1, 20), [np.nan, -np.inf] * 10, rng.normal(0, 1, 40),
                             [np.nan] * 30, rng.normal(4, 1, 100)])
    _assert_exact_as_repeated_update(name, values, 45)
