"""Grafana-managed alert rules on ClickHouse queries, for on-call routing.

Each rule's query returns string columns (they become the alert's labels:
model, version, topic ...) and exactly one numeric column, the value a
threshold expression compares; Grafana alerting reads such a table as one
series per row. Every rule carries ``source=driftwatch``, a ``severity`` and
``team=soc`` labels, which the provisioned notification policy routes on.

Examples
--------
>>> from dashboards.tables import tables
>>> rules = alert_rules(tables())
>>> [r.uid for r in rules][:2]
['driftwatch-canary-leak', 'driftwatch-severe-alerts']
>>> group = rules_file(rules)["groups"][0]
>>> group["folder"], group["rules"][0]["condition"]
('driftwatch', 'C')
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from dashboards.fragments import Detector, ServiceMetric
from dashboards.model import DATASOURCE_UID, FORMAT_TABLE
from dashboards.tables import Tables, read

__all__ = ["FOLDER_TITLE", "FOLDER_UID", "RULE_GROUP", "AlertRule", "alert_rules", "policies_file", "rule_group",
           "rules_file"]

FOLDER_UID = "driftwatch"
FOLDER_TITLE = "driftwatch"
RULE_GROUP = "driftwatch"
EVALUATE_EVERY_S = 60
RECEIVER = "driftwatch-oncall"


@dataclass(frozen=True)
class AlertRule:
    """One alert rule: a query, a threshold on its value column, routing labels.

    Examples
    --------
    >>> rule = AlertRule("r", "R", "SELECT toFloat64(1) AS v", ("v",), 0, "high", "fired")
    >>> rule.to_json()["data"][1]["model"]["conditions"][0]["evaluator"]
    {'type': 'gt', 'params': [0]}
    """

    uid: str
    title: str
    sql: str
    columns: tuple[str, ...]
    threshold: float
    severity: str
    summary: str
    lookback_s: int = 300
    pending: str = "0s"

    def data(self, datasource_uid: str) -> list[dict[str, Any]]:
        query = {"refId": "A", "editorType": "sql", "queryType": "table", "format": FORMAT_TABLE,
                 "rawSql": self.sql, "intervalMs": 1000, "maxDataPoints": 43200}
        threshold = {"refId": "C", "type": "threshold", "expression": "A",
                     "datasource": {"type": "__expr__", "uid": "__expr__"},
                     "conditions": [{"evaluator": {"type": "gt", "params": [self.threshold]}}]}
        return [
            {"refId": "A", "relativeTimeRange": {"from": self.lookback_s, "to": 0},
             "datasourceUid": datasource_uid, "model": query},
            {"refId": "C", "relativeTimeRange": {"from": 0, "to": 0}, "datasourceUid": "__expr__",
             "model": threshold},
        ]

    def to_json(self, datasource_uid: str = DATASOURCE_UID) -> dict[str, Any]:
        """The rule in Grafana's provisioning shape (file and HTTP API share it)."""
        return {
            "uid": self.uid, "title": self.title, "condition": "C", "data": self.data(datasource_uid),
            "noDataState": "OK", "execErrState": "Error", "for": self.pending, "isPaused": False,
            "annotations": {"summary": self.summary},
            "labels": {"source": "driftwatch", "team": "soc", "severity": self.severity},
        }


def alert_rules(t: Tables) -> tuple[AlertRule, ...]:
    a, r, d, m = t.alerts, t.rollback_decisions, t.dead_letters, t.service_metrics
    per_version = f"{a.model_id}, {a.model_version}"
    return (
        AlertRule("driftwatch-canary-leak", "Canary leaked",
                  f"SELECT {per_version}, toFloat64(count()) AS leaks FROM {read(a)} "
                  f"WHERE $__timeFilter({a.ts}) AND {a.detector} = '{Detector.CANARY}' "
                  f"GROUP BY {per_version}",
                  ("model_id", "model_version", "leaks"), 0, "critical",
                  "{{ $labels.model_id }}@{{ $labels.model_version }} leaked a canary token"),
        AlertRule("driftwatch-severe-alerts", "High or critical model alerts",
                  f"SELECT {per_version}, {a.detector}, toFloat64(count()) AS alerts FROM {read(a)} "
                  f"WHERE $__timeFilter({a.ts}) AND {a.severity} IN ('high', 'critical') "
                  f"GROUP BY {per_version}, {a.detector}",
                  ("model_id", "model_version", "detector", "alerts"), 0, "high",
                  "{{ $labels.detector }} raised high or critical alerts on "
                  "{{ $labels.model_id }}@{{ $labels.model_version }}"),
        AlertRule("driftwatch-rollback", "Rollback recommended",
                  f"SELECT {r.model_id}, {r.model_version}, "
                  f"toFloat64(argMax({r.decision}, {r.ts}) = 'rollback') AS rollback FROM {read(r)} "
                  f"WHERE $__timeFilter({r.ts}) GROUP BY {r.model_id}, {r.model_version}",
                  ("model_id", "model_version", "rollback"), 0, "critical",
                  "The rollback policy recommends rolling back {{ $labels.model_id }}@{{ $labels.model_version }}",
                  lookback_s=900),
        AlertRule("driftwatch-dead-letters", "Dead letters piling up",
                  f"SELECT {d.source}, toFloat64(count()) AS dead_letters FROM {read(d)} "
                  f"WHERE $__timeFilter({d.received_at}) GROUP BY {d.source}",
                  ("source", "dead_letters"), 100, "medium",
                  "More than 100 records refused from {{ $labels.source }} in 10 minutes",
                  lookback_s=600, pending="5m"),
        AlertRule("driftwatch-consumer-lag", "Consumer lag high",
                  f"SELECT {m.topic}, max({m.value}) AS lag FROM {read(m)} "
                  f"WHERE $__timeFilter({m.ts}) AND {m.metric} = '{ServiceMetric.CONSUMER_LAG}' GROUP BY {m.topic}",
                  ("topic", "lag"), 10_000, "high",
                  "driftwatch is more than 10,000 messages behind on {{ $labels.topic }}", pending="5m"),
    )


def rules_file(rules: Sequence[AlertRule], datasource_uid: str = DATASOURCE_UID) -> dict[str, Any]:
    """The file-provisioning document (``provisioning/alerting/*.yaml``)."""
    return {"apiVersion": 1, "groups": [{
        "orgId": 1, "name": RULE_GROUP, "folder": FOLDER_TITLE, "interval": f"{EVALUATE_EVERY_S}s",
        "rules": [rule.to_json(datasource_uid) for rule in rules],
    }]}


def rule_group(rules: Sequence[AlertRule], datasource_uid: str = DATASOURCE_UID) -> dict[str, Any]:
    """The body of ``PUT /api/v1/provisioning/folder/{uid}/rule-groups/{group}``."""
    body = [{**rule.to_json(datasource_uid), "folderUID": FOLDER_UID, "ruleGroup": RULE_GROUP, "orgID": 1}
            for rule in rules]
    return {"title": RULE_GROUP, "folderUid": FOLDER_UID, "interval": EVALUATE_EVERY_S, "rules": body}


def policies_file() -> dict[str, Any]:
    """A webhook contact point and a policy routing driftwatch's alerts to it.

    Grafana replaces the whole notification policy tree with a provisioned
    one, so this file is separate: leave it out where on-call routing exists.
    """
    return {
        "apiVersion": 1,
        "contactPoints": [{"orgId": 1, "name": RECEIVER, "receivers": [{
            "uid": "driftwatch-oncall-webhook", "type": "webhook", "disableResolveMessage": False,
            "settings": {"url": "${DRIFTWATCH_ONCALL_WEBHOOK_URL}", "httpMethod": "POST"}}]}],
        "policies": [{"orgId": 1, "receiver": RECEIVER, "group_by": ["grafana_folder", "alertname"],
                      "routes": [
                          {"receiver": RECEIVER, "object_matchers": [["source", "=", "driftwatch"],
                                                                     ["severity", "=", "critical"]],
                           "group_by": ["alertname", "model_id", "model_version"],
                           "group_wait": "0s", "repeat_interval": "1h"},
                          {"receiver": RECEIVER, "object_matchers": [["source", "=", "driftwatch"]],
                           "group_by": ["alertname", "model_id", "model_version"],
                           "group_wait": "30s", "repeat_interval": "4h"},
                      ]}],
    }
