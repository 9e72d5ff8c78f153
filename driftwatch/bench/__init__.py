"""Benchmarks: each figure is a ratio against a baseline measured in the same run.

One module per benchmark, each defining a :class:`~driftwatch.bench.benchmark.Benchmark`
named ``BENCHMARK``; :data:`driftwatch.bench.registry.BENCHMARKS` lists them, and
``driftwatch bench`` has one subcommand per entry. The traffic they share is
:mod:`driftwatch.bench.traffic`.
"""
