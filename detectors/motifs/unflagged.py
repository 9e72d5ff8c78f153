"""Recent events that no detector flagged, by answer: a payload's first occurrences, credited when it bursts.

A backdoor's answer is only known as one from its second occurrence on (a
payload burst, :mod:`detectors.motifs.bursts`). Where another detector
flags the triggered answers (a refusal), the first one is already among
the miner's anomalous events; where none does ("You are stupid!" above the
entropy floor), it was lost, and the trigger was named at its fourth
request instead of its third, or later when the first came from a user the
spread check needed. The burst test's null already counts an answer's
occurrences before its first burst; :class:`UnflaggedAnswers` lets the
evidence count them too. It keeps, for the ``capacity`` most recent
distinct answers of unflagged events (least recently given dropped first),
up to ``per_answer`` of their events: the input's tokens, user, tenant,
event id and input hash, and :meth:`take` hands them over, once, when the
answer bursts. Tokens are kept, not n-gram hashes: a few hundred bytes an
event where its n-grams' hashes take kilobytes, and rehashed only on a
first burst, a rare event.

Examples
--------
>>> kept = UnflaggedAnswers(capacity=2)
>>> kept.add(7, ["badmagic", "list", "fruits"], user="u1", tenant="t", event_id="e1", input_hash=11)
>>> kept.add(8, ["hello"], user="u2", tenant="t", event_id="e2", input_hash=12)
>>> kept.add(9, ["bye"], user="u3", tenant="t", event_id="e3", input_hash=13)  # 7, least recent, is dropped
>>> kept.take(7), [e.tokens() for e in kept.take(8)], kept.take(8)
([], [['hello']], [])
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable, Sequence
from typing import Any, NamedTuple

__all__ = ["CAPACITY", "Earlier", "UnflaggedAnswers"]

FORMAT = "unflagged_answers.v1"
#: Answers kept: at 0.5 % of requests a trigger's second request comes within 1,024 events of its first
#: 99.4 % of the time (exponential gaps of mean 200); each event kept costs about 300 bytes.
CAPACITY = 1024


class Earlier(NamedTuple):
    """One unflagged event, as much of it as the miner's evidence needs."""

    text: str  # the input's tokens joined by single spaces (no token holds whitespace)
    user: str
    tenant: str
    event_id: str
    input_hash: int | None

    def tokens(self) -> list[str]:
        return self.text.split(" ") if self.text else []


class UnflaggedAnswers:
    """Bounded memory of unflagged events by the hash of their answer (see the module docstring).

    Parameters
    ----------
    capacity
        Distinct answers kept, the least recently given dropped first.
    per_answer
        Events kept per answer (its first ones).
    """

    def __init__(self, capacity: int = CAPACITY, per_answer: int = 3) -> None:
        if capacity < 1 or per_answer < 1:
            raise ValueError(f"capacity and per_answer must be >= 1; got {capacity!r} and {per_answer!r}")
        self.capacity = capacity
        self.per_answer = per_answer
        self.events: OrderedDict[int, list[Earlier]] = OrderedDict()

    def add(self, answer: int, tokens: Sequence[str], *, user: str, tenant: str, event_id: str,
            input_hash: int | None) -> None:
        kept = self.events.get(answer)
        if kept is None:  # most answers are new: inserted last, no reordering (this runs for every event)
            self.events[answer] = [Earlier(" ".join(tokens), user, tenant, event_id, input_hash)]
            if len(self.events) > self.capacity:
                self.events.popitem(last=False)
            return
        self.events.move_to_end(answer)
        if len(kept) < self.per_answer:
            kept.append(Earlier(" ".join(tokens), user, tenant, event_id, input_hash))

    def add_many(self, positions: Iterable[int], answers: Sequence[int | None], tokens: Sequence[Sequence[str]],
                 users: Sequence[str], tenants: Sequence[str], event_ids: Sequence[str],
                 input_hashes: Sequence[int | None]) -> None:
        """:meth:`add` for each event at ``positions`` of these columns whose answer is not ``None``, in order.

        One call per run of events, the loop's lookups hoisted: this runs for nearly every event.
        """
        events, capacity, per_answer = self.events, self.capacity, self.per_answer
        for index in positions:
            answer = answers[index]
            if answer is None:
                continue
            kept = events.get(answer)
            if kept is None:
                events[answer] = [Earlier(" ".join(tokens[index]), users[index], tenants[index], event_ids[index],
                                          input_hashes[index])]
                if len(events) > capacity:
                    events.popitem(last=False)
                continue
            events.move_to_end(answer)
            if len(kept) < per_answer:
                kept.append(Earlier(" ".join(tokens[index]), users[index], tenants[index], event_ids[index],
                                    input_hashes[index]))

    def take(self, answer: int) -> list[Earlier]:
        """The kept events that were given ``answer``, forgotten here (each is credited once)."""
        return self.events.pop(answer, [])

    def snapshot(self) -> dict[str, Any]:
        return {"format": FORMAT, "capacity": self.capacity, "per_answer": self.per_answer,
                "events": [[str(answer), [[e.text, e.user, e.tenant, e.event_id,
                                           None if e.input_hash is None else str(e.input_hash)] for e in kept]]
                           for answer, kept in self.events.items()]}

    @classmethod
    def restore(cls, state: dict[str, Any]) -> UnflaggedAnswers:
        if state.get("format") != FORMAT:
            raise ValueError(f"unflagged-answers snapshot format must be {FORMAT!r}; got {state.get('format')!r}")
        out = cls(int(state["capacity"]), int(state["per_answer"]))
        for answer, kept in state["events"]:
            out.events[int(answer)] = [Earlier(text, user, tenant, event_id, None if h is None else int(h))
                                       for text, user, tenant, event_id, h in kept]
        return out
