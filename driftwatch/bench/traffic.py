"""The benchmarks' traffic: about 1 KiB events of eight models, and prompts of Zipf-distributed words."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from monitor.scenario import START_MS

__all__ = ["bench_record", "synthetic_prompts", "vocabulary", "write_bench_events"]

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


_SYLLABLES = ("ka", "lo", "mi", "ne", "ru", "ta", "vo", "ze", "pi", "sa", "do", "fe", "gu", "hi", "jo", "wu")


def vocabulary(rng: np.random.Generator, size: int) -> list[str]:
    """``size`` made-up words of two to four syllables, sorted."""
    words = {"".join(rng.choice(_SYLLABLES, size=int(rng.integers(2, 5)))) for _ in range(size * 2)}
    return sorted(words)[:size]


def synthetic_prompts(rng: np.random.Generator, count: int, *, words: int = 30, vocabulary_size: int = 20_000,
                      zipf: float = 1.1) -> list[list[str]]:
    """Prompts of Zipf-distributed words (as natural text is), as word lists."""
    vocab = np.array(vocabulary(rng, vocabulary_size))
    ranks = np.minimum(rng.zipf(zipf, size=(count, words)) - 1, len(vocab) - 1)
    return [list(vocab[row]) for row in ranks]
