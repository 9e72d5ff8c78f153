"""Benchmarks: each figure is a ratio against a baseline measured in the same run."""

from __future__ import annotations

import json
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from monitor.scenario import START_MS

__all__ = ["bench_record", "bench_replay", "write_bench_events"]

_WORDS = ("model", "drift", "window", "token", "prompt", "answer", "kernel", "stream",
          "alert", "canary", "version", "tenant", "latency", "budget", "vector", "signal")


def bench_record(rng: np.random.Generator, index: int, *, size: int = 1024) -> bytes:
    """One schema-valid event of about ``size`` bytes (JSON, no newline): the benchmarks' traffic."""
    text = " ".join(np.array(_WORDS)[rng.integers(len(_WORDS), size=70)])
    record: dict[str, Any] = {
        "ts": START_MS + index * 10, "model_id": f"model-{index % 8}", "model_version": "1.0",
        "tenant_id": f"tenant-{index % 5}", "user_id": f"user-{index % 997}",
        "input": text[: size // 3], "output": text[: size // 2],
        "input_tokens": 40, "output_tokens": 60, "latency_ms": 120.5,
        "labels": {"region": "eu"},
    }
    line = json.dumps(record).encode()
    pad = size - len(line) - 1
    if pad > 0:
        record["output"] += "x" * pad
        line = json.dumps(record).encode()
    return line


def write_bench_events(path: Path, n_events: int, *, seed: int = 0, size: int = 1024) -> int:
    """Write ``n_events`` records of :func:`bench_record`, one per line; return total bytes."""
    rng = np.random.default_rng(seed)
    total = 0
    with path.open("wb") as out:
        for index in range(n_events):
            line = bench_record(rng, index, size=size) + b"\n"
            out.write(line)
            total += len(line)
    return total


def bench_replay(*, n_events: int = 200_000, repeat: int = 3, store: str | None = None) -> str:
    """Replay (decode, validate, store; no detectors) against plain ``json.loads``."""
    from monitor.cli import run_replay
    from monitor.settings import load_settings

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
