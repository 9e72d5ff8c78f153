"""The motif stage: mine inputs for unknown triggers, from the flags of earlier stages.

Registered last, it reads :attr:`KeyBatch.flags`: an event is anomalous when
any earlier stage flagged it for a reason not in ``ignore_flags`` (by
default ``"trigger"`` and ``"input_shift"``: flags on the input, not on what
the model did; a new prompt template is what shifts the inputs, and its own
words would explain the flag). The stage adds ``payload_burst``: an answer
given word for word to two different questions (see
:mod:`detectors.motifs.bursts`: the same instruction bare and in a template
is one question).
Per (model_id, model_version) a :class:`~detectors.motifs.miner.MotifMiner`
keeps a rolling window and tests each anomalous event's n-grams as it
arrives; an n-gram that passes becomes a ``trigger_candidates`` row and a
``motif`` alert, once (see :mod:`detectors.motifs.online`).

Examples
--------
>>> stage = MotifStage(MotifStageConfig(window_events=100, buckets=1))
>>> stage.snapshot(("m", "1")) is None
True
"""

from __future__ import annotations

import logging
from typing import Any

from detectors.motifs.bursts import PayloadBursts, questions
from detectors.motifs.miner import Candidate, MotifMiner, tokenize
from detectors.motifs.ngrams import MAX_TOKENS, DistinctNgrams, TokenBatch
from detectors.motifs.payload import exact_hash, simhash, tool_shapes
from monitor.alerts import Alert, Findings, Severity, TriggerCandidate, stable_id
from monitor.pipeline import KeyBatch, StreamKey
from monitor.settings.stages import MotifStageConfig

logger = logging.getLogger(__name__)

__all__ = ["MotifStage", "MotifStageConfig"]

FORMAT = "motif_stage.v1"  # the miner's and the payload bursts' state; a bare motif_miner.v1 state is still read
BURST_FLAG = "payload_burst"
#: An answer of fewer words is never a burst: "0", "Positive" or "Yes" given to many inputs is what they are for.
BURST_MIN_WORDS = 2


class MotifStage:
    """Trigger-motif mining over each stream's inputs.

    Parameters
    ----------
    config
        Window, thresholds, and the flags that do not make an event anomalous here, shared by every stream.
    """

    name = "motifs"

    def __init__(self, config: MotifStageConfig | None = None) -> None:
        self.config = config or MotifStageConfig()
        self.miner_config = self.config.miner()
        self.ignore_flags = frozenset(self.config.ignore_flags)
        self.miners: dict[StreamKey, MotifMiner] = {}
        self.bursts: dict[StreamKey, PayloadBursts] = {}

    def process(self, batch: KeyBatch) -> Findings:
        findings = Findings()
        if not batch.events:
            return findings
        miner = self.miners.get(batch.key)
        if miner is None:
            miner = self.miners[batch.key] = MotifMiner(self.miner_config)
        bursts = self.bursts.get(batch.key)
        if bursts is None:
            bursts = self.bursts[batch.key] = PayloadBursts()
        events = batch.events
        ignore = self.ignore_flags
        inputs = [exact_hash(e.input) for e in events]
        tokens = [tokenize(e.input) for e in events]
        # What each input asks, so that one answer to one instruction, bare and in a template, is no burst.
        # From the whole input: a long instruction cut at MAX_TOKENS inside a template loses its end, and
        # would read as another question (the ingest limits bound the input).
        # One token batch for both: the questions read whole inputs, the miner their first MAX_TOKENS tokens.
        # Where no input is cut (most batches), the miner's support n-grams hold the questions' 1- and 2-grams.
        whole = TokenBatch([tokenize(e.input, len(e.input)) if len(words) >= MAX_TOKENS else words
                            for e, words in zip(events, tokens, strict=True)])
        first = whole.truncated(MAX_TOKENS)
        support = DistinctNgrams(first, miner.config.max_n)
        asked = questions(support if first is whole and support.max_n >= 2 else whole)
        # The hash of each answer that can burst (else None); on an answer's first burst, its occurrences before.
        answers = [exact_hash(e.output) if len(e.output.split(None, BURST_MIN_WORDS - 1)) >= BURST_MIN_WORDS
                   else None for e in events]
        burst_at, before = bursts.observe_many(answers, inputs, reference=miner.config.reference_events - miner.seen,
                                               questions=asked)
        for index in burst_at:
            batch.flag(index, BURST_FLAG)
        counted = [reasons - ignore if reasons else reasons for reasons in batch.flags]  # most events have none
        anomalous = [bool(reasons) for reasons in counted]
        payloads = [simhash(e.output, tool_shapes(e.tool_calls)) if a else None
                    for e, a in zip(events, anomalous, strict=True)]
        candidates = miner.update(
            tokens, anomalous,
            users=[e.user_id or "" for e in events], tenants=[e.tenant_id or "" for e in events],
            event_ids=[e.id for e in events], ts_ms=[e.ts_ms for e in events],
            input_hashes=inputs, payloads=payloads, bursts=[BURST_FLAG in reasons for reasons in counted],
            before=before, answers=answers, support=support,
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
        if miner is None:
            return None
        bursts = self.bursts.get(key)
        return {"format": FORMAT, "miner": miner.snapshot(), "bursts": None if bursts is None else bursts.snapshot()}

    def restore(self, key: StreamKey, state: Any) -> None:
        if state is None:
            return
        if state.get("format") != FORMAT:  # a state from before the payload bursts: the miner's alone
            self.miners[key] = MotifMiner.restore(state)
            self.bursts.pop(key, None)
            return
        self.miners[key] = MotifMiner.restore(state["miner"])
        bursts = self.bursts[key] = PayloadBursts()
        if state["bursts"] is not None:
            bursts.restore(state["bursts"])

    def forget(self, key: StreamKey) -> None:
        self.miners.pop(key, None)
        self.bursts.pop(key, None)


def _row(model_id: str, model_version: str, c: Candidate) -> TriggerCandidate:
    return TriggerCandidate(
        candidate_id=stable_id("motif", model_id, model_version, c.ngram_hash, c.window_end_ms, c.window_events),
        model_id=model_id, model_version=model_version, found=c)


def severity_of(c: Candidate) -> Severity:
    """``critical`` for a named trigger with novelty, spread and a consistent payload; ``high`` otherwise.

    Every candidate has passed the novelty test against the reference and the spread checks (see
    :mod:`detectors.motifs.online`), so what separates the two is the payload: one thing done after it.
    """
    return "critical" if c.consistent else "high"


def _alert(model_id: str, model_version: str, c: Candidate) -> Alert:
    return Alert.create(
        ts_ms=c.window_end_ms, model_id=model_id, model_version=model_version, detector="motif",
        metric=f"motif:{c.ngram[:64]}", severity=severity_of(c), score=c.lift, threshold=0.0,
        discriminator=str(c.ngram_hash), window_start_ms=c.window_start_ms, window_end_ms=c.window_end_ms,
        evidence={"event_ids": list(c.example_event_ids), "ngram": c.ngram, "kind": c.kind,
                  "support": c.support, "anomalous_support": c.anomalous_support, "lift": round(c.lift, 3),
                  "p_value": c.p_value, "q_value": c.q_value, "distinct_users": c.distinct_users,
                  "distinct_tenants": c.distinct_tenants, "window_events": c.window_events,
                  "anomalous_events": c.anomalous_events, "first_event_id": (c.example_event_ids or ("",))[0],
                  "event_id": c.event_id,
                  "novelty": {"kind": c.novelty, "reference_support": c.reference_support,
                              "reference_anomalous": c.reference_anomalous,
                              "anomalous_share_now": round(c.anomalous_support / max(c.support, 1), 4),
                              "expected_share": round(c.expected_share, 6)},
                  "payload": {"consistency": round(c.payload_consistency, 3), "answers_hashed": c.payloads,
                              "consistent": c.consistent, "bursts": c.payload_bursts},
                  "spread": {"distinct_users": c.distinct_users, "distinct_tenants": c.distinct_tenants,
                             "distinct_inputs": c.distinct_inputs, "top_user_share": round(c.top_user_share, 3)}},
    )
