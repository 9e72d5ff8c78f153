"""Trigger-motif mining: input n-grams that are rare overall but concentrated in anomalous events.

A backdoor's trigger is an input pattern after which the model misbehaves.
Signature matching finds only triggers someone already knows. This miner
looks, over a rolling window of one stream, for input n-grams whose events
are far more often anomalous (flagged by any detector) than events in
general, sent by at least ``min_entities`` distinct users or tenants (so one
user's odd habit is not a trigger), and scores them with lift and a
one-sided Fisher exact test, controlling the false discovery rate with
Benjamini–Hochberg (see :mod:`detectors.motifs.scoring`).

State is bounded and independent of batch boundaries. The window is
``buckets`` steps of ``window_events / buckets`` events each; every step
keeps (a) a count-min sketch of every n-gram's support over all its events,
fixed size, an upper bound (see :mod:`detectors.motifs.count_min`), and
(b) bounded exact-ish counts of the n-grams of its anomalous events, a lower
bound (see :mod:`detectors.motifs.heavy_hitters`). Both errors push the lift
down and the p-value up, so approximation costs sensitivity, never false
candidates. Scoring happens when a step fills, at a fixed event count, so
the same events in the same order give the same candidates however they are
batched.

Examples
--------
>>> miner = MotifMiner(MotifConfig(window_events=400, buckets=1, min_support=5, sketch_width=4096))
>>> rows = []
>>> for i in range(400):
...     planted = i % 20 == 0
...     text = f"question {i % 37} on topic {i % 11}" + (" zorblat quintessence" if planted else "")
...     rows += miner.update([tokenize(text)], [planted], users=[f"u{i % 9}"], tenants=["t"],
...                          event_ids=[f"e{i}"], ts_ms=[i])
>>> [c.ngram for c in rows]
['zorblat quintessence']
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from detectors.motifs.count_min import CountMinSketch
from detectors.motifs.heavy_hitters import Entry, HeavyHitters
from detectors.motifs.ngrams import MAX_N, distinct_ngram_hashes, ngram_hashes, ngram_texts, tokenize
from detectors.motifs.scoring import benjamini_hochberg, fisher_upper, lift

__all__ = ["Candidate", "MotifConfig", "MotifMiner", "tokenize"]

FORMAT = "motif_miner.v1"
ALERTED_CAP = 4096
# A shorter n-gram inside a kept longer one, seen in at least this share as
# many anomalous events, says nothing the longer one does not.
SUBSUMED_SHARE = 0.8
# A longer n-gram around a kept shorter one must be this much more concentrated to count on its own.
SHARPER = 1.25


@dataclass(frozen=True)
class MotifConfig:
    """How the miner windows and scores (see :class:`monitor.settings.Settings` ``motif_*``)."""

    window_events: int = 100_000
    buckets: int = 5
    min_support: int = 10
    min_entities: int = 3
    min_lift: float = 5.0
    fdr: float = 0.001
    max_ngrams: int = 20_000
    sketch_width: int = 1 << 17
    sketch_depth: int = 4
    max_n: int = MAX_N

    def __post_init__(self) -> None:
        if self.window_events < self.buckets or self.buckets < 1:
            raise ValueError(f"need window_events >= buckets >= 1; got {self.window_events} and {self.buckets}")

    @property
    def bucket_events(self) -> int:
        return self.window_events // self.buckets


@dataclass(frozen=True)
class Candidate:
    """An n-gram that looks like a trigger in one window."""

    ngram_hash: int
    ngram: str
    kind: str
    support: int
    anomalous_support: int
    distinct_users: int
    distinct_tenants: int
    lift: float
    p_value: float
    q_value: float
    example_event_ids: tuple[str, ...]
    tenant_ids: tuple[str, ...]
    window_start_ms: int
    window_end_ms: int
    window_events: int
    anomalous_events: int
    new: bool  # first window this n-gram was found in (since the miner's state began)


@dataclass
class _Bucket:
    sketch: CountMinSketch
    heavy: HeavyHitters
    events: int = 0
    anomalous: int = 0
    start_ms: int = -1
    end_ms: int = -1
    # A closed bucket never changes: its snapshot is encoded once and shared by every later one.
    encoded: dict[str, Any] | None = None


@dataclass
class _Merged:
    entry: Entry
    users: set[str] = field(default_factory=set)
    tenants: set[str] = field(default_factory=set)


class MotifMiner:
    """Rolling-window trigger-motif mining over one stream.

    Parameters
    ----------
    config
        Window, thresholds and state sizes.
    """

    def __init__(self, config: MotifConfig | None = None) -> None:
        self.config = config or MotifConfig()
        self.closed: deque[_Bucket] = deque(maxlen=self.config.buckets)
        self.current = self._new_bucket()
        self._alerted: deque[int] = deque(maxlen=ALERTED_CAP)

    def _new_bucket(self) -> _Bucket:
        cfg = self.config
        return _Bucket(CountMinSketch(cfg.sketch_width, cfg.sketch_depth),
                       HeavyHitters(cfg.max_ngrams, entity_cap=max(16, cfg.min_entities)))

    def update(self, tokens: Sequence[list[str]], anomalous: Sequence[bool], *, users: Sequence[str],
               tenants: Sequence[str], event_ids: Sequence[str], ts_ms: Sequence[int]) -> list[Candidate]:
        """Add events (tokenised inputs, in arrival order); return candidates of windows that closed."""
        found: list[Candidate] = []
        start = 0
        size = self.config.bucket_events
        while start < len(tokens):
            end = min(len(tokens), start + size - self.current.events)
            self._absorb(tokens[start:end], anomalous[start:end], users[start:end], tenants[start:end],
                         event_ids[start:end], ts_ms[start:end])
            if self.current.events >= size:
                self.closed.append(self.current)
                self.current = self._new_bucket()
                found.extend(self._score())
            start = end
        return found

    def _absorb(self, tokens: Sequence[list[str]], anomalous: Sequence[bool], users: Sequence[str],
                tenants: Sequence[str], event_ids: Sequence[str], ts_ms: Sequence[int]) -> None:
        bucket = self.current
        # Support counts events, not occurrences: one count per event and n-gram.
        bucket.sketch.add(distinct_ngram_hashes(list(tokens), self.config.max_n))
        flagged = [index for index, a in enumerate(anomalous) if a]
        if flagged:
            # One hashing pass for every anomalous event; a stable sort by event gives each event's
            # hashes in the order of its own ngram_texts (hashes do not depend on the batch).
            hashes, owners = ngram_hashes([tokens[index] for index in flagged], self.config.max_n)
            order = np.argsort(owners, kind="stable")
            ends = np.cumsum(np.bincount(owners, minlength=len(flagged)))
            per_event = np.split(hashes[order], ends[:-1])
            for index, own in zip(flagged, per_event, strict=True):
                bucket.heavy.add_event(own.tolist(), ngram_texts(tokens[index], self.config.max_n),
                                       user=users[index], tenant=tenants[index], event_id=event_ids[index])
                bucket.heavy.prune()
        bucket.events += len(tokens)
        bucket.anomalous += sum(bool(a) for a in anomalous)
        if len(ts_ms):
            bucket.start_ms = ts_ms[0] if bucket.start_ms < 0 else bucket.start_ms
            bucket.end_ms = ts_ms[-1]

    def _score(self) -> list[Candidate]:
        cfg = self.config
        buckets = list(self.closed)
        events = sum(b.events for b in buckets)
        anomalous = sum(b.anomalous for b in buckets)
        if anomalous == 0 or anomalous == events:
            return []
        merged: dict[int, _Merged] = {}
        for bucket in buckets:  # oldest first: examples are the earliest events
            for item, entry in bucket.heavy.entries.items():
                into = merged.get(item)
                if into is None:
                    into = merged[item] = _Merged(Entry(entry.text, entry.kind, 0, set(), set(), []))
                into.entry.count += entry.count
                into.users |= entry.users
                into.tenants |= entry.tenants
                room = 5 - len(into.entry.examples)
                into.entry.examples.extend(entry.examples[:max(room, 0)])
        chosen = [(item, m) for item, m in merged.items()
                  if m.entry.count >= cfg.min_support
                  and max(len(m.users), len(m.tenants)) >= cfg.min_entities]
        if not chosen:
            return []
        items = np.fromiter((item for item, _ in chosen), dtype=np.uint64, count=len(chosen))
        hits = np.array([m.entry.count for _, m in chosen], dtype=np.int64)
        sketch = buckets[0].sketch.merged([b.sketch for b in buckets[1:]])
        # The sketch never undercounts, but may overshoot: clamp to what is possible.
        support = np.clip(sketch.estimate(items), hits, events)
        p_values = fisher_upper(hits, support, anomalous=anomalous, events=events)
        q_values = benjamini_hochberg(p_values, tests=sum(b.heavy.distinct for b in buckets))
        lifts = lift(hits, support, anomalous=anomalous, events=events)
        keep = [i for i in range(len(chosen)) if q_values[i] <= cfg.fdr and lifts[i] >= cfg.min_lift]
        keep = _drop_subsumed([(chosen[i][1].entry, i, float(lifts[i])) for i in keep])
        found = []
        for i in keep:
            item, m = chosen[i]
            new = item not in self._alerted
            if new:
                self._alerted.append(item)
            found.append(Candidate(
                ngram_hash=item, ngram=m.entry.text, kind=m.entry.kind, support=int(support[i]),
                anomalous_support=int(hits[i]), distinct_users=len(m.users), distinct_tenants=len(m.tenants),
                lift=float(lifts[i]), p_value=float(p_values[i]), q_value=float(q_values[i]),
                example_event_ids=tuple(m.entry.examples), tenant_ids=tuple(sorted(m.tenants)),
                window_start_ms=buckets[0].start_ms, window_end_ms=buckets[-1].end_ms,
                window_events=events, anomalous_events=anomalous, new=new))
        return sorted(found, key=lambda c: (c.p_value, c.ngram))

    def snapshot(self) -> dict[str, Any]:
        """JSON-ready state."""
        for bucket in self.closed:
            if bucket.encoded is None:
                bucket.encoded = _bucket_state(bucket, compress=True)
        return {"format": FORMAT, "config": asdict(self.config),
                "buckets": [*(b.encoded for b in self.closed), _bucket_state(self.current, compress=False)],
                "alerted": [str(item) for item in self._alerted]}

    @classmethod
    def restore(cls, state: dict[str, Any]) -> MotifMiner:
        if state.get("format") != FORMAT:
            raise ValueError(f"motif snapshot format must be {FORMAT!r}; got {state.get('format')!r}")
        miner = cls(MotifConfig(**state["config"]))
        buckets = [_bucket_from(b, miner.config) for b in state["buckets"]]
        for bucket, saved in zip(buckets[:-1], state["buckets"], strict=False):
            bucket.encoded = saved
        miner.closed.extend(buckets[:-1])
        miner.current = buckets[-1]
        miner._alerted.extend(int(item) for item in state["alerted"])
        return miner


def _inside(small: Entry, big: Entry) -> bool:
    if small.kind == "word":
        return big.kind == "word" and f" {small.text} " in f" {big.text} "
    return small.text in big.text


def _drop_subsumed(scored: list[tuple[Entry, int, float]]) -> list[int]:
    """Keep one n-gram per motif.

    A shorter n-gram inside a kept longer one seen nearly as often adds
    nothing (the trigger's own words); a longer n-gram around a kept shorter
    one, no more concentrated, adds nothing either (the trigger plus a common
    neighbouring word).
    """
    kept: list[tuple[Entry, int, float]] = []
    for entry, index, score in sorted(scored, key=lambda s: (-len(s[0].text), s[0].text)):
        if not any(_inside(entry, big) and big.count >= SUBSUMED_SHARE * entry.count for big, _, _ in kept):
            kept.append((entry, index, score))
    out: list[tuple[Entry, int, float]] = []
    for entry, index, score in sorted(kept, key=lambda s: (len(s[0].text), s[0].text)):
        if not any(_inside(small, entry) and score <= SHARPER * small_score for small, _, small_score in out):
            out.append((entry, index, score))
    return [index for _, index, _ in out]


def _bucket_state(bucket: _Bucket, *, compress: bool) -> dict[str, Any]:
    return {"events": bucket.events, "anomalous": bucket.anomalous, "start_ms": bucket.start_ms,
            "end_ms": bucket.end_ms, "sketch": bucket.sketch.snapshot(compress=compress),
            "heavy": bucket.heavy.snapshot(compress=compress)}


def _bucket_from(state: dict[str, Any], config: MotifConfig) -> _Bucket:
    return _Bucket(CountMinSketch.restore(state["sketch"]),
                   HeavyHitters.restore(state["heavy"], entity_cap=max(16, config.min_entities)),
                   int(state["events"]), int(state["anomalous"]), int(state["start_ms"]), int(state["end_ms"]))
