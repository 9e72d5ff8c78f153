"""Bounded counts of the n-grams of anomalous events, with who sent them.

Frequent-items counting with periodic pruning, after Misra and Gries (1982),
"Finding repeated elements", Sci. Comput. Program. 2(2), and the lossy
counting of Manku and Motwani (2002): at most ``2 * capacity`` entries; when
full, keep the ``capacity`` most counted and remember the largest count
dropped (``floor``). A kept count is a lower bound of the true count, short
by at most ``floor``; an item counted more than ``floor + total / capacity``
times is never dropped. Each entry also keeps a few distinct users, tenants
and example event ids (capped), which is what the k-entities rule needs, and
how many of its events were payload bursts (an answer suddenly given to
unrelated inputs, :mod:`detectors.motifs.bursts`), a rarer and sharper kind
of anomaly than the rest.

Examples
--------
>>> counts = HeavyHitters(capacity=2)
>>> for h in (1, 1, 2, 3, 1, 4, 5):
...     counts.add(h, "g%d" % h, "word", user="u%d" % h, tenant="t", event_id="e")
...     counts.prune()
>>> sorted(counts.entries), counts.entries[1].count, counts.floor
([1], 3, 1)
"""

from __future__ import annotations

import base64
import json
import zlib
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Entry", "HeavyHitters"]

FORMAT = "heavy_hitters.v3"  # rows of 7, 10 (with inputs, user hits, payloads) or 11 columns (and bursts)
_FORMAT_V2 = "heavy_hitters.v2"  # rows of 7 or 10 columns: read with no bursts
_FORMAT_V1 = "heavy_hitters.v1"  # entries as a JSON list, not one JSON text; still read


@dataclass(slots=True)  # slots: tens of thousands live per bucket, created on the hot path
class Entry:
    """One tracked n-gram."""

    text: str
    kind: str
    count: int = 0
    # Tuples of strings or ints, and a dict of str to int, are not tracked by the garbage collector (the
    # first collection that sees a tuple of atoms untracks it); sets and lists always are. An anomalous
    # event makes hundreds of entries: with a set of users, one of tenants and a list of examples each,
    # the full collections that their growth triggered scanned four objects per entry and cost the
    # motif stage about a quarter of its time. Read-only users may pass any collection (a merged entry).
    users: Collection[str] = ()
    tenants: Collection[str] = ()
    examples: Sequence[str] = ()
    # Online evidence (issue 15): distinct whole-input hashes (a trigger rides on unrelated inputs, a hard
    # prompt is one input), anomalous events per user (concentration), output SimHashes (payload consistency).
    inputs: tuple[int, ...] = ()
    # Shared by the entries one event creates (an event's n-grams all start with {user: 1}), so it is
    # replaced, never changed in place: a dict per entry was the largest part of an entry's memory.
    user_hits: Mapping[str, int] = field(default_factory=dict)
    payloads: tuple[int, ...] = ()
    bursts: int = 0  # of ``count``, the events whose answer was a payload burst


class HeavyHitters:
    """The most frequent items of a stream, in bounded space.

    Parameters
    ----------
    capacity
        Entries kept after a prune; memory holds at most twice as many.
    entity_cap
        Distinct users (and tenants) kept per entry.
    example_cap
        Example event ids kept per entry (the first ones seen).
    """

    def __init__(self, capacity: int = 10_000, *, entity_cap: int = 16, example_cap: int = 5) -> None:
        if capacity < 1:
            raise ValueError(f"capacity must be >= 1; got {capacity!r}")
        self.capacity = capacity
        self.entity_cap = entity_cap
        self.example_cap = example_cap
        self.entries: dict[int, Entry] = {}
        self.floor = 0
        self.distinct = 0  # items ever inserted fresh: a bound on how many hypotheses were seen
        # Each entry's snapshot row as JSON text, dropped when the entry changes: a checkpoint
        # re-encodes only the entries that changed since the last one.
        self._encoded: dict[int, str] = {}

    def add(self, item: int, text: str, kind: str, *, user: str, tenant: str, event_id: str,
            input_hash: int | None = None, payload: int | None = None, burst: bool = False) -> None:
        entry = self.entries.get(item)
        if entry is None:
            entry = self.entries[item] = Entry(text, kind)
            self.distinct += 1
        self._encoded.pop(item, None)
        entry.count += 1
        if user and len(entry.users) < self.entity_cap and user not in entry.users:
            entry.users = (*entry.users, user)
        if tenant and len(entry.tenants) < self.entity_cap and tenant not in entry.tenants:
            entry.tenants = (*entry.tenants, tenant)
        if len(entry.examples) < self.example_cap:
            entry.examples = (*entry.examples, event_id)
        entry.bursts += burst
        _evidence(entry, self.entity_cap, user, input_hash, payload)

    def add_event(self, items: Sequence[int], texts: Sequence[tuple[str, str]], *, user: str, tenant: str,
                  event_id: str, input_hash: int | None = None, payload: int | None = None,
                  burst: bool = False) -> None:
        """Count one event's n-grams: each distinct item once, with the ``(text, kind)`` of its first position.

        The same as :meth:`add` for each first occurrence in ``items``, in
        order, with the loop's lookups hoisted and the evidence inlined: an
        anomalous event brings hundreds of n-grams.
        """
        entries, encoded = self.entries, self._encoded
        entity_cap, example_cap = self.entity_cap, self.example_cap
        # The event's values as 1-tuples, built once: a new entry takes them as they are (tuples are
        # immutable, so sharing is safe), an old one appends them.
        users: tuple[str, ...] = (user,) if user and entity_cap > 0 else ()
        tenants: tuple[str, ...] = (tenant,) if tenant and entity_cap > 0 else ()
        examples: tuple[str, ...] = (event_id,) if example_cap > 0 else ()
        inputs: tuple[int, ...] = (input_hash,) if input_hash is not None and entity_cap > 0 else ()
        payloads: tuple[int, ...] = (payload,) if payload is not None else ()
        hits: Mapping[str, int] = {user: 1} if users else {}
        seen: set[int] = set()
        for item, (text, kind) in zip(items, texts, strict=True):
            if item in seen:
                continue
            seen.add(item)
            entry = entries.get(item)
            if entry is None:
                entries[item] = Entry(text, kind, 1, users, tenants, examples, inputs, hits, payloads,
                                      int(burst))
                self.distinct += 1
                encoded.pop(item, None)
                continue
            encoded.pop(item, None)
            entry.count += 1
            if user:
                if len(entry.users) < entity_cap and user not in entry.users:
                    entry.users = (*entry.users, user)
                counted = entry.user_hits
                if user in counted or len(counted) < entity_cap:
                    entry.user_hits = {**counted, user: counted.get(user, 0) + 1}
            if tenant and len(entry.tenants) < entity_cap and tenant not in entry.tenants:
                entry.tenants = (*entry.tenants, tenant)
            if len(entry.examples) < example_cap:
                entry.examples = (*entry.examples, event_id)
            entry.bursts += burst
            if inputs and len(entry.inputs) < entity_cap and input_hash not in entry.inputs:
                entry.inputs += inputs
            if payloads and len(entry.payloads) < PAYLOAD_CAP:
                entry.payloads += payloads

    def prune(self) -> None:
        """Drop to ``capacity`` entries if over twice that; call between events."""
        if len(self.entries) <= 2 * self.capacity:
            return
        ranked = sorted(self.entries.items(), key=lambda kv: (-kv[1].count, kv[0]))
        threshold = ranked[self.capacity][1].count
        self.floor = max(self.floor, threshold)
        self.entries = {item: entry for item, entry in ranked[:self.capacity] if entry.count > threshold}
        self._encoded = {item: text for item, text in self._encoded.items() if item in self.entries}

    def snapshot(self, *, compress: bool = False) -> dict[str, Any]:
        """JSON-ready state.

        ``entries`` is one JSON text of ``[item, text, kind, count, users,
        tenants, examples]`` rows (rows are re-encoded only when they change),
        deflated and base64-encoded if ``compress``: a bucket that no longer
        changes is encoded once and then costs a checkpoint only a copy.
        """
        encoded = self._encoded
        encode = json.JSONEncoder(ensure_ascii=False).encode  # one encoder: json.dumps(..., kw) builds one per call
        for item, e in self.entries.items():
            if item not in encoded:
                row = [str(item), e.text, e.kind, e.count, sorted(e.users), sorted(e.tenants), e.examples]
                if e.inputs or e.user_hits or e.payloads or e.bursts:
                    row += [[str(h) for h in e.inputs], sorted(e.user_hits.items()),
                            [str(h) for h in e.payloads]]
                if e.bursts:
                    row.append(e.bursts)
                encoded[item] = encode(row)
        text = "[" + ",".join(encoded[item] for item in self.entries) + "]"
        if compress:
            text = base64.b64encode(zlib.compress(text.encode("utf-8"), 1)).decode("ascii")
        return {"format": FORMAT, "capacity": self.capacity, "floor": self.floor, "distinct": self.distinct,
                "compression": "zlib" if compress else "none", "entries": text}

    @classmethod
    def restore(cls, state: dict[str, Any], *, entity_cap: int = 16, example_cap: int = 5) -> HeavyHitters:
        """Load a :meth:`snapshot` (``heavy_hitters.v3``; ``v2`` without bursts, ``v1`` with entries as a list)."""
        version = state.get("format")
        if version not in (FORMAT, _FORMAT_V2, _FORMAT_V1):
            raise ValueError(f"heavy-hitters snapshot format must be {FORMAT!r}, {_FORMAT_V2!r} or {_FORMAT_V1!r}; "
                             f"got {version!r}")
        out = cls(int(state["capacity"]), entity_cap=entity_cap, example_cap=example_cap)
        out.floor = int(state["floor"])
        out.distinct = int(state["distinct"])
        if version == _FORMAT_V1:
            rows = state["entries"]
        elif state.get("compression") == "zlib":
            rows = json.loads(zlib.decompress(base64.b64decode(state["entries"])).decode("utf-8"))
        elif state.get("compression") == "none":
            rows = json.loads(state["entries"])
        else:
            raise ValueError("heavy-hitters snapshot compression must be zlib or none; "
                             f"got {state.get('compression')!r}")
        for item, text, kind, count, users, tenants, examples, *more in rows:
            entry = out.entries[int(item)] = Entry(text, kind, int(count), tuple(users), tuple(tenants),
                                                   tuple(examples))
            if more:
                entry.inputs = tuple(int(h) for h in more[0])
                entry.user_hits = {user: int(n) for user, n in more[1]}
                entry.payloads = tuple(int(h) for h in more[2])
                entry.bursts = int(more[3]) if len(more) > 3 else 0
            else:  # a row from before the per-user counts: each listed user sent at least one
                entry.user_hits = dict.fromkeys(entry.users, 1)
        return out


PAYLOAD_CAP = 8


def _evidence(entry: Entry, cap: int, user: str, input_hash: int | None, payload: int | None) -> None:
    if input_hash is not None and len(entry.inputs) < cap and input_hash not in entry.inputs:
        entry.inputs += (input_hash,)
    if user and (user in entry.user_hits or len(entry.user_hits) < cap):
        entry.user_hits = {**entry.user_hits, user: entry.user_hits.get(user, 0) + 1}
    if payload is not None and len(entry.payloads) < PAYLOAD_CAP:
        entry.payloads += (payload,)
