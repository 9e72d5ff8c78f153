"""``driftwatch bench report``: a report over a million events, against a plain scan.

The events are generated inside ClickHouse (``numbers()``), so the benchmark
times the report, not a loader. The baseline, measured in the same run on the
same store, is one aggregate over the same rows (``count``, ``avg`` of one
column): the least any report of those events must read. The figure is the
report's time and its ratio to that scan.
"""

from __future__ import annotations

import tempfile
import time

import click

from driftwatch.bench.benchmark import Benchmark, repeat_option
from driftwatch.cli.options import store_option
from monitor.report.build import ReportRange, build_report
from monitor.storage.store import Store

__all__ = ["BENCHMARK", "bench_report"]

_DAY_MS = 86_400_000


def _fill(store: Store, n_events: int, now_ms: int) -> None:
    span_s = 7 * _DAY_MS // 1000
    store.command(f"""
        INSERT INTO events (event_id, ts, model_id, model_version, tenant_id, user_id, input_hash, output_hash,
                            input_chars, output_chars, latency_ms, source)
        SELECT toString(number), fromUnixTimestamp64Milli(toInt64({now_ms} - (number % {span_s}) * 1000 - 1)),
               'bench-model', if(number % {span_s} < {span_s // 3}, '2.0', '1.0'),
               concat('tenant-', toString(number % 7)), concat('user-', toString(number % 997)),
               hex(cityHash64(number)), hex(cityHash64(number + 1)), 200 + number % 300,
               400 + (number * 7919) % 500, 100 + (number % 1000) / 10, 'bench'
        FROM numbers({n_events})""")
    store.command(f"""
        INSERT INTO window_metrics (model_id, model_version, detector, metric, window_start, window_end, value, count)
        SELECT 'bench-model', '1.0', 'divergence', concat('js:', toString(number % 4)),
               fromUnixTimestamp64Milli(toInt64({now_ms} - (number + 1) * 300000)),
               fromUnixTimestamp64Milli(toInt64({now_ms} - number * 300000)), (number % 50) / 100, 500
        FROM numbers(2000)""")
    store.command(f"""
        INSERT INTO alerts (alert_id, ts, model_id, model_version, detector, metric, severity, score, threshold,
                            window_start, window_end, evidence)
        SELECT hex(cityHash64(number, 'alert')), fromUnixTimestamp64Milli(toInt64({now_ms} - number * 600000)),
               'bench-model', '2.0', ['trigger', 'changepoint', 'canary'][number % 3 + 1], 'bench',
               ['medium', 'high', 'critical'][number % 3 + 1], 1, 1,
               fromUnixTimestamp64Milli(toInt64({now_ms} - number * 600000)),
               fromUnixTimestamp64Milli(toInt64({now_ms} - number * 600000)), '{{"event_ids": ["1"]}}'
        FROM numbers(500)""")


def bench_report(*, n_events: int = 1_000_000, repeat: int = 2, store: str | None = None) -> str:
    """Time ``build_report`` over ``n_events`` events against one aggregate scan of them."""
    with tempfile.TemporaryDirectory(prefix="driftwatch-bench-report-") as tmp, \
            Store(store or f"chdb://{tmp}/store") as handle:
        handle.ensure_schema()
        now_ms = int(time.time() * 1000)
        started = time.perf_counter()
        _fill(handle, n_events, now_ms)
        fill_s = time.perf_counter() - started
        span = ReportRange("bench-model", now_ms - 7 * _DAY_MS, now_ms + 1)
        scans, reports, size = [], [], 0
        for _ in range(repeat):
            started = time.perf_counter()
            _, rows = handle.query(
                "SELECT count(), avg(output_chars) FROM events WHERE model_id = {m:String} "
                "AND ts >= fromUnixTimestamp64Milli({s:Int64})", parameters={"m": "bench-model", "s": span.since_ms})
            scans.append(time.perf_counter() - started)
            if rows[0][0] != n_events:
                raise RuntimeError(f"bench store holds {rows[0][0]} of {n_events} events in range")
            started = time.perf_counter()
            page, _ = build_report(handle, span)
            reports.append(time.perf_counter() - started)
            size = len(page)
        best_scan, best_report = min(scans), min(reports)
        return "\n".join([
            f"events: {n_events:,} over 7 days, 2 versions (generated in ClickHouse in {fill_s:.1f} s); "
            f"best of {repeat}",
            f"baseline, one aggregate scan (count, avg):   {best_scan:8.3f} s",
            f"report (10 queries, SVG, HTML of {size / 1024:.0f} KiB): {best_report:8.3f} s",
            f"ratio report / scan: {best_report / best_scan:.1f}; target <= 30 s: "
            f"{'met' if best_report <= 30 else 'MISSED'}",
        ])


BENCHMARK = Benchmark(
    name="report",
    help="Report generation over N events against one aggregate scan of them (target: 1M events in <= 30 s).",
    options=(
        click.option("--events", "n_events", type=int, default=1_000_000, show_default=True),
        repeat_option(2),
        store_option,
    ),
    run=bench_report,
)
