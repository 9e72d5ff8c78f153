"""``driftwatch bench pipeline``: the detectors' cost per stage, and the cost of a checkpoint.

Each figure is a rate measured in this run next to a baseline measured in the
same run (plain ``json.loads`` of the same records), so machines compare by
ratio. Events are :func:`driftwatch.bench.traffic.write_bench_events` records (about
1 KiB), decoded once, then fed through the default pipeline in batches of
``batch`` events, timing every stage's ``process``; afterwards every
model's full snapshot (all stages, JSON-encoded, as a checkpoint writes it)
is timed. Times are the process's CPU time (``time.process_time``): on a
shared machine that is steadier than the wall clock, and the pipeline is
single-threaded.
"""

from __future__ import annotations

import json
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING

import click

from driftwatch.bench.benchmark import Benchmark
from driftwatch.bench.traffic import write_bench_events
from driftwatch.cli.options import COUNT

if TYPE_CHECKING:
    from monitor.pipeline import Pipeline

__all__ = ["BENCHMARK", "bench_pipeline"]


def bench_pipeline(*, n_events: int = 50_000, batch: int = 2048, full_window: bool = True,
                   memory: bool = False) -> str:
    """Per-stage events/s of the default pipeline and snapshot ms per model, against ``json.loads``.

    With ``full_window``, also one model fed a whole motif window (every
    bucket closed, the most state a model holds) and its checkpoint timed.
    With ``memory``, also the traced heap of one model version's state per
    stage after all ``n_events`` events as one model's (see :func:`_memory`).
    """
    from monitor.events import EventDecoder
    from monitor.pipeline import KeyBatch, group_by_key
    from monitor.registry import build_pipeline
    from monitor.settings import load_settings

    with tempfile.TemporaryDirectory(prefix="driftwatch-bench-") as tmp:
        path = Path(tmp) / "events.jsonl"
        write_bench_events(path, n_events)
        lines = path.read_bytes().splitlines()
    started = time.process_time()
    for line in lines:
        json.loads(line)
    json_rate = n_events / (time.process_time() - started)
    decode = EventDecoder().decode
    events = [decode(line) for line in lines]
    # No signatures table: its first poll (opening the store) is start-up, not per-event cost.
    pipeline = build_pipeline(load_settings(signature_table=False, drift_acknowledgements=False))
    spent = {stage.name: 0.0 for stage in pipeline.stages}
    # A checkpoint after 80% of the events (the first: everything is encoded) and one at the
    # end (steady state: only what changed since is encoded again).
    checkpoint = (int(n_events * 0.8) // batch) * batch or batch
    first: list[float] = []
    for start in range(0, n_events, batch):
        if start == checkpoint:
            first = _snapshots(pipeline)
        for key, group in group_by_key(events[start:start + batch]).items():
            pipeline.keys.add(key)
            keyed = KeyBatch(key, group)
            for stage in pipeline.stages:
                began = time.process_time()
                stage.process(keyed)
                spent[stage.name] += time.process_time() - began
    total = sum(spent.values())
    steady = _snapshots(pipeline)
    size = len(json.dumps(pipeline.snapshot(sorted(pipeline.keys)[-1])))
    lines_out = [f"events: {n_events} of about 1 KiB, batches of {batch}, {len(pipeline.keys)} models",
                 f"json.loads only:           {json_rate:12,.0f} events/s"]
    for name, seconds in spent.items():
        rate = n_events / seconds if seconds else float("inf")
        lines_out.append(f"stage {name:<19} {rate:12,.0f} events/s  ({seconds / n_events * 1e6:6.1f} us/event,"
                         f" ratio to json.loads {rate / json_rate:.3g})")
    lines_out += [f"pipeline (all stages):     {n_events / total:12,.0f} events/s  (ratio to json.loads "
                  f"{n_events / total / json_rate:.3g})",
                  f"snapshot + json.dumps per model, first checkpoint: median {_median(first):.1f} ms, "
                  f"max {max(first, default=0.0):.1f} ms",
                  f"snapshot + json.dumps per model, next checkpoint:  median {_median(steady):.1f} ms, "
                  f"max {max(steady, default=0.0):.1f} ms ({size / 1e6:.2f} MB for one model)"]
    if full_window:
        lines_out.append(_full_window(lines, batch))
    if memory:
        lines_out.append(_memory(lines, batch))
    return "\n".join(lines_out)


def _one_model(lines: list[bytes]) -> list[bytes]:
    one_model = [b'"model_id": "model-%d"' % m for m in range(8)]
    out = []
    for line in lines:
        for name in one_model:
            line = line.replace(name, b'"model_id": "model-0"')
        out.append(line)
    return out


def _memory(lines: list[bytes], batch: int) -> str:
    """MiB of traced heap (``tracemalloc``) each stage frees when the pipeline forgets one model's key.

    Every allocation is traced from the pipeline's construction on; imports and lazy set-up happen
    before, in a first pipeline that is then dropped. Tracing slows Python down, so this runs apart
    from the timed runs.
    """
    import gc
    import tracemalloc

    from monitor.events import EventDecoder
    from monitor.registry import build_pipeline
    from monitor.settings import load_settings

    decode = EventDecoder().decode
    events = [decode(line) for line in _one_model(lines)]
    build_pipeline(load_settings(signature_table=False, drift_acknowledgements=False)).process(events[:batch])
    gc.collect()
    tracemalloc.start()
    try:
        pipeline = build_pipeline(load_settings(signature_table=False, drift_acknowledgements=False))
        for start in range(0, len(events), batch):
            pipeline.process(events[start:start + batch])
        gc.collect()
        sizes = {}
        for stage in pipeline.stages:
            before = tracemalloc.get_traced_memory()[0]
            stage.forget(("model-0", "1.0"))
            gc.collect()
            sizes[stage.name] = (before - tracemalloc.get_traced_memory()[0]) / 2**20
    finally:
        tracemalloc.stop()
    return (f"state of one model version after {len(events)} events (traced heap): {sum(sizes.values()):.2f} MiB ("
            + ", ".join(f"{name} {size:.2f}" for name, size in sizes.items()) + ")")


def _snapshots(pipeline: Pipeline) -> list[float]:
    """Milliseconds to snapshot and JSON-encode each key's state, as a checkpoint does."""
    spent = []
    for key in sorted(pipeline.keys):
        began = time.process_time()
        json.dumps(pipeline.snapshot(key))
        spent.append((time.process_time() - began) * 1000)
    return spent


def _median(values: list[float]) -> float:
    return sorted(values)[len(values) // 2] if values else 0.0


def _full_window(lines: list[bytes], batch: int) -> str:
    """Checkpoint ms of one model whose motif window is full (all buckets closed, one open)."""
    from monitor.events import EventDecoder
    from monitor.registry import build_pipeline
    from monitor.settings import load_settings

    settings = load_settings(signature_table=False, drift_acknowledgements=False)
    decode = EventDecoder().decode
    pipeline = build_pipeline(settings)
    needed = settings.motif.window_events + settings.motif.window_events // settings.motif.buckets // 2
    fed = 0
    while fed < needed:
        chunk = [decode(line) for line in _one_model(lines[fed % len(lines):][:batch])]
        pipeline.process(chunk)
        fed += len(chunk)
    _snapshots(pipeline)  # the first checkpoint encodes everything; the next ones are the steady state
    pipeline.process(chunk)
    spent = _snapshots(pipeline)
    size = len(json.dumps(pipeline.snapshot(("model-0", "1.0"))))
    return (f"one model after {fed} events (motif window {settings.motif.window_events}, full): snapshot + "
            f"json.dumps {_median(spent):.1f} ms, {size / 1e6:.2f} MB")


BENCHMARK = Benchmark(
    name="pipeline",
    help="The default pipeline's detectors: events/s per stage and snapshot ms, against json.loads.",
    options=(
        click.option("--events", "n_events", type=COUNT, default=50_000, show_default=True,
                     help="Events of about 1 KiB."),
        click.option("--batch", type=COUNT, default=2048, show_default=True, help="Events per pipeline call."),
        click.option("--full-window/--no-full-window", default=True, show_default=True,
                     help="Also time the checkpoint of one model with a full motif window (about 10 s more)."),
        click.option("--memory/--no-memory", default=False, show_default=True,
                     help="Also measure one model version's state per stage with tracemalloc (all events as one "
                          "model's; slower)."),
    ),
    run=bench_pipeline,
)
