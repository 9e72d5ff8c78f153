"""``driftwatch bench NAME``: one subcommand per entry of :data:`driftwatch.bench.registry.BENCHMARKS`."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import click

from driftwatch.bench.benchmark import Benchmark
from driftwatch.bench.registry import BENCHMARKS
from driftwatch.cli.options import run_guarded

__all__ = ["bench_command", "bench_group"]


def bench_command(benchmark: Benchmark) -> click.Command:
    """The subcommand that runs ``benchmark`` with its options and prints its report."""
    def callback(**options: Any) -> None:
        def body() -> int:
            click.echo(benchmark.run(**options))
            return 0
        run_guarded(body)

    # Applied last to first, as stacked decorators are, so --help lists them in the tuple's order.
    for option in reversed(benchmark.options):
        callback = option(callback)
    return click.command(benchmark.name, help=benchmark.help)(callback)


def bench_group(benchmarks: Sequence[Benchmark] = BENCHMARKS) -> click.Group:
    """The ``bench`` group, a subcommand per benchmark."""
    return click.Group("bench", commands=[bench_command(b) for b in benchmarks],
                       help="Benchmarks, reported as ratios against a baseline from the same run.")
