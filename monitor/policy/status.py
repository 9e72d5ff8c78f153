"""What ``driftwatch rollback-status`` reports, for playbook scripts.

A model version is *rollback recommended* while it has a rollback decision
that nobody has resolved (``driftwatch ack --kind rollback --state resolved``);
otherwise it is *healthy*. Without a version, the version that served the
newest event is checked: after a rollback the old version serves again, and
the bad one no longer answers for the model.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass, field
from typing import Any

from monitor.errors import ConfigError
from monitor.policy.config import RollbackRule
from monitor.policy.incidents import ack_states
from monitor.policy.rollback import RollbackDecision, summarize_evidence
from monitor.storage.store import Store

__all__ = ["EXIT_ERROR", "EXIT_HEALTHY", "EXIT_ROLLBACK", "RollbackStatus", "rollback_status"]

EXIT_HEALTHY = 0
EXIT_ROLLBACK = 10
EXIT_ERROR = 2


@dataclass
class RollbackStatus:
    """The state of one model version and the evidence behind it."""

    model_id: str
    model_version: str
    decisions: list[RollbackDecision] = field(default_factory=list)
    resolved: list[str] = field(default_factory=list)
    evidence: list[dict[str, Any]] = field(default_factory=list)
    #: The rollback rules of the policy in force: what could have fired, and what did.
    rules: tuple[RollbackRule, ...] = ()

    @property
    def state(self) -> str:
        return "rollback" if self.decisions else "healthy"

    @property
    def exit_code(self) -> int:
        return EXIT_ROLLBACK if self.decisions else EXIT_HEALTHY

    def to_json(self) -> dict[str, Any]:
        return {"model_id": self.model_id, "model_version": self.model_version, "state": self.state,
                "decisions": [d.to_json() for d in self.decisions], "resolved_decision_ids": self.resolved,
                "evidence": self.evidence, "rules": [_rule_json(rule) for rule in self.rules]}

    def to_text(self) -> str:
        lines = [f"{self.model_id}@{self.model_version}: "
                 + ("ROLLBACK RECOMMENDED" if self.decisions else "healthy")]
        shown = self.decisions[-3:]
        if len(self.decisions) > len(shown):
            lines.append(f"  ... {len(self.decisions) - len(shown)} earlier decision(s) (--json lists all)")
        for decision in shown:
            lines.append(f"  decision {decision.decision_id[:12]} rule={decision.rule} at "
                         f"{_when(decision.ts_ms)} ({len(decision.alert_ids)} alerts)")
            lines.extend(f"    - {reason}" for reason in decision.reasons[:5])
        if self.evidence:
            lines.append("  evidence:")
            lines.extend(f"    {_when(e['ts'])}  {e['severity']:<8} {e['detector']:<12} {e['metric']}  "
                         f"events={','.join(e['event_ids'][:3])}"
                         + (f"\n      {e['summary']}" if e.get("summary") else "") for e in self.evidence)
        if self.resolved:
            lines.append(f"  resolved earlier: {len(self.resolved)} decision(s)")
        if self.rules:
            fired = {d.rule for d in self.decisions}
            lines.append("  policy rules:")
            lines.extend(f"    {'*' if rule.name in fired else ' '} {rule.name:<20} {_rule_when(rule)}"
                         + (f" -- {rule.description}" if rule.description else "") for rule in self.rules)
        return "\n".join(lines)


def _rule_json(rule: RollbackRule) -> dict[str, Any]:
    return {"name": rule.name, "description": rule.description, "min_severity": rule.min_severity,
            "detectors": sorted(rule.detectors) if rule.detectors is not None else None,
            "families": sorted(rule.families) if rule.families is not None else None,
            "min_alerts": rule.min_alerts, "min_families": rule.min_families,
            "needs_families": sorted(rule.needs_families) if rule.needs_families is not None else None}


def _rule_when(rule: RollbackRule) -> str:
    """The rule's condition in one line: ``>=1 critical from motif``."""
    scope = [f"detectors {','.join(sorted(rule.detectors))}" if rule.detectors is not None else "",
             f"families {','.join(sorted(rule.families))}" if rule.families is not None else "",
             f"{rule.min_families}+ families" if rule.min_families > 1 else "",
             f"one of {','.join(sorted(rule.needs_families))}" if rule.needs_families is not None else ""]
    return f">={rule.min_alerts} {rule.min_severity}+ alert(s)" + "".join(f", {s}" for s in scope if s)


def _when(ts_ms: int) -> str:
    return dt.datetime.fromtimestamp(ts_ms / 1000, dt.UTC).strftime("%Y-%m-%d %H:%M:%S")


def latest_version(store: Store, model_id: str) -> str | None:
    """The version that served the model's newest event (or, lacking events, alert)."""
    for table in ("events", "alerts", "rollback_decisions"):
        _, rows = store.query(f"SELECT model_version FROM {table} WHERE model_id = {{m:String}} "
                              "ORDER BY ts DESC LIMIT 1", parameters={"m": model_id})
        if rows:
            return str(rows[0][0])
    return None


def rollback_status(store: Store, model_id: str, model_version: str | None = None,
                    *, evidence_limit: int = 20, rules: tuple[RollbackRule, ...] = ()) -> RollbackStatus:
    """The rollback state of ``model_id`` (at ``model_version``, or its latest); ``rules`` are reported with it."""
    version = model_version or latest_version(store, model_id)
    if version is None:
        raise ConfigError(f"no events, alerts or decisions for model {model_id!r} in the store")
    _, rows = store.query(
        "SELECT decision_id, toUnixTimestamp64Milli(ts), model_id, model_version, decision, rule, reasons, "
        "alert_ids FROM rollback_decisions WHERE model_id = {m:String} AND model_version = {v:String} "
        "AND decision = 'rollback' ORDER BY ts, decision_id", parameters={"m": model_id, "v": version})
    decisions = [RollbackDecision(r[0], int(r[1]), r[2], r[3], r[4], r[5], tuple(r[6]), tuple(r[7])) for r in rows]
    states = ack_states(store, [d.decision_id for d in decisions], kind="rollback")
    status = RollbackStatus(model_id, version, rules=tuple(rules),
                            decisions=[d for d in decisions if states[d.decision_id] != "resolved"],
                            resolved=[d.decision_id for d in decisions if states[d.decision_id] == "resolved"])
    alert_ids = sorted({a for d in status.decisions for a in d.alert_ids})
    if alert_ids:
        _, alerts = store.query(
            "SELECT toUnixTimestamp64Milli(ts), alert_id, detector, metric, severity, evidence FROM alerts "
            "WHERE alert_id IN {ids:Array(String)} ORDER BY ts LIMIT {n:UInt32}",
            parameters={"ids": alert_ids, "n": evidence_limit})
        status.evidence = [{"ts": int(a[0]), "alert_id": a[1], "detector": a[2], "metric": a[3],
                            "severity": a[4], "event_ids": json.loads(a[5] or "{}").get("event_ids", []),
                            "summary": summarize_evidence(a[2], a[5] or "{}")}
                           for a in alerts]
    return status
