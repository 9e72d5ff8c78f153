"""Payload bursts: one answer, word for word, suddenly given to unrelated inputs.

A backdoor's target output ("You are stupid!", a canned refusal, one tool
call) is returned for every triggered prompt, whatever the prompt; benign
answers depend on their prompt. :class:`PayloadBursts` keeps, for the most
recent ``capacity`` distinct answers (least recently seen dropped first),
up to ``min_inputs`` distinct input hashes each, and says an event is a
burst when its answer has now been given to ``min_inputs`` distinct inputs
and was not already given so during the reference period (answers common
from the start, "Positive" or "0", are not bursts). Hashes only, no text.

An answer's occurrences before it burst were its first ones: the backdoor's
first triggered answers, flagged only once the same answer recurs.
:meth:`PayloadBursts.observe_burst` also says, on an answer's first burst,
how many occurrences came before it, so the evidence can count them.

Examples
--------
>>> bursts = PayloadBursts(min_inputs=2)
>>> [bursts.observe(7, i, reference=False) for i in (1, 1, 2, 3)]
[False, False, True, True]
>>> bursts.observe(9, 1, reference=True), bursts.observe(9, 2, reference=True), bursts.observe(9, 3, reference=False)
(False, False, False)
>>> [bursts.observe_burst(5, i, reference=False) for i in (1, 1, 2, 3)]
[(False, 0), (False, 0), (True, 2), (True, 0)]
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

__all__ = ["PayloadBursts"]

FORMAT = "payload_bursts.v2"  # v2 adds the occurrences before a burst; a v1 state is read without them
_FORMAT_V1 = "payload_bursts.v1"


class PayloadBursts:
    """Bounded memory of which answers were given to which inputs (see the module docstring)."""

    def __init__(self, *, capacity: int = 8192, min_inputs: int = 2, known_cap: int = 1024) -> None:
        self.capacity = capacity
        self.min_inputs = min_inputs
        self.known_cap = known_cap
        self.recent: OrderedDict[int, list[int]] = OrderedDict()
        self.known: OrderedDict[int, None] = OrderedDict()  # answers that burst in the reference
        self.before: dict[int, int] = {}  # of the recent answers not yet a burst, occurrences so far

    def observe(self, output_hash: int, input_hash: int, *, reference: bool) -> bool:
        """Record one event; is its answer a burst (given to ``min_inputs`` distinct inputs, not in reference)?"""
        return self.observe_burst(output_hash, input_hash, reference=reference)[0]

    def observe_burst(self, output_hash: int, input_hash: int, *, reference: bool) -> tuple[bool, int]:
        """:meth:`observe`, and on the answer's first burst the number of its occurrences before (else 0)."""
        inputs = self.recent.get(output_hash)
        if inputs is None:
            inputs = self.recent[output_hash] = []
            if len(self.recent) > self.capacity:
                self.before.pop(self.recent.popitem(last=False)[0], None)
        self.recent.move_to_end(output_hash)
        if input_hash not in inputs and len(inputs) < self.min_inputs:
            inputs.append(input_hash)
        burst = len(inputs) >= self.min_inputs
        if burst and reference and output_hash not in self.known:
            self.known[output_hash] = None
            if len(self.known) > self.known_cap:
                self.known.popitem(last=False)
        flagged = burst and not reference and output_hash not in self.known
        if not flagged:
            self.before[output_hash] = self.before.get(output_hash, 0) + 1
            return False, 0
        return True, self.before.pop(output_hash, 0)

    def snapshot(self) -> dict[str, Any]:
        return {"format": FORMAT, "recent": [[str(h), [str(i) for i in inputs]] for h, inputs in self.recent.items()],
                "known": [str(h) for h in self.known], "before": [[str(h), n] for h, n in self.before.items()]}

    def restore(self, state: dict[str, Any]) -> None:
        if state.get("format") not in (FORMAT, _FORMAT_V1):
            raise ValueError(f"payload-bursts snapshot format must be {FORMAT!r} or {_FORMAT_V1!r}; "
                             f"got {state.get('format')!r}")
        self.recent = OrderedDict((int(h), [int(i) for i in inputs]) for h, inputs in state["recent"])
        self.known = OrderedDict((int(h), None) for h in state["known"])
        self.before = {int(h): int(n) for h, n in state.get("before", [])}
