"""SQL fragments shared by several dashboards.

Detector names are the values the pipeline writes (README, *the alerts
table is a contract*): each is checked against the stage registry
(:data:`monitor.registry.DETECTOR_FAMILIES`) when this module loads.
Service metric names are spelled once, here.
"""

from __future__ import annotations

from dashboards.model import QueryVariable
from dashboards.tables import Table, Tables, read
from monitor.alerts import SEVERITIES
from monitor.registry import DETECTOR_FAMILIES

__all__ = ["Detector", "ServiceMetric", "in_models", "in_versions", "model_variable", "severity_weight",
           "version_variable"]


def _detector(name: str) -> str:
    if name not in DETECTOR_FAMILIES:
        raise ValueError(f"dashboards filter on detector {name!r}, which no registered stage emits; "
                         f"known: {', '.join(sorted(DETECTOR_FAMILIES))}")
    return name


class Detector:
    """Values of ``alerts.detector`` and ``window_metrics.detector`` the dashboards filter on."""

    TRIGGER = _detector("trigger")
    CANARY = _detector("canary")
    CHANGEPOINT = _detector("changepoint")
    EMBEDDING = _detector("embedding")


class ServiceMetric:
    """Values of ``service_metrics.metric`` the streaming workers report."""

    EVENTS_PER_S = "events_per_s"
    CONSUMER_LAG = "consumer_lag"


def severity_weight(column: str) -> str:
    """``column``'s severity as a weight that doubles per level (info 1 ... critical 16)."""
    cases = ", ".join(f"{column} = '{name}', {2 ** rank}" for rank, name in enumerate(SEVERITIES))
    return f"multiIf({cases}, 0)"


def in_models(table: Table) -> str:
    return f"{table.model_id} IN (${{model:singlequote}})"


def in_versions(table: Table) -> str:
    return f"{table.model_version} IN (${{version:singlequote}})"


def model_variable(t: Tables, *, multi: bool = True) -> QueryVariable:
    # alerts and window_metrics are small next to events, and hold every model worth looking at.
    w, a = t.window_metrics, t.alerts
    sql = (f"SELECT DISTINCT {w.model_id} FROM {w} WHERE $__timeFilter({w.window_end}) "
           f"UNION DISTINCT SELECT DISTINCT {a.model_id} FROM {a} WHERE $__timeFilter({a.ts})")
    return QueryVariable("model", "Model", f"SELECT * FROM ({sql}) ORDER BY 1", multi=multi)


def version_variable(t: Tables) -> QueryVariable:
    e = t.events
    sql = (f"SELECT DISTINCT {e.model_version} FROM {e} "
           f"WHERE {in_models(e)} AND $__timeFilter({e.ts}) ORDER BY 1")
    return QueryVariable("version", "Version", sql, multi=True)


def latest_state(t: Tables, kind: str) -> str:
    """A subquery: the current acknowledgement state per target id of ``kind``."""
    k = t.acknowledgements
    return (f"SELECT {k.target_id}, {k.state} FROM {read(k)} WHERE {k.target_kind} = '{kind}'")
