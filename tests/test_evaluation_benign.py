"""``driftwatch evaluate benign``: TCPDBench's F1, benign real-answer streams, synthetic series, the command.

The real-answer streams come from ``../shared/data/alpaca_eval``; those tests skip without it.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner

from driftwatch.cli.app import build_cli
from driftwatch.cli.evaluate import BENIGN_KINDS
from monitor.evaluation_benign import KINDS, TEMPLATE, build_stream, run_benign_stream
from monitor.evaluation_series import (
    SERIES_TYPES,
    binseg_change_points,
    evaluate_series,
    f_measure,
    make_series,
    true_positives,
)
from monitor.evaluation_swaps import default_data_dir, load_answers

DATA = default_data_dir()
needs_data = pytest.mark.skipif(not DATA.is_dir(), reason=f"shared alpaca_eval answers not found at {DATA}")


def test_true_positives_match_each_truth_once_as_tcpdbench_does() -> None:
    # TCPDBench's own doctests (analysis/scripts/metrics.py).
    assert true_positives({1, 10, 20, 23}, {3, 8, 20}) == {1, 10, 20}
    assert true_positives({1, 10, 20, 23}, {1, 3, 8, 20}) == {1, 10, 20}
    assert true_positives({1, 10, 20, 23}, {1, 3, 5, 8, 20}) == {1, 10, 20}
    assert true_positives(set(), {1, 2, 3}) == set()
    assert true_positives({1, 2, 3}, set()) == set()


def test_f_measure_matches_tcpdbench_and_counts_the_start() -> None:
    assert f_measure({1: [10, 20], 2: [11, 20], 3: [10], 4: [0, 5]}, [10, 20]) == 1.0
    assert f_measure({1: [], 2: [10], 3: [50]}, [10]) == pytest.approx(10 / 11)
    assert f_measure({1: [], 2: [10], 3: [50]}, []) == pytest.approx(0.8)
    # One step at 100: "no change" finds only the start (P 1, R 1/2).
    assert f_measure({1: [100]}, []) == pytest.approx(2 / 3)
    assert f_measure({1: [100]}, [105]) == 1.0  # within the 5-point margin
    assert f_measure({1: [100]}, [106]) == pytest.approx(0.5)  # P 1/2, R 1/2
    assert f_measure({1: [100]}, [98, 101, 400]) == pytest.approx(2 * 0.5 * 1 / 1.5)  # P 2/4, R 1
    with pytest.raises(ValueError, match="annotator"):
        f_measure({}, [1])


@pytest.mark.parametrize("kind", SERIES_TYPES)
def test_series_have_unit_scale_and_binseg_finds_a_clear_step(kind: str) -> None:
    values = make_series(kind, np.random.default_rng(3), 20_000)
    assert 0.6 < values[:2000].std() < 1.6
    step = make_series(kind, np.random.default_rng(4), 2000)
    step[1200:] += 3.0
    assert f_measure({1: [1200]}, binseg_change_points(step)) > 2 / 3


def test_series_scores_cover_both_baselines_and_each_detector() -> None:
    scores = evaluate_series(reps=1, length=900, stable_length=1500, names=["cusum"])
    assert {(s.series, s.contender) for s in scores} == {(k, c) for k in SERIES_TYPES
                                                          for c in ("no change", "binseg", "cusum")}
    cusum = [s for s in scores if s.contender == "cusum"]
    assert all(s.updates == 1000 and len(s.f1) == 1 for s in cusum)  # 1500 points less the 500-event warm-up
    assert all(s.mean_f1 == pytest.approx(2 / 3) for s in scores if s.contender == "no change")
    with pytest.raises(ValueError, match="warm-up"):
        evaluate_series(reps=1, length=300, names=["cusum"])


def test_the_cli_lists_the_same_kinds() -> None:
    assert BENIGN_KINDS == KINDS


@needs_data
@pytest.mark.parametrize("kind", KINDS)
def test_streams_hold_the_models_own_answers(kind: str) -> None:
    records = load_answers(DATA, "gpt-4o-2024-05-13")
    answers = {r["instruction"]: r["output"] for r in records}
    events = build_stream(kind, records, n_events=3000, seed=0)
    stamps = [e["ts"] for e in events]
    assert len(events) == 3000 and stamps == sorted(stamps) and len(set(stamps)) == 3000
    for event in events:
        bare = event["input"].removeprefix(TEMPLATE[0]).removesuffix(TEMPLATE[1])
        assert answers[bare] == event["output"]
    if kind == "prompt_template":
        wrapped = [i for i, e in enumerate(events) if e["input"].startswith(TEMPLATE[0])]
        assert min(wrapped) >= 1500 and 0.2 < len(wrapped) / 1500 < 0.4
    if kind == "heavy_user_burst":
        heavy = sum(e["user_id"] == "user-02000" for e in events[1200:1650])
        assert heavy > 0.7 * 450


@needs_data
def test_a_slow_input_mix_drift_of_real_answers_pages_nobody() -> None:
    events = build_stream("input_mix_drift", load_answers(DATA, "Meta-Llama-3-8B-Instruct"), n_events=3000, seed=0)
    result = run_benign_stream(events, kind="input_mix_drift", model="Meta-Llama-3-8B-Instruct")
    assert result.decisions == []
    assert result.high_incidents == [], result.alerts


@pytest.mark.slow  # about 10 s: ten short streams through the whole pipeline, twice a process start
def test_evaluate_benign_runs_end_to_end_on_a_small_size(cli, shared_data) -> None:
    small = ("--events", "500", "--series", "1", "--series-length", "800", "--stable-length", "1000",
             "--detector", "cusum")
    out = cli("evaluate", "benign", "--data", str(shared_data), "--kind", "day_night", *small, "--json")
    result = json.loads(out.stdout)
    assert [s["kind"] for s in result["streams"]] == ["day_night"] * 5
    assert result["total"]["events"] == 2500 and result["series"]["arl0"] == {"cusum": 50_000.0}  # 10k, 5 metrics
    assert len(result["series"]["scores"]) == 3 * len(SERIES_TYPES)
    assert out.stderr.count("day_night") == 5  # a progress line per stream
    # The table, in process (CliRunner keeps stderr apart since click 8.2).
    table = CliRunner().invoke(build_cli(), ["evaluate", "benign", "--data", str(shared_data), "--kind",
                                             "heavy_user_burst", *small])
    assert table.exit_code == 0, table.output
    assert "targets: <= 1 high incident per 100,000 events" in table.stdout and "F1 binseg" in table.stdout
    assert sum(line.startswith("heavy_user_burst") for line in table.stdout.splitlines()) == 5


def test_evaluate_benign_says_where_the_data_is_missing(cli, tmp_path) -> None:
    result = cli("evaluate", "benign", "--data", str(tmp_path / "nowhere"), check=False)
    assert result.returncode == 2 and "no alpaca_eval/ under" in result.stderr
