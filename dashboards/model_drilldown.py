"""Model drill-down: one model's metrics against the reference, change points,
embedding drift, canary hits and trigger candidates.

A metric's reference is read from ``window_metrics.extra['reference']`` where
the detector writes one (the value the stream is compared with); windows
without it show no reference line rather than a false zero.
"""

from __future__ import annotations

from dashboards.fragments import Detector, in_models, in_versions, model_variable, version_variable
from dashboards.model import Annotation, Board, Panel
from dashboards.tables import Tables, read

__all__ = ["model_drilldown"]


def model_drilldown(t: Tables) -> Board:
    w, a, c = t.window_metrics, t.alerts, t.trigger_candidates
    alerts_where = f"$__timeFilter({a.ts}) AND {in_models(a)} AND {in_versions(a)}"
    metrics_where = f"$__timeFilter({w.window_end}) AND {in_models(w)} AND {in_versions(w)}"
    reference = f"if(mapContains({w.extra}, 'reference'), {w.extra}['reference'], nan)"
    panels = (
        Panel("Metrics against the reference", "timeseries",
              f"SELECT {w.window_end} AS time, concat({w.detector}, ':', {w.metric}) AS series, "
              f"avg({w.value}) AS value, avg({reference}) AS reference FROM {read(w)} "
              f"WHERE {metrics_where} AND {w.detector} != '{Detector.EMBEDDING}' "
              f"GROUP BY time, series ORDER BY time",
              ("time", "series", "value", "reference"),
              "Each detector's window metric (value) and the reference it is compared with.", width=24),
        Panel("Change points", "table",
              f"SELECT {a.ts}, {a.model_version}, {a.metric}, {a.severity}, {a.score}, {a.threshold}, "
              f"{a.window_start}, {a.window_end}, {a.alert_id} FROM {read(a)} "
              f"WHERE {alerts_where} AND {a.detector} = '{Detector.CHANGEPOINT}' ORDER BY {a.ts} DESC LIMIT 200",
              ("ts", "model_version", "metric", "severity", "score", "threshold", "window_start", "window_end",
               "alert_id"),
              "Change-point alerts; they are also drawn as annotations on the time series."),
        Panel("Embedding drift", "timeseries",
              f"SELECT {w.window_end} AS time, {w.metric}, avg({w.value}) AS value FROM {read(w)} "
              f"WHERE {metrics_where} AND {w.detector} = '{Detector.EMBEDDING}' "
              f"GROUP BY time, {w.metric} ORDER BY time",
              ("time", "metric", "value"),
              "Distance of each window's output embeddings from the reference distribution."),
        Panel("Canary hits", "timeseries",
              f"SELECT $__timeInterval({a.ts}) AS time, {a.metric}, count() AS hits FROM {read(a)} "
              f"WHERE {alerts_where} AND {a.detector} = '{Detector.CANARY}' "
              f"GROUP BY time, {a.metric} ORDER BY time",
              ("time", "metric", "hits"), "Outputs that leaked a canary, per canary.", bars=True, stacked=True),
        Panel("Alerts by detector", "timeseries",
              f"SELECT $__timeInterval({a.ts}) AS time, {a.detector}, count() AS alerts FROM {read(a)} "
              f"WHERE {alerts_where} GROUP BY time, {a.detector} ORDER BY time",
              ("time", "detector", "alerts"), "Every alert of this model, by detector.", bars=True, stacked=True),
        Panel("Trigger candidates", "table",
              f"SELECT {c.ngram}, {c.kind}, {c.model_version}, {c.window_end}, {c.support}, "
              f"{c.anomalous_support}, {c.distinct_users}, {c.distinct_tenants}, {c.lift}, {c.q_value} "
              f"FROM {read(c)} WHERE $__timeFilter({c.window_end}) AND {in_models(c)} AND {in_versions(c)} "
              f"ORDER BY {c.q_value} ASC, {c.lift} DESC LIMIT 100",
              ("ngram", "kind", "model_version", "window_end", "support", "anomalous_support", "distinct_users",
               "distinct_tenants", "lift", "q_value"),
              "Input n-grams over-represented in anomalous outputs (Fisher exact test, "
              "Benjamini-Hochberg q-value): candidate backdoor triggers.", width=24),
    )
    change_points = Annotation(
        "Change points",
        f"SELECT {a.ts} AS time, {a.window_end} AS timeEnd, "
        f"concat({a.metric}, ' (', {a.severity}, ', score ', toString(round({a.score}, 3)), ')') AS text, "
        f"[{a.detector}, {a.model_version}] AS tags FROM {read(a)} "
        f"WHERE {alerts_where} AND {a.detector} = '{Detector.CHANGEPOINT}' ORDER BY time",
        color="orange")
    return Board("driftwatch-model", "driftwatch / Model drill-down", panels,
                 description="One model's behaviour against its reference.",
                 variables=(model_variable(t, multi=False), version_variable(t)), annotations=(change_points,),
                 time_from="now-7d")
