"""Every benchmark, in one place: ``driftwatch bench`` has one subcommand per entry."""

from __future__ import annotations

from driftwatch.bench import detectors, embedding, motif, pipeline, replay, report, scale, signatures, stream
from driftwatch.bench.benchmark import Benchmark

__all__ = ["BENCHMARKS"]

BENCHMARKS: tuple[Benchmark, ...] = (
    detectors.BENCHMARK,
    embedding.BENCHMARK,
    motif.BENCHMARK,
    pipeline.BENCHMARK,
    replay.BENCHMARK,
    report.BENCHMARK,
    scale.BENCHMARK,
    signatures.BENCHMARK,
    stream.BENCHMARK,
)
