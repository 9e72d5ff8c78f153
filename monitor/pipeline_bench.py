"""``driftwatch bench pipeline``: the detectors' cost per stage, and the cost of a checkpoint.

Each figure is a rate measured in this run next to a baseline measured in the
same run (plain ``json.loads`` of the same records), so machines compare by
ratio. Events are :func:`monitor.bench.write_bench_events` records (about
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

__all__ = ["bench_pipeline"]


def bench_pipeline(*, n_events: int = 50_000, batch: int = 2048) -> str:
    """Per-stage events/s of the default pipeline and snapshot ms per model, against ``json.loads``."""
    from monitor.bench import write_bench_events
    from monitor.events import EventDecoder
    from monitor.pipeline import KeyBatch, group_by_key
    from monitor.registry import build_pipeline
    from monitor.settings import Settings

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
    pipeline = build_pipeline(Settings(signature_table=False))
    spent = {stage.name: 0.0 for stage in pipeline.stages}
    for start in range(0, n_events, batch):
        for key, group in group_by_key(events[start:start + batch]).items():
            pipeline.keys.add(key)
            keyed = KeyBatch(key, group)
            for stage in pipeline.stages:
                began = time.process_time()
                stage.process(keyed)
                spent[stage.name] += time.process_time() - began
    total = sum(spent.values())
    snapshot_ms = []
    for key in sorted(pipeline.keys):
        began = time.process_time()
        size = len(json.dumps(pipeline.snapshot(key)))
        snapshot_ms.append((time.process_time() - began) * 1000)
    lines_out = [f"events: {n_events} of about 1 KiB, batches of {batch}, {len(pipeline.keys)} models",
                 f"json.loads only:           {json_rate:12,.0f} events/s"]
    for name, seconds in spent.items():
        rate = n_events / seconds if seconds else float("inf")
        lines_out.append(f"stage {name:<19} {rate:12,.0f} events/s  ({seconds / n_events * 1e6:6.1f} us/event,"
                         f" ratio to json.loads {rate / json_rate:.2f})")
    lines_out += [f"pipeline (all stages):     {n_events / total:12,.0f} events/s  (ratio to json.loads "
                  f"{n_events / total / json_rate:.2f})",
                  f"snapshot + json.dumps per model: median {sorted(snapshot_ms)[len(snapshot_ms) // 2]:.1f} ms, "
                  f"max {max(snapshot_ms):.1f} ms, last one {size / 1e6:.2f} MB"]
    return "\n".join(lines_out)
