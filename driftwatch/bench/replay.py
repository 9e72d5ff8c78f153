"""``driftwatch bench replay``: replay (decode, validate, store; no detectors) against plain ``json.loads``."""

from __future__ import annotations

import json
import tempfile
import time
from pathlib import Path

import click

from driftwatch.bench.benchmark import Benchmark, repeat_option
from driftwatch.bench.traffic import write_bench_events
from driftwatch.cli.options import store_option

__all__ = ["BENCHMARK", "bench_replay"]


def bench_replay(*, n_events: int = 200_000, repeat: int = 3, store: str | None = None) -> str:
    """Replay (decode, validate, store; no detectors) against plain ``json.loads``."""
    from monitor.settings import load_settings
    from monitor.store_replay import run_replay

    with tempfile.TemporaryDirectory(prefix="driftwatch-bench-") as tmp:
        path = Path(tmp) / "events.jsonl"
        total = write_bench_events(path, n_events)
        baseline = []
        for _ in range(repeat):
            started = time.perf_counter()
            with path.open("rb") as handle:
                for line in handle:
                    json.loads(line)
            baseline.append(time.perf_counter() - started)
        runs = []
        for attempt in range(repeat):
            settings = load_settings(store=store or f"chdb://{tmp}/store-{attempt}")
            started = time.perf_counter()
            summary, _ = run_replay(settings, [str(path)], detectors=False)
            runs.append(time.perf_counter() - started)
            if summary.events != n_events:
                raise RuntimeError(f"replay stored {summary.events} of {n_events} events")
        json_rate = n_events / min(baseline)
        replay_rate = n_events / min(runs)
        return "\n".join([
            f"events: {n_events} of {total / n_events:.0f} bytes on average; best of {repeat}",
            f"json.loads only:                        {json_rate:12,.0f} events/s",
            f"replay (decode, validate, store; no detectors): {replay_rate:12,.0f} events/s",
            f"ratio replay / json.loads: {replay_rate / json_rate:.2f}",
        ])


BENCHMARK = Benchmark(
    name="replay",
    help="Replay throughput (decode, validate, store; no detectors) against json.loads.",
    options=(
        click.option("--events", "n_events", type=int, default=200_000, show_default=True),
        repeat_option(3),
        store_option,
    ),
    run=bench_replay,
)
