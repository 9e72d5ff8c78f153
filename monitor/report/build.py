"""``driftwatch report``: one model's history as a single offline HTML file.

Every number is aggregated in ClickHouse (per time bucket, per version), so
the Python side handles a few thousand rows whatever the event count; the
plots are inline SVG (:mod:`monitor.report.svg`) and the page has no script,
stylesheet or image to fetch.

Examples
--------
>>> bucket_for(7 * 86_400_000)
3600000
"""

from __future__ import annotations

import datetime as dt
import html
import json
import time
from dataclasses import dataclass, field
from typing import Any

from monitor import __version__
from monitor.errors import ConfigError
from monitor.policy.incidents import ack_states
from monitor.report.svg import SEVERITY_COLOURS, bar_chart, line_chart
from monitor.storage.store import Store

__all__ = ["ReportRange", "bucket_for", "build_report"]

_BUCKETS_MS = (60_000, 300_000, 900_000, 3_600_000, 6 * 3_600_000, 86_400_000, 7 * 86_400_000)
_MAX_BUCKETS = 200
_MAX_METRICS = 8
_RANGE = ("model_id = {m:String} AND ts >= fromUnixTimestamp64Milli({s:Int64}) "
          "AND ts < fromUnixTimestamp64Milli({u:Int64})")


def bucket_for(span_ms: int) -> int:
    """The smallest bucket that keeps a plot under 200 points."""
    return next((b for b in _BUCKETS_MS if span_ms / b <= _MAX_BUCKETS), _BUCKETS_MS[-1])


@dataclass(frozen=True)
class ReportRange:
    model_id: str
    since_ms: int
    until_ms: int
    model_version: str | None = None

    def __post_init__(self) -> None:
        if self.until_ms <= self.since_ms:
            raise ConfigError(f"report range is empty: since {self.since_ms} >= until {self.until_ms}")


@dataclass
class _Data:
    bucket_ms: int
    since_ms: int
    until_ms: int
    versions: list[tuple[Any, ...]] = field(default_factory=list)
    traffic: list[tuple[Any, ...]] = field(default_factory=list)
    metrics: list[tuple[Any, ...]] = field(default_factory=list)
    alert_buckets: list[tuple[Any, ...]] = field(default_factory=list)
    markers: list[tuple[Any, ...]] = field(default_factory=list)
    alerts: list[tuple[Any, ...]] = field(default_factory=list)
    incidents: list[tuple[Any, ...]] = field(default_factory=list)
    decisions: list[tuple[Any, ...]] = field(default_factory=list)
    candidates: list[tuple[Any, ...]] = field(default_factory=list)
    seconds: dict[str, float] = field(default_factory=dict)


def _query(store: Store, data: _Data, name: str, sql: str, params: dict[str, Any]) -> list[tuple[Any, ...]]:
    started = time.perf_counter()
    _, rows = store.query(sql, parameters=params)
    data.seconds[name] = time.perf_counter() - started
    return rows


def _collect(store: Store, span: ReportRange) -> _Data:
    data = _Data(bucket_ms=0, since_ms=span.since_ms, until_ms=span.until_ms)
    version = "AND ({v:String} = '' OR model_version = {v:String})"
    p = {"m": span.model_id, "s": span.since_ms, "u": span.until_ms, "v": span.model_version or ""}
    bucket = "toUnixTimestamp(toStartOfInterval(ts, toIntervalSecond({b:UInt32}))) * 1000"
    data.versions = _query(store, data, "versions", f"""
        SELECT model_version, count(), uniq(tenant_id), uniq(user_id), toUnixTimestamp64Milli(min(ts)),
               toUnixTimestamp64Milli(max(ts)), avg(output_chars), avgOrNull(latency_ms)
        FROM events WHERE {_RANGE} {version} GROUP BY model_version ORDER BY min(ts)""", p)
    if data.versions:  # plot the span that has traffic, not a mostly empty range
        data.since_ms = max(span.since_ms, min(int(r[4]) for r in data.versions))
        data.until_ms = min(span.until_ms, max(int(r[5]) for r in data.versions) + 1)
    data.bucket_ms = bucket_for(data.until_ms - data.since_ms)
    p["b"] = data.bucket_ms // 1000
    data.traffic = _query(store, data, "traffic", f"""
        SELECT {bucket} AS bucket, model_version, count(), avg(output_chars)
        FROM events WHERE {_RANGE} {version} GROUP BY bucket, model_version ORDER BY bucket""", p)
    metric_range = _RANGE.replace("ts >=", "window_end >=").replace("ts <", "window_end <")
    data.metrics = _query(store, data, "metrics", f"""
        WITH top AS (SELECT detector, metric FROM window_metrics WHERE {metric_range} {version}
                     GROUP BY detector, metric ORDER BY count() DESC LIMIT {_MAX_METRICS})
        SELECT detector, metric, model_version,
               toUnixTimestamp(toStartOfInterval(window_end, toIntervalSecond({{b:UInt32}}))) * 1000 AS bucket,
               avg(value)
        FROM window_metrics WHERE {metric_range} {version} AND (detector, metric) IN top
        GROUP BY detector, metric, model_version, bucket ORDER BY bucket""", p)
    data.alert_buckets = _query(store, data, "alert_buckets", f"""
        SELECT {bucket} AS bucket, severity, count() FROM alerts WHERE {_RANGE} {version}
        GROUP BY bucket, severity ORDER BY bucket""", p)
    data.markers = _query(store, data, "markers", f"""
        SELECT toUnixTimestamp64Milli(ts), detector, metric, severity FROM alerts
        WHERE {_RANGE} {version} AND (detector = 'changepoint' OR severity = 'critical')
        ORDER BY ts LIMIT 100""", p)
    data.alerts = _query(store, data, "alerts", f"""
        SELECT toUnixTimestamp64Milli(ts), model_version, severity, detector, metric, tenant_id, evidence
        FROM alerts WHERE {_RANGE} {version} AND severity IN ('medium', 'high', 'critical')
        ORDER BY ts DESC LIMIT 50""", p)
    data.incidents = _query(store, data, "incidents", """
        SELECT incident_id, toUnixTimestamp64Milli(window_start), model_version, family, severity, alert_count
        FROM incidents WHERE model_id = {m:String} AND ({v:String} = '' OR model_version = {v:String})
          AND window_end > fromUnixTimestamp64Milli({s:Int64}) AND window_start < fromUnixTimestamp64Milli({u:Int64})
        ORDER BY window_start DESC LIMIT 100""", p)
    data.decisions = _query(store, data, "decisions", f"""
        SELECT decision_id, toUnixTimestamp64Milli(ts), model_version, decision, rule, length(alert_ids)
        FROM rollback_decisions WHERE {_RANGE} {version} ORDER BY ts DESC LIMIT 50""", p)
    data.candidates = _query(store, data, "candidates", f"""
        SELECT ngram, model_version, support, anomalous_support, distinct_tenants, lift, q_value
        FROM trigger_candidates WHERE {metric_range} {version} ORDER BY q_value, lift DESC LIMIT 20""", p)
    return data


def _when(ts_ms: int) -> str:
    return dt.datetime.fromtimestamp(ts_ms / 1000, dt.UTC).strftime("%Y-%m-%d %H:%M:%S")


def _table(headers: tuple[str, ...], rows: list[tuple[Any, ...]], empty: str) -> str:
    if not rows:
        return f"<p class='empty'>{html.escape(empty)}</p>"
    head = "".join(f"<th>{html.escape(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _series(rows: list[tuple[Any, ...]], key: int, x: int, y: int) -> dict[str, list[tuple[int, float]]]:
    out: dict[str, list[tuple[int, float]]] = {}
    for row in rows:
        out.setdefault(str(row[key]), []).append((int(row[x]), float(row[y])))
    return out


_CSS = """body{font-family:system-ui,sans-serif;margin:2em;color:#222;max-width:960px}
h1{font-size:1.4em}h2{font-size:1.1em;margin-top:1.6em;border-bottom:1px solid #ddd}
table{border-collapse:collapse;font-size:12px;margin:.5em 0}td,th{border:1px solid #ddd;padding:3px 6px;text-align:left}
th{background:#f4f4f4}.empty{color:#888;font-style:italic}.meta{color:#666;font-size:12px}
.sev-critical{color:#a50f15;font-weight:bold}"""


def build_report(store: Store, span: ReportRange) -> tuple[str, dict[str, float]]:
    """The report's HTML, and how long each query took (seconds)."""
    data = _collect(store, span)
    x_range = (data.since_ms - data.since_ms % data.bucket_ms, data.until_ms)
    markers = [(int(ts), f"{det} {metric} ({sev})", "#a50f15" if sev == "critical" else "#555")
               for ts, det, metric, sev in data.markers]
    traffic = _series(data.traffic, 1, 0, 2)
    lengths = _series(data.traffic, 1, 0, 3)
    metric_plots: dict[str, list[tuple[Any, ...]]] = {}
    for row in data.metrics:
        metric_plots.setdefault(f"{row[0]} / {row[1]}", []).append((row[2], row[3], row[4]))
    severities = {sev: [(int(r[0]), float(r[2])) for r in data.alert_buckets if r[1] == sev]
                  for sev in ("info", "low", "medium", "high", "critical")}
    states = ack_states(store, [r[0] for r in data.incidents], kind="incident")
    version_label = span.model_version or "all versions"
    parts = [
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>",
        f"<title>driftwatch report: {html.escape(span.model_id)}</title><style>{_CSS}</style></head><body>",
        f"<h1>driftwatch report: {html.escape(span.model_id)} ({html.escape(version_label)})</h1>",
        f"<p class='meta'>{_when(span.since_ms)} to {_when(span.until_ms)} UTC; buckets of "
        f"{data.bucket_ms // 60_000} min; generated {_when(int(time.time() * 1000))} UTC by driftwatch "
        f"{__version__} from {html.escape(store.describe())}</p>",
        "<h2>Versions</h2>",
        _table(("version", "events", "tenants", "users", "first", "last", "mean output chars", "mean latency ms"),
               [(r[0], r[1], r[2], r[3], _when(r[4]), _when(r[5]), f"{r[6]:.1f}",
                 "" if r[7] is None else f"{r[7]:.1f}") for r in data.versions], "no events in range"),
        "<h2>Traffic and output length</h2>",
        line_chart("events per bucket, by version", traffic, x_range=x_range, markers=markers),
        line_chart("mean output characters, by version", lengths, x_range=x_range, markers=markers),
        "<h2>Metrics against the reference</h2>",
        "<p class='meta'>dashed lines: change points (grey) and critical alerts (red)</p>",
    ]
    if not metric_plots:
        parts.append("<p class='empty'>no window metrics in range</p>")
    for name, rows in metric_plots.items():
        parts.append(line_chart(name, _series(rows, 0, 1, 2), x_range=x_range, markers=markers))
    parts += [
        "<h2>Alerts</h2>",
        bar_chart("alerts per bucket, by severity", {k: v for k, v in severities.items() if v}, x_range=x_range,
                  bucket_ms=data.bucket_ms, colours=SEVERITY_COLOURS),
        _table(("time (UTC)", "version", "severity", "detector", "metric", "tenant", "events"),
               [(_when(r[0]), r[1], r[2], r[3], r[4], r[5],
                 ",".join(json.loads(r[6] or "{}").get("event_ids", [])[:3])) for r in data.alerts],
               "no medium, high or critical alerts in range"),
        "<h2>Incidents</h2>",
        _table(("incident", "window start", "version", "family", "severity", "alerts", "state"),
               [(r[0][:12], _when(r[1]), r[2], r[3], r[4], r[5], states[r[0]]) for r in data.incidents],
               "no incidents in range"),
        "<h2>Rollback decisions</h2>",
        _table(("decision", "time (UTC)", "version", "decision", "rule", "alerts"),
               [(r[0][:12], _when(r[1]), r[2], r[3], r[4], r[5]) for r in data.decisions],
               "no rollback decisions in range"),
        "<h2>Trigger candidates</h2>",
        _table(("n-gram", "version", "support", "anomalous", "tenants", "lift", "q-value"),
               [(r[0], r[1], r[2], r[3], r[4], f"{r[5]:.2f}", f"{r[6]:.2g}") for r in data.candidates],
               "no trigger candidates in range"),
        "</body></html>",
    ]
    return "\n".join(parts), data.seconds
