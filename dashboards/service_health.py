"""Service health: events per second, consumer lag, dead letters, latency."""

from __future__ import annotations

from dashboards.fragments import ServiceMetric
from dashboards.model import Board, Panel
from dashboards.tables import Tables, read

__all__ = ["service_health"]


def service_health(t: Tables) -> Board:
    e, m, d = t.events, t.service_metrics, t.dead_letters
    # events is the largest table: it is read without FINAL. A replayed row is
    # ingested work all the same, which is what a throughput graph shows.
    panels = (
        Panel("Events/s (stored)", "timeseries",
              f"SELECT $__timeInterval({e.ts}) AS time, {e.model_id}, count() / $__interval_s AS events_per_s "
              f"FROM {e} WHERE $__timeFilter({e.ts}) GROUP BY time, {e.model_id} ORDER BY time",
              ("time", "model_id", "events_per_s"), "Events stored per second of event time, by model.",
              unit="reqps", stacked=True),
        Panel("Events/s (workers)", "timeseries",
              f"SELECT $__timeInterval({m.ts}) AS time, {m.worker}, avg({m.value}) AS events_per_s "
              f"FROM {read(m)} WHERE $__timeFilter({m.ts}) AND {m.metric} = '{ServiceMetric.EVENTS_PER_S}' "
              f"GROUP BY time, {m.worker} ORDER BY time",
              ("time", "worker", "events_per_s"), "Throughput each streaming worker reports.", unit="reqps"),
        Panel("Consumer lag", "timeseries",
              f"SELECT $__timeInterval({m.ts}) AS time, concat({m.topic}, '/', toString({m.partition})) AS partition, "
              f"max({m.value}) AS lag FROM {read(m)} "
              f"WHERE $__timeFilter({m.ts}) AND {m.metric} = '{ServiceMetric.CONSUMER_LAG}' "
              f"GROUP BY time, partition ORDER BY time",
              ("time", "partition", "lag"), "Messages behind the head of each topic partition.",
              thresholds=(10_000, 100_000)),
        Panel("Dead letters", "timeseries",
              f"SELECT $__timeInterval({d.received_at}) AS time, {d.source}, count() AS dead_letters "
              f"FROM {read(d)} WHERE $__timeFilter({d.received_at}) GROUP BY time, {d.source} ORDER BY time",
              ("time", "source", "dead_letters"), "Records refused by decoding or validation, by source.",
              bars=True, stacked=True),
        Panel("Latency p50 / p95", "timeseries",
              f"SELECT $__timeInterval({e.ts}) AS time, {e.model_id}, "
              f"quantile(0.5)({e.latency_ms}) AS p50, quantile(0.95)({e.latency_ms}) AS p95 "
              f"FROM {e} WHERE $__timeFilter({e.ts}) GROUP BY time, {e.model_id} ORDER BY time",
              ("time", "model_id", "p50", "p95"), "Model-call latency reported in events.", unit="ms"),
        Panel("Other worker metrics", "timeseries",
              f"SELECT $__timeInterval({m.ts}) AS time, {m.metric}, avg({m.value}) AS value FROM {read(m)} "
              f"WHERE $__timeFilter({m.ts}) AND {m.metric} NOT IN "
              f"('{ServiceMetric.EVENTS_PER_S}', '{ServiceMetric.CONSUMER_LAG}') "
              f"GROUP BY time, {m.metric} ORDER BY time",
              ("time", "metric", "value"), "Sink buffer, retries and the other samples workers report."),
        Panel("Latest dead letters", "table",
              f"SELECT {d.received_at}, {d.source}, {d.partition}, {d.offset}, {d.line}, {d.field}, {d.reason}, "
              f"{d.raw_bytes} FROM {read(d)} WHERE $__timeFilter({d.received_at}) "
              f"ORDER BY {d.received_at} DESC LIMIT 100",
              ("received_at", "source", "partition", "offset", "line", "field", "reason", "raw_bytes"),
              "Where each refused record came from and why.", width=24),
    )
    return Board("driftwatch-service", "driftwatch / Service health", panels,
                 description="Is the monitor itself keeping up?", time_from="now-6h", refresh="30s")
