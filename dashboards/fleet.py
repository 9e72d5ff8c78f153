"""Fleet overview: alerts by severity and by model over time, the top drifting models."""

from __future__ import annotations

from dashboards.fragments import in_models, latest_state, model_variable, severity_weight
from dashboards.model import Board, Panel
from dashboards.tables import Tables, read

__all__ = ["fleet_overview"]


def fleet_overview(t: Tables) -> Board:
    a = t.alerts
    where = f"$__timeFilter({a.ts}) AND {in_models(a)}"
    severe = f"{a.severity} IN ('high', 'critical')"
    panels = (
        Panel("High and critical alerts", "stat",
              f"SELECT count() AS alerts FROM {read(a)} WHERE {where} AND {severe}",
              ("alerts",), "Alerts of severity high or critical in the time range.", thresholds=(1, 10)),
        Panel("Models alerting", "stat",
              f"SELECT uniqExact({a.model_id}, {a.model_version}) AS models FROM {read(a)} WHERE {where}",
              ("models",), "Model versions with at least one alert in the time range."),
        Panel("Open incidents", "stat", _open_incidents(t), ("incidents",),
              "Incidents in the time range not yet acknowledged, resolved or suppressed.", thresholds=(1, 5)),
        Panel("Rollbacks recommended", "stat", _rollbacks(t), ("rollbacks",),
              "Model versions the rollback policy recommends rolling back.", thresholds=(1, 1)),
        Panel("Alerts by severity", "timeseries",
              f"SELECT $__timeInterval({a.ts}) AS time, {a.severity}, count() AS alerts FROM {read(a)} "
              f"WHERE {where} GROUP BY time, {a.severity} ORDER BY time",
              ("time", "severity", "alerts"), "Alerts per interval, stacked by severity.",
              stacked=True, bars=True),
        Panel("Alerts by model", "timeseries",
              f"SELECT $__timeInterval({a.ts}) AS time, concat({a.model_id}, '@', {a.model_version}) AS model, "
              f"count() AS alerts FROM {read(a)} WHERE {where} GROUP BY time, model ORDER BY time",
              ("time", "model", "alerts"), "Alerts per interval and model version.", stacked=True),
        Panel("Top drifting models", "table",
              f"SELECT {a.model_id}, {a.model_version}, sum({severity_weight(a.severity)}) AS drift_score, "
              f"count() AS alerts, countIf({a.severity} = 'critical') AS critical, "
              f"countIf({a.severity} = 'high') AS high, groupUniqArray({a.detector}) AS detectors, "
              f"max({a.ts}) AS last_alert FROM {read(a)} WHERE {where} "
              f"GROUP BY {a.model_id}, {a.model_version} ORDER BY drift_score DESC, last_alert DESC LIMIT 20",
              ("model_id", "model_version", "drift_score", "alerts", "critical", "high", "detectors", "last_alert"),
              "Model versions ranked by alert severity: each level weighs twice the one below "
              "(info 1, low 2, medium 4, high 8, critical 16).", width=24),
        Panel("Latest alerts", "table", _latest_alerts(t),
              ("ts", "severity", "model_id", "model_version", "detector", "metric", "score", "threshold",
               "state", "alert_id"),
              "The newest 100 alerts, with their acknowledgement state.", width=24, height=10),
    )
    return Board("driftwatch-fleet", "driftwatch / Fleet overview", panels,
                 description="Alerts across every monitored model.", variables=(model_variable(t),))


def _latest_alerts(t: Tables) -> str:
    a = t.alerts
    return (f"SELECT a.{a.ts} AS ts, a.{a.severity} AS severity, a.{a.model_id} AS model_id, "
            f"a.{a.model_version} AS model_version, a.{a.detector} AS detector, a.{a.metric} AS metric, "
            f"a.{a.score} AS score, a.{a.threshold} AS threshold, "
            f"if(k.state = '', 'open', toString(k.state)) AS state, a.{a.alert_id} AS alert_id "
            f"FROM {read(a, 'a')} LEFT JOIN ({latest_state(t, 'alert')}) AS k ON k.target_id = a.{a.alert_id} "
            f"WHERE $__timeFilter(a.{a.ts}) AND a.{in_models(a)} ORDER BY a.{a.ts} DESC LIMIT 100")


def _open_incidents(t: Tables) -> str:
    i = t.incidents
    return (f"SELECT count() AS incidents FROM {read(i, 'i')} "
            f"LEFT JOIN ({latest_state(t, 'incident')}) AS k ON k.target_id = i.{i.incident_id} "
            f"WHERE $__timeFilter(i.{i.last_ts}) AND i.{in_models(i)} AND k.state IN ('', 'open')")


def _rollbacks(t: Tables) -> str:
    r = t.rollback_decisions
    # The newest decision per model version counts: a later "healthy" clears an earlier "rollback".
    return (f"SELECT countIf(decision = 'rollback') AS rollbacks FROM ("
            f"SELECT argMax({r.decision}, {r.ts}) AS decision FROM {read(r)} "
            f"WHERE $__timeFilter({r.ts}) AND {in_models(r)} GROUP BY {r.model_id}, {r.model_version})")
