"""The motif stage: mine inputs for unknown triggers, from the flags of earlier stages.

Registered last, it reads :attr:`KeyBatch.flags`: an event is anomalous when
any earlier stage flagged it for a reason not in ``ignore_flags`` (by
default ``"trigger"``: a known input trigger says nothing about the output).
Per (model_id, model_version) a :class:`~detectors.motifs.miner.MotifMiner`
keeps a rolling window; every time a window step fills, n-grams that pass
the tests become ``trigger_candidates`` rows, and the first time an n-gram
passes, a ``motif`` alert.

Examples
--------
>>> stage = MotifStage(MotifConfig(window_events=100, buckets=1))
>>> stage.snapshot(("m", "1")) is None
True
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

from detectors.motifs.miner import Candidate, MotifConfig, MotifMiner, tokenize
from monitor.alerts import Alert, Findings, TriggerCandidate, stable_id
from monitor.pipeline import KeyBatch, StreamKey
from monitor.settings import Settings

logger = logging.getLogger(__name__)

__all__ = ["MotifStage", "motif_stage"]


class MotifStage:
    """Trigger-motif mining over each stream's inputs.

    Parameters
    ----------
    config
        Window and thresholds, shared by every stream.
    ignore_flags
        Flags that do not make an event anomalous here.
    """

    name = "motifs"

    def __init__(self, config: MotifConfig | None = None, *, ignore_flags: Iterable[str] = ("trigger",)) -> None:
        self.config = config or MotifConfig()
        self.ignore_flags = frozenset(ignore_flags)
        self.miners: dict[StreamKey, MotifMiner] = {}

    def process(self, batch: KeyBatch) -> Findings:
        findings = Findings()
        if not batch.events:
            return findings
        miner = self.miners.get(batch.key)
        if miner is None:
            miner = self.miners[batch.key] = MotifMiner(self.config)
        events = batch.events
        ignore = self.ignore_flags
        candidates = miner.update(
            [tokenize(e.input) for e in events],
            [bool(reasons - ignore) for reasons in batch.flags],
            users=[e.user_id or "" for e in events], tenants=[e.tenant_id or "" for e in events],
            event_ids=[e.id for e in events], ts_ms=[e.ts_ms for e in events],
        )
        model_id, model_version = batch.key
        for candidate in candidates:
            findings.candidates.append(_row(model_id, model_version, candidate))
            if candidate.new:
                findings.alerts.append(_alert(model_id, model_version, candidate))
                logger.info("motif found model=%s version=%s kind=%s support=%d anomalous=%d lift=%.1f q=%.2g",
                            model_id, model_version, candidate.kind, candidate.support,
                            candidate.anomalous_support, candidate.lift, candidate.q_value)
        return findings

    def snapshot(self, key: StreamKey) -> Any:
        miner = self.miners.get(key)
        return None if miner is None else miner.snapshot()

    def restore(self, key: StreamKey, state: Any) -> None:
        if state is not None:
            self.miners[key] = MotifMiner.restore(state)

    def forget(self, key: StreamKey) -> None:
        self.miners.pop(key, None)


def _row(model_id: str, model_version: str, c: Candidate) -> TriggerCandidate:
    return TriggerCandidate(
        candidate_id=stable_id("motif", model_id, model_version, c.ngram_hash, c.window_end_ms, c.window_events),
        model_id=model_id, model_version=model_version, ngram=c.ngram, kind=c.kind,
        window_start_ms=c.window_start_ms, window_end_ms=c.window_end_ms, support=c.support,
        anomalous_support=c.anomalous_support, distinct_users=c.distinct_users,
        distinct_tenants=c.distinct_tenants, lift=c.lift, p_value=c.p_value, q_value=c.q_value,
        example_event_ids=c.example_event_ids, tenant_ids=c.tenant_ids,
    )


def _alert(model_id: str, model_version: str, c: Candidate) -> Alert:
    return Alert.create(
        ts_ms=c.window_end_ms, model_id=model_id, model_version=model_version, detector="motif",
        metric=f"motif:{c.ngram[:64]}", severity="high", score=c.lift, threshold=0.0,
        discriminator=str(c.ngram_hash), window_start_ms=c.window_start_ms, window_end_ms=c.window_end_ms,
        evidence={"event_ids": list(c.example_event_ids), "ngram": c.ngram, "kind": c.kind,
                  "support": c.support, "anomalous_support": c.anomalous_support, "lift": round(c.lift, 3),
                  "p_value": c.p_value, "q_value": c.q_value, "distinct_users": c.distinct_users,
                  "distinct_tenants": c.distinct_tenants, "window_events": c.window_events,
                  "anomalous_events": c.anomalous_events},
    )


def motif_stage(settings: Settings) -> MotifStage:
    """The stage as the settings configure it."""
    config = MotifConfig(
        window_events=settings.motif_window_events, buckets=settings.motif_buckets,
        min_support=settings.motif_min_support, min_entities=settings.motif_min_entities,
        min_lift=settings.motif_min_lift, fdr=settings.motif_fdr, max_ngrams=settings.motif_max_ngrams,
        sketch_width=settings.motif_sketch_width,
    )
    return MotifStage(config, ignore_flags=settings.motif_ignore_flags)
