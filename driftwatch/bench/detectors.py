"""``driftwatch bench detectors``: per-update cost against river's ADWIN, and state bytes per stream.

Per-update cost is reported as throughput ratios against river's ADWIN
measured in the same run; state is each detector's JSON snapshot, and the
drift stage's per (model, version).
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable
from typing import Any

import click
import numpy as np

from detectors.changepoint import DETECTORS
from driftwatch.bench.benchmark import Benchmark, repeat_option
from monitor.evaluation import alarm_indices

__all__ = ["BENCHMARK", "bench_costs", "bench_detectors", "stage_state_bytes", "state_sizes"]


def bench_costs(*, events: int = 200_000, slow_events: int = 5_000, repeat: int = 2,
                seed: int = 0) -> list[tuple[str, float, float, float]]:
    """(name, us per update amortised, us per update in steady state, throughput vs river ADWIN).

    *Amortised* is everything a default-constructed detector does on a
    stationary stream at its calibrated rate: warm-up, calibration and the
    recalibration after each (false) alarm. *Steady state* is the update
    alone: after the warm-up (untimed) the threshold is set to infinity so
    nothing recalibrates. ``cusum (update_many)`` is the numpy batch path fed
    4,096 values at a time. The ratio is river ADWIN's time per update over
    the detector's amortised one (above 1: faster than ADWIN). Best of
    ``repeat`` runs.
    """
    from river import drift

    values = np.random.default_rng([seed, 7]).normal(0, 1, events + 1000)
    as_list = values.tolist()

    def timed(make: Callable[[], Any], n: int, *, steady: bool, batch: bool = False) -> float:
        best = math.inf
        for _ in range(repeat):
            detector = make()
            stream, offset = as_list, 0
            if steady:
                alarm_indices(detector, values[:1000])
                detector.threshold = math.inf
                offset = 1000
            started = time.perf_counter()
            if batch:
                for start in range(offset, offset + n, 4096):
                    detector.update_many(values[start:min(offset + n, start + 4096)])
            else:
                update = detector.update
                for x in stream[offset:offset + n]:
                    update(x)
            best = min(best, (time.perf_counter() - started) / n)
        return best

    baseline = timed(drift.ADWIN, events, steady=False)
    figures = [("river:adwin (baseline)", baseline, baseline)]
    for name in sorted(DETECTORS):
        n = {"kswin": slow_events, "bocpd": max(slow_events, events // 2)}.get(name, events)
        make = DETECTORS[name]
        figures.append((name, timed(make, n, steady=False), timed(make, n, steady=True)))
        if name == "cusum":
            figures.append(("cusum (update_many)", timed(make, n, steady=False, batch=True),
                            timed(make, n, steady=True, batch=True)))
    return [(name, amortised * 1e6, steady * 1e6, baseline / amortised) for name, amortised, steady in figures]


def state_sizes(*, events: int = 5_000, seed: int = 0) -> list[tuple[str, int]]:
    """JSON bytes of each detector's snapshot after ``events`` values (its persisted state)."""
    values = np.random.default_rng([seed, 8]).normal(0, 1, events)
    sizes = []
    for name in sorted(DETECTORS):
        detector = DETECTORS[name]()
        alarm_indices(detector, values)
        sizes.append((name, len(json.dumps(detector.snapshot()))))
    return sizes


def stage_state_bytes(*, n_events: int = 3000, seed: int = 0) -> tuple[int, float]:
    """Largest drift-stage snapshot of one (model, version), in JSON bytes, and that per metric stream."""
    from monitor.events import EventDecoder
    from monitor.pipeline import Pipeline
    from monitor.scenario import synthetic_scenario
    from monitor.stages.drift import DriftStage
    from monitor.stages.drift_stream import CHANGEPOINT_METRICS

    decode = EventDecoder().decode
    scenario = synthetic_scenario(n_events=n_events, trigger_at=n_events, seed=seed)
    stage = DriftStage()
    pipeline = Pipeline([stage])
    pipeline.process([decode(json.dumps(e)) for e in scenario.events])
    largest = max(len(json.dumps(stage.snapshot(key))) for key in pipeline.keys)
    return largest, largest / len(CHANGEPOINT_METRICS)


def bench_detectors(*, events: int = 200_000, slow_events: int = 5_000, repeat: int = 2, state_events: int = 5_000,
                    stage_events: int = 3_000) -> str:
    """The cost table, the state sizes and the drift stage's state, as one report."""
    lines = [f"stationary N(0,1) stream; best of {repeat}; amortised: warm-up, calibration and "
             "recalibration after each false alarm included; steady state: the update alone",
             f"{'detector':<24} {'us/update amortised':>20} {'steady state':>13} "
             f"{'throughput vs river ADWIN':>26}"]
    for name, amortised, steady, ratio in bench_costs(events=events, slow_events=slow_events, repeat=repeat):
        lines.append(f"{name:<24} {amortised:20.2f} {steady:13.2f} {ratio:26.3f}")
    lines.append(f"\nstate per stream (JSON snapshot bytes, after {state_events:,} updates)")
    for name, size in state_sizes(events=state_events):
        lines.append(f"{name:<24} {size:10,d}")
    key_bytes, per_metric = stage_state_bytes(n_events=stage_events)
    lines.append(f"{'drift stage, per key':<24} {key_bytes:10,d}  ({per_metric:,.0f} per metric stream)")
    return "\n".join(lines)


BENCHMARK = Benchmark(
    name="detectors",
    help="Per-update cost against river's ADWIN, and state bytes per stream.",
    options=(
        click.option("--events", type=int, default=200_000, show_default=True, help="Updates per fast detector."),
        click.option("--slow-events", type=int, default=5_000, show_default=True, help="Updates for KSWIN."),
        repeat_option(2),
        click.option("--state-events", type=int, default=5_000, show_default=True,
                     help="Updates before measuring each detector's state."),
        click.option("--stage-events", type=int, default=3_000, show_default=True,
                     help="Scenario events before measuring the drift stage's state."),
    ),
    run=bench_detectors,
)
