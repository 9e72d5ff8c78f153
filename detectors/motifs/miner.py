"""Trigger-motif mining: input n-grams that are rare overall but concentrated in anomalous events.

A backdoor's trigger is an input pattern after which the model misbehaves.
Signature matching finds only triggers someone already knows. This miner
looks, over a rolling window of one stream, for input n-grams whose events
are far more often anomalous (flagged by any detector) than events in
general and than in the version's reference period, sent by at least
``min_entities`` distinct users or tenants (so one user's odd habit is not
a trigger). Each anomalous event's n-grams are tested as it arrives:
binomial tails with Bonferroni over the window's n-grams, payload bursts on
their own, Fisher's exact test against the reference (see
:mod:`detectors.motifs.online`).

State is bounded and independent of batch boundaries. The window is
``buckets`` steps of ``window_events / buckets`` events each; every step
keeps (a) a count-min sketch of every n-gram's support over all its events,
fixed size, an upper bound (see :mod:`detectors.motifs.count_min`), and
(b) bounded exact-ish counts of the n-grams of its anomalous events, a lower
bound (see :mod:`detectors.motifs.heavy_hitters`). Both errors push the lift
down and the p-value up, so approximation costs sensitivity, never false
candidates. Each event is tested on the counts as they were just after it
(what later events of the same call added is taken back), so the same events
in the same order give the same candidates however they are batched.

Examples
--------
>>> miner = MotifMiner(MotifConfig(window_events=400, buckets=1, min_support=5, sketch_width=4096,
...                                   reference_events=0))
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

from collections import OrderedDict, deque
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from detectors.motifs.count_min import CountMinSketch
from detectors.motifs.heavy_hitters import Entry, HeavyHitters
from detectors.motifs.ngrams import (
    MAX_N,
    DistinctNgrams,
    ngram_hashes,
    ngram_texts,
    tokenize,
)
from detectors.motifs.online import Candidate, Later, test_event
from detectors.motifs.payload import exact_hash
from detectors.motifs.unflagged import UnflaggedAnswers

__all__ = ["Candidate", "MotifConfig", "MotifMiner", "tokenize"]

FORMAT = "motif_miner.v3"  # v3: recent unflagged events by answer; v2: each step counts its payload bursts
_FORMAT_V2 = "motif_miner.v2"  # read with no unflagged events kept
_FORMAT_V1 = "motif_miner.v1"  # a v1 from before issue 15 also lacks seen, reference and named: no reference
ALERTED_CAP = 4096
BURSTING_CAP = 256
@dataclass(frozen=True)
class MotifConfig:
    """How the miner windows and scores (see :class:`monitor.settings.Settings` ``motif_*``)."""

    window_events: int = 100_000
    buckets: int = 5
    min_support: int = 4
    burst_min_support: int = 3  # payload bursts that make a candidate on their own (see detectors.motifs.online)
    min_entities: int = 3
    min_lift: float = 5.0
    fdr: float = 0.001
    max_ngrams: int = 20_000
    sketch_width: int = 1 << 17
    sketch_depth: int = 4
    max_n: int = MAX_N
    #: The version's first events: their anomalous n-grams are the reference that novelty is judged against;
    #: nothing is named before it is complete (0: no reference, every n-gram is new).
    reference_events: int = 2000
    min_inputs: int = 3  # distinct whole inputs among a candidate's anomalous events: a hard prompt is one
    max_user_share: float = 0.5  # most of a candidate's anomalous events one user may have sent
    payload_consistency: float = 0.75  # share of near-identical answers that makes a candidate critical

    def __post_init__(self) -> None:
        if self.window_events < self.buckets or self.buckets < 1:
            raise ValueError(f"need window_events >= buckets >= 1; got {self.window_events} and {self.buckets}")

    @property
    def bucket_events(self) -> int:
        return self.window_events // self.buckets


@dataclass
class _Bucket:
    sketch: CountMinSketch
    heavy: HeavyHitters
    events: int = 0
    anomalous: int = 0
    bursts: int = 0  # anomalous events whose answer was a payload burst
    start_ms: int = -1
    end_ms: int = -1
    # A closed bucket never changes: its snapshot is encoded once and shared by every later one.
    encoded: dict[str, Any] | None = None


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
        self.reference = self._new_bucket()
        self.seen = 0
        self._alerted: deque[int] = deque(maxlen=ALERTED_CAP)
        self._named: deque[tuple[str, str]] = deque(maxlen=ALERTED_CAP)  # (text, kind) of what was named
        self._bursting: OrderedDict[int, None] = OrderedDict()  # payloads of recent bursts, most recent last
        self._unflagged = UnflaggedAnswers()  # a payload's first, unflagged occurrences, credited when it bursts

    def _new_bucket(self) -> _Bucket:
        cfg = self.config
        return _Bucket(CountMinSketch(cfg.sketch_width, cfg.sketch_depth),
                       HeavyHitters(cfg.max_ngrams, entity_cap=max(16, cfg.min_entities)))

    def update(self, tokens: Sequence[list[str]], anomalous: Sequence[bool], *, users: Sequence[str],
               tenants: Sequence[str], event_ids: Sequence[str], ts_ms: Sequence[int],
               input_hashes: Sequence[int] | None = None, payloads: Sequence[int | None] | None = None,
               bursts: Sequence[bool] | None = None, before: Sequence[int] | None = None,
               answers: Sequence[int | None] | None = None, support: DistinctNgrams | None = None) -> list[Candidate]:
        """Add events (tokenised inputs, in arrival order); return the n-grams that became candidates.

        Each anomalous event's n-grams are tested as it arrives (see :mod:`detectors.motifs.online`);
        ``input_hashes`` (of each whole input) and ``payloads`` (SimHash of each answer) are its evidence,
        and ``bursts`` says which anomalous events' answers were payload bursts (a sharper anomaly), with
        ``before``, on an answer's first burst, how many times it was given before (its first occurrences,
        which were no burst yet: the burst test's null counts them, and its evidence counts those that were
        anomalous, by their payload). ``answers`` (the exact hash of each answer that can burst, else
        ``None``) lets those that were not anomalous count too: the first burst of an answer credits its
        earlier unflagged events as anomalous bursts (see :mod:`detectors.motifs.unflagged`).
        ``support``, the :class:`~detectors.motifs.ngrams.DistinctNgrams` of ``tokens`` (at this miner's
        ``max_n``) when the caller has them, spares hashing them again.
        """
        found: list[Candidate] = []
        start = 0
        size = self.config.bucket_events
        count = len(tokens)
        # Without the inputs' hashes, each input's tokens stand for it (the same distinct-input count).
        hashes = list(input_hashes) if input_hashes is not None else [exact_hash(" ".join(t)) for t in tokens]
        outs = list(payloads) if payloads is not None else [None] * count
        burst = [bool(b) and bool(a) for b, a in zip(bursts, anomalous, strict=True)] if bursts is not None \
            else [False] * count
        earlier = [int(n) if b else 0 for n, b in zip(before, burst, strict=True)] if before is not None \
            else [0] * count
        said = list(answers) if answers is not None else [None] * count
        if support is not None and (support.events, support.tokens, support.max_n) != \
                (count, sum(map(len, tokens)), self.config.max_n):
            raise ValueError(f"support must hold the {count} events' {sum(map(len, tokens))} tokens' n-grams up to "
                             f"n={self.config.max_n}; got {support.events} events, {support.tokens} tokens and "
                             f"n={support.max_n}")
        while start < count:
            end = min(count, start + size - self.current.events)
            if self.seen < self.config.reference_events:
                end = min(end, start + self.config.reference_events - self.seen)
            found.extend(self._absorb(tokens[start:end], anomalous[start:end], users[start:end],
                                      tenants[start:end], event_ids[start:end], ts_ms[start:end],
                                      hashes[start:end], outs[start:end], burst[start:end], earlier[start:end],
                                      said[start:end],
                                      None if support is None else support.select(start, end)))
            if self.seen == self.config.reference_events and self.reference.events == 0:
                self.reference = self._frozen_reference()
            if self.current.events >= size:
                self.closed.append(self.current)
                self.current = self._new_bucket()
            start = end
        return found

    def _absorb(self, tokens: Sequence[list[str]], anomalous: Sequence[bool], users: Sequence[str],
                tenants: Sequence[str], event_ids: Sequence[str], ts_ms: Sequence[int],
                input_hashes: Sequence[int | None], payloads: Sequence[int | None],
                bursts: Sequence[bool], before: Sequence[int], answers: Sequence[int | None],
                support: DistinctNgrams | None = None) -> list[Candidate]:
        bucket = self.current
        reference = self.seen < self.config.reference_events
        flagged = [index for index, a in enumerate(anomalous) if a]
        found: list[Candidate] = []
        per_event: list[np.ndarray] = []
        if flagged:
            # One hashing pass for every anomalous event; a stable sort by event gives each event's
            # hashes in the order of its own ngram_texts (hashes do not depend on the batch).
            hashes, owners = ngram_hashes([tokens[index] for index in flagged], self.config.max_n)
            order = np.argsort(owners, kind="stable")
            ends = np.cumsum(np.bincount(owners, minlength=len(flagged)))
            per_event = np.split(hashes[order], ends[:-1])
        if not tokens:
            return found
        # The whole chunk's support is counted first; each anomalous event is then tested on the
        # counts as they were just after it (later events' counts taken back, see test_event).
        grams = support if support is not None else DistinctNgrams(list(tokens), self.config.max_n)
        # Support counts events, not occurrences: one per event and n-gram. The columns are kept for the
        # tests below, which take back what later events of the chunk added.
        columns = bucket.sketch.columns(grams.hashes)
        bucket.sketch.add(grams.hashes, columns=columns)
        bucket.events += len(tokens)
        bucket.anomalous += len(flagged)
        # A burst stands for itself and for the answer's occurrences before it (the null's rate).
        weights = [int(b) + n for b, n in zip(bursts, before, strict=True)]
        bucket.bursts += sum(weights)
        bursts_after = sum(weights)
        bucket.start_ms = ts_ms[0] if bucket.start_ms < 0 else bucket.start_ms
        bucket.end_ms = ts_ms[-1]
        self.seen += len(tokens)
        unflagged = 0  # chunk events before this one, not flagged, whose answers are kept (in order)
        named = set(self._alerted)
        for rank, (index, own) in enumerate(zip(flagged, per_event, strict=True)):
            if not reference:
                self._keep_unflagged(range(unflagged, index), tokens, users, tenants, event_ids, input_hashes,
                                     answers)
                unflagged = index + 1
                answer = answers[index]
                if bursts[index] and before[index] and answer is not None:
                    # The answer's first burst: its earlier unflagged occurrences were the same payload.
                    bucket.anomalous += self._credit(bucket, answer, payloads[index], named)
            items = own.tolist()
            # An event that carries a trigger already named is explained by it: it stays in the counts (its
            # support, the anomalous share), but its n-grams gain no anomalous hits. Otherwise every word that
            # the trigger's prompts happen to hold ("generate") would inherit the trigger's payload bursts.
            explained = not named.isdisjoint(items)
            if not explained:
                texts = ngram_texts(tokens[index], self.config.max_n)
                bucket.heavy.add_event(items, texts, user=users[index], tenant=tenants[index],
                                       event_id=event_ids[index], input_hash=input_hashes[index],
                                       payload=payloads[index], burst=bursts[index])
                bucket.heavy.prune()
            bursts_after -= weights[index]
            payload = payloads[index]
            if bursts[index] and payload is not None:
                self._bursting[payload] = None  # its answer: earlier anomalous events with it count
                self._bursting.move_to_end(payload)
                if len(self._bursting) > BURSTING_CAP:
                    self._bursting.popitem(last=False)
            if not reference and not explained:
                later = Later(columns, grams.after(index), len(tokens) - index - 1, len(flagged) - rank - 1,
                              bursts_after)
                new = test_event(self, items, texts, event_id=event_ids[index], ts_ms=ts_ms[index], later=later)
                named.update(candidate.ngram_hash for candidate in new)
                found.extend(new)
        if not reference:
            self._keep_unflagged(range(unflagged, len(tokens)), tokens, users, tenants, event_ids, input_hashes,
                                 answers)
        return found

    def _keep_unflagged(self, positions: range, tokens: Sequence[list[str]], users: Sequence[str],
                        tenants: Sequence[str], event_ids: Sequence[str], input_hashes: Sequence[int | None],
                        answers: Sequence[int | None]) -> None:
        """Keep the chunk's events at ``positions`` (none of them flagged) whose answer can burst."""
        self._unflagged.add_many(positions, answers, tokens, users, tenants, event_ids, input_hashes)

    def _credit(self, bucket: _Bucket, answer: int, payload: int | None, named: set[int]) -> int:
        """Count ``answer``'s kept unflagged events as anomalous bursts in ``bucket``; how many there were.

        Their support was counted when they came; only their being anomalous was not known then. The
        burst test's null already counted them (a first burst stands for the occurrences before it).
        One that carries an n-gram in ``named`` (a trigger already named) is counted, but its n-grams gain
        no hits: it is explained.
        """
        earlier = self._unflagged.take(answer)
        for event in earlier:
            tokens = event.tokens()
            items = ngram_hashes([tokens], self.config.max_n)[0].tolist()
            if named.isdisjoint(items):
                bucket.heavy.add_event(items, ngram_texts(tokens, self.config.max_n), user=event.user,
                                       tenant=event.tenant, event_id=event.event_id, input_hash=event.input_hash,
                                       payload=payload, burst=True)
        if earlier:
            bucket.heavy.prune()
        return len(earlier)

    def _frozen_reference(self) -> _Bucket:
        """The window as the reference period ends (its last ``window_events`` events), merged into one step.

        Copied once, not counted twice while the reference fills; only the counts of the anomalous
        n-grams are kept (within ``max_ngrams``, the heavy-hitters bound).
        """
        buckets = [*self.closed, self.current]
        heavy = HeavyHitters(self.config.max_ngrams, entity_cap=max(16, self.config.min_entities))
        for bucket in buckets:
            heavy.distinct += bucket.heavy.distinct
            heavy.floor += bucket.heavy.floor
            for item, entry in bucket.heavy.entries.items():
                into = heavy.entries.get(item)
                if into is None:
                    into = heavy.entries[item] = Entry(entry.text, entry.kind)
                into.count += entry.count
                into.bursts += entry.bursts
        heavy.prune()
        return _Bucket(buckets[0].sketch.merged([b.sketch for b in buckets[1:]]), heavy,
                       sum(b.events for b in buckets), sum(b.anomalous for b in buckets),
                       sum(b.bursts for b in buckets), buckets[0].start_ms, buckets[-1].end_ms)

    def snapshot(self) -> dict[str, Any]:
        """JSON-ready state."""
        for bucket in self.closed:
            if bucket.encoded is None:
                bucket.encoded = _bucket_state(bucket, compress=True)
        return {"format": FORMAT, "config": asdict(self.config),
                "buckets": [*(b.encoded for b in self.closed), _bucket_state(self.current, compress=False)],
                "alerted": [str(item) for item in self._alerted], "named": [list(n) for n in self._named],
                "seen": self.seen, "reference": self._reference_state(),
                "bursting": [str(h) for h in self._bursting], "unflagged": self._unflagged.snapshot()}

    def _reference_state(self) -> dict[str, Any] | None:
        if self.reference.events == 0:
            return None  # not frozen yet
        if self.reference.encoded is None:
            self.reference.encoded = _bucket_state(self.reference, compress=True)  # it never changes again
        return self.reference.encoded

    @classmethod
    def restore(cls, state: dict[str, Any]) -> MotifMiner:
        if state.get("format") not in (FORMAT, _FORMAT_V2, _FORMAT_V1):
            raise ValueError(f"motif snapshot format must be {FORMAT!r}, {_FORMAT_V2!r} or {_FORMAT_V1!r}; "
                             f"got {state.get('format')!r}")
        miner = cls(MotifConfig(**state["config"]))
        buckets = [_bucket_from(b, miner.config) for b in state["buckets"]]
        for bucket, saved in zip(buckets[:-1], state["buckets"], strict=False):
            bucket.encoded = saved
        miner.closed.extend(buckets[:-1])
        miner.current = buckets[-1]
        miner._alerted.extend(int(item) for item in state["alerted"])
        miner._named.extend((text, kind) for text, kind in state.get("named", []))
        miner.seen = int(state.get("seen", sum(b.events for b in buckets)))
        miner._bursting.update((int(h), None) for h in state.get("bursting", []))
        if state.get("unflagged") is not None:  # a v2 state kept none: credited from here on
            miner._unflagged = UnflaggedAnswers.restore(state["unflagged"])
        if state.get("reference") is not None:
            miner.reference = _bucket_from(state["reference"], miner.config)
            miner.reference.encoded = state["reference"]
        return miner


def _bucket_state(bucket: _Bucket, *, compress: bool) -> dict[str, Any]:
    return {"events": bucket.events, "anomalous": bucket.anomalous, "bursts": bucket.bursts,
            "start_ms": bucket.start_ms, "end_ms": bucket.end_ms, "sketch": bucket.sketch.snapshot(compress=compress),
            "heavy": bucket.heavy.snapshot(compress=compress)}


def _bucket_from(state: dict[str, Any], config: MotifConfig) -> _Bucket:
    return _Bucket(CountMinSketch.restore(state["sketch"]),
                   HeavyHitters.restore(state["heavy"], entity_cap=max(16, config.min_entities)),
                   int(state["events"]), int(state["anomalous"]), int(state.get("bursts", 0)), int(state["start_ms"]),
                   int(state["end_ms"]))
