"""Canaries and triggers: signature hits across the fleet, who saw them, the signature inventory."""

from __future__ import annotations

from dashboards.fragments import Detector, in_models, model_variable
from dashboards.model import Board, Panel
from dashboards.tables import Tables, read

__all__ = ["canaries_and_triggers"]


def canaries_and_triggers(t: Tables) -> Board:
    a, s, c = t.alerts, t.signatures, t.trigger_candidates
    hits = f"{a.detector} IN ('{Detector.CANARY}', '{Detector.TRIGGER}')"
    where = f"$__timeFilter({a.ts}) AND {in_models(a)}"
    panels = (
        Panel("Canary leaks", "stat",
              f"SELECT count() AS leaks FROM {read(a)} WHERE {where} AND {a.detector} = '{Detector.CANARY}'",
              ("leaks",), "Outputs that contained a canary token.", thresholds=(1, 1)),
        Panel("Trigger hits", "stat",
              f"SELECT count() AS hits FROM {read(a)} WHERE {where} AND {a.detector} = '{Detector.TRIGGER}'",
              ("hits",), "Inputs that contained a known backdoor trigger.", thresholds=(1, 10)),
        Panel("Tenants affected", "stat",
              f"SELECT uniqExact({a.tenant_id}) AS tenants FROM {read(a)} WHERE {where} AND {hits}",
              ("tenants",), "Distinct tenants whose traffic hit a canary or a trigger."),
        Panel("Active signatures", "stat",
              f"SELECT countIf({s.active} = 1) AS signatures FROM {read(s)}",
              ("signatures",), "Signatures in force, canaries included."),
        Panel("Hits by signature", "timeseries",
              f"SELECT $__timeInterval({a.ts}) AS time, concat({a.detector}, ' ', {a.metric}) AS signature, "
              f"count() AS hits FROM {read(a)} WHERE {where} AND {hits} GROUP BY time, signature ORDER BY time",
              ("time", "signature", "hits"), "Trigger (input) and canary (output) matches per signature.",
              bars=True, stacked=True, width=24),
        Panel("Hits by tenant", "table",
              f"SELECT {a.tenant_id}, {a.detector}, {a.metric}, count() AS hits, "
              f"uniqExact({a.model_id}, {a.model_version}) AS model_versions, max({a.ts}) AS last_seen "
              f"FROM {read(a)} WHERE {where} AND {hits} GROUP BY {a.tenant_id}, {a.detector}, {a.metric} "
              f"ORDER BY hits DESC LIMIT 100",
              ("tenant_id", "detector", "metric", "hits", "model_versions", "last_seen"),
              "Which tenants sent triggers or received canaries."),
        Panel("Trigger candidates across the fleet", "table",
              f"SELECT {c.model_id}, {c.model_version}, {c.ngram}, sum({c.anomalous_support}) AS anomalous, "
              f"sum({c.support}) AS support, max({c.lift}) AS lift, min({c.q_value}) AS q_value, "
              f"max({c.distinct_tenants}) AS tenants FROM {read(c)} "
              f"WHERE $__timeFilter({c.window_end}) AND {in_models(c)} "
              f"GROUP BY {c.model_id}, {c.model_version}, {c.ngram} ORDER BY q_value ASC, lift DESC LIMIT 100",
              ("model_id", "model_version", "ngram", "anomalous", "support", "lift", "q_value", "tenants"),
              "Mined n-grams that may be new triggers, best evidence first."),
        Panel("Signature inventory", "table",
              # Canaries keep only a keyed hash of their pattern; the pattern column is empty for them.
              f"SELECT {s.signature_id}, {s.kind}, {s.applies_to}, {s.scope}, {s.severity}, {s.active}, "
              f"{s.pattern}, {s.description}, {s.source}, {s.created_at}, {s.rotated_at} FROM {read(s)} "
              f"ORDER BY {s.active} DESC, {s.signature_id}",
              ("signature_id", "kind", "applies_to", "scope", "severity", "active", "pattern", "description",
               "source", "created_at", "rotated_at"),
              "Every signature and canary, with who minted it.", width=24),
    )
    return Board("driftwatch-canaries", "driftwatch / Canaries and triggers", panels,
                 description="Known backdoor triggers in inputs, canary tokens in outputs.",
                 variables=(model_variable(t),))
