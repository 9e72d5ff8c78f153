"""The evaluation command and the detector benchmark, on tiny runs."""

from __future__ import annotations

import re

import numpy as np
import pytest
from click.testing import CliRunner

from driftwatch.cli.app import build_cli
from monitor.evaluation import STREAM_TYPES, make_stream


@pytest.mark.parametrize("kind", STREAM_TYPES)
def test_streams_change_where_they_say(kind: str) -> None:
    values = make_stream(kind, np.random.default_rng(0), pre=4000, post=4000, rep=3)
    before, after = values[:4000], values[4000:]
    assert values.shape == (8000,)
    if kind == "variance":
        assert after.std() > 1.5 * before.std()
    else:
        assert after.mean() > before.mean() + 0.02


def test_unknown_stream_kind_is_refused() -> None:
    with pytest.raises(ValueError, match="stream kind"):
        make_stream("sawtooth", np.random.default_rng(0), pre=10, post=10)


def test_evaluate_reports_ours_and_rivers_defaults() -> None:
    result = CliRunner().invoke(build_cli(), ["evaluate", "--reps", "2", "--slow-reps", "1", "--pre", "400",
                                       "--post", "300", "--stationary-events", "2000",
                                       "--slow-stationary-events", "300", "--detector", "cusum"])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    names = [line.split()[0] for line in lines[2:]]
    assert names == ["cusum", "river:adwin", "river:page_hinkley", "river:kswin"]
    cells = re.findall(r"(\S+) / (\d+)/(\d+) /\s+(\S+)", lines[2])
    assert len(cells) == len(STREAM_TYPES)
    delay, missed, streams, _ = cells[0]
    # A 1-sigma step after 400 values: the calibrated CUSUM finds it in both streams, quickly.
    assert (missed, streams) == ("0", "2") and float(delay) < 60


def test_evaluate_refuses_an_unknown_detector() -> None:
    result = CliRunner().invoke(build_cli(), ["evaluate", "--detector", "nope", "--reps", "1"])
    assert result.exit_code == 2 and "unknown detectors" in result.output


def test_bench_detectors_reports_ratios_and_state_sizes() -> None:
    result = CliRunner().invoke(build_cli(), ["bench", "detectors", "--events", "3000", "--slow-events", "300",
                                       "--repeat", "1", "--state-events", "400", "--stage-events", "700"])
    assert result.exit_code == 0, result.output
    assert "river:adwin (baseline)" in result.output and "cusum (update_many)" in result.output
    stage_line = next(line for line in result.output.splitlines() if line.startswith("drift stage"))
    per_metric = float(stage_line.split("(")[1].split()[0].replace(",", ""))
    assert per_metric <= 64 * 1024
