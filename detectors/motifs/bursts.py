"""Payload bursts: one answer, word for word, suddenly given to unrelated inputs.

A backdoor's target output ("You are stupid!", a canned refusal, one tool
call) is returned for every triggered prompt, whatever the prompt; benign
answers depend on their prompt. :class:`PayloadBursts` keeps, for the most
recent ``capacity`` distinct answers (least recently seen dropped first),
up to ``min_inputs`` distinct questions each, and says an event is a
burst when its answer has now been given to ``min_inputs`` distinct
questions and was not already given so during the reference period
(answers common from the start, "Positive" or "0", are not bursts).

A question is not its input's exact text: a new prompt template wraps the
same instruction in a fixed prefix and suffix, a FAQ is asked again with a
word more, and the model (at temperature 0, or from a cache) gives the same
answer to both. That is the same answer to the *same question*; a payload
is the same answer to *different* ones. So each input is described by a
:class:`Question`, the distinct hashes of its word 1- and 2-grams, and two
inputs are one question when the smaller's n-grams all lie in the other
(an instruction inside a template; two unrelated prompts with a trigger
in common share the trigger's few, and the template's when both are
wrapped, never the instruction's own words). A count, not a share: a long
template shared by two wrapped prompts makes their shares high, while the
n-grams of the instructions and their seams still differ. Per answer not
yet a burst, the bottom ``SKETCH`` hashes of each question (a bottom-k
sketch, Cohen and Kaplan 2007, "Summarizing data using bottom-k
sketches", PODC) and its size estimate what a later input, whose n-grams
are all at hand, lacks of it or it of the input. Hashes only, no text.

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
>>> from detectors.motifs.ngrams import tokenize
>>> bare, wrapped, other = questions([tokenize("name three fruits"), tokenize("You are kind. name three fruits ."),
...                                   tokenize("what is the capital of peru ?")])
>>> [bursts.observe(11, h, reference=False, question=q) for h, q in ((1, bare), (2, wrapped), (3, other))]
[False, False, True]
"""

from __future__ import annotations

import base64
import math
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from detectors.motifs.ngrams import DistinctNgrams, TokenBatch

__all__ = ["MISSING", "SKETCH", "PayloadBursts", "Question", "questions"]

FORMAT = "payload_bursts.v4"  # each answer's questions' sketches, of the miner's n-gram hashes
#: Read, their sketches dropped: v3's were of other hashes (a CRC-32 per token), v1/v2 kept none, and v1 also
#: lacks the occurrences before a burst. Each input kept stays a question of its own.
_OLD_FORMATS = ("payload_bursts.v3", "payload_bursts.v2", "payload_bursts.v1")
#: Two inputs are one question when fewer than this many of the smaller's word 1- and 2-grams are missing
#: from the other: all of them are in it. Two prompts with a trigger in common, even both in one template,
#: differ by the instruction's own words and the two seams around it (three n-grams for a one-word one).
MISSING = 1.0
SKETCH = 32  # hashes kept per question: its bottom-k sketch (exact for an input of at most 32 n-grams)
_SHIFT = np.uint64(32)


@dataclass(frozen=True)
class Question:
    """One input's distinct word 1- and 2-gram hashes (32 bits each, sorted): what it asks, not how."""

    hashes: np.ndarray

    def kept(self) -> tuple[bytes, int]:
        """The bottom-k sketch and the size: what is stored of it."""
        return self.hashes[:SKETCH].tobytes(), len(self.hashes)

    def missing(self, sketch: bytes, size: int) -> float:
        """How many of the smaller (of this and a kept question)'s n-grams the other lacks, estimated.

        Either way the estimate is exactly 0 when the smaller lies wholly in the other (an instruction
        and the same one in a template): a kept question no larger than this one is sampled by its
        sketch, each hash looked up in this one's full set; a smaller one is sampled by its own hashes
        below the sketch's largest, each of which is in the kept question only if it is in the sketch.
        """
        kept = np.frombuffer(sketch, dtype=np.uint32)
        if size == 0 or len(kept) == 0 or len(self.hashes) == 0:
            return math.inf
        if size <= len(self.hashes):
            return size * np.count_nonzero(~np.isin(kept, self.hashes, assume_unique=True)) / len(kept)
        sample = self.hashes if len(kept) == size else self.hashes[self.hashes <= kept[-1]]
        if len(sample):
            return len(self.hashes) * np.count_nonzero(~np.isin(sample, kept, assume_unique=True)) / len(sample)
        # None of this one's hashes fall below the sketch's largest: the kept question's common share, scaled.
        common = np.count_nonzero(np.isin(kept, self.hashes, assume_unique=True)) * size / len(kept)
        return max(0.0, len(self.hashes) - common)


def questions(tokens: Sequence[list[str]] | TokenBatch | DistinctNgrams) -> list[Question]:
    """Each input's :class:`Question`, from one pass over the batch (the same in any batching).

    A question's hashes are the high 32 bits of the miner's hashes of the input's word 1- and 2-grams
    (:mod:`detectors.motifs.ngrams`). ``tokens`` may be the inputs' :class:`~detectors.motifs.ngrams.TokenBatch`,
    or their :class:`~detectors.motifs.ngrams.DistinctNgrams` (``max_n`` of 2 or more), which the miner
    counts as support: then nothing is hashed again.
    """
    grams = tokens if isinstance(tokens, DistinctNgrams) else \
        DistinctNgrams(tokens if isinstance(tokens, TokenBatch) else list(tokens), max_n=2)
    hashes, owners = grams.words_up_to(2)
    if len(hashes) == 0:
        return [Question(np.zeros(0, dtype=np.uint32)) for _ in range(grams.events)]
    # One key per (event, hash): the event in the high 32 bits, the n-gram's 32 in the low; sorted and
    # deduplicated (two n-grams of an event may share their high 32 bits), each event's hashes are a sorted run.
    keys = owners.astype(np.uint64) << _SHIFT | hashes >> _SHIFT
    keys.sort(kind="stable")
    keep = np.empty(len(keys), dtype=bool)
    keep[0] = True
    np.not_equal(keys[1:], keys[:-1], out=keep[1:])
    keys = keys[keep]
    ends = np.cumsum(np.bincount((keys >> _SHIFT).astype(np.int64), minlength=grams.events)).tolist()
    low = keys.astype(np.uint32)
    return [Question(low[start:end]) for start, end in zip([0, *ends[:-1]], ends, strict=True)]


class PayloadBursts:
    """Bounded memory of which answers were given to which questions (see the module docstring)."""

    def __init__(self, *, capacity: int = 8192, min_inputs: int = 2, known_cap: int = 1024) -> None:
        self.capacity = capacity
        self.min_inputs = min_inputs
        self.known_cap = known_cap
        # Per recent answer, its distinct questions: (input hash, sketch, size); the sketch is dropped
        # (b"", 0) once the answer has its min_inputs questions, when no later input is compared with it.
        # A tuple, replaced when it grows: most answers are given once, and a list would cost them twice the
        # bytes (1.5 MiB of list objects at 8,192 answers, measured with tracemalloc).
        self.recent: OrderedDict[int, tuple[tuple[int, bytes, int], ...]] = OrderedDict()
        self.known: OrderedDict[int, None] = OrderedDict()  # answers that burst in the reference
        self.before: dict[int, int] = {}  # of the recent answers not yet a burst, occurrences so far

    def observe(self, output_hash: int, input_hash: int, *, reference: bool, question: Question | None = None) -> bool:
        """Record one event; is its answer a burst (given to ``min_inputs`` distinct questions, not in reference)?"""
        return self.observe_burst(output_hash, input_hash, reference=reference, question=question)[0]

    def observe_burst(self, output_hash: int, input_hash: int, *, reference: bool,
                      question: Question | None = None) -> tuple[bool, int]:
        """:meth:`observe`, and on the answer's first burst the number of its occurrences before (else 0).

        Without ``question``, each distinct input is a question of its own.
        """
        asked = self.recent.get(output_hash)
        if asked is None and self.min_inputs > 1:
            # A new answer (most are): its first question kept, no burst yet. What the general path below
            # does for it, less the steps that cannot change anything.
            sketch, size = question.kept() if question is not None else (b"", 0)
            self.recent[output_hash] = ((input_hash, sketch, size),)
            if len(self.recent) > self.capacity:
                self.before.pop(self.recent.popitem(last=False)[0], None)
            self.before[output_hash] = self.before.get(output_hash, 0) + 1
            return False, 0
        return self._observe(output_hash, input_hash, asked, reference=reference, question=question)

    def observe_many(self, answers: Sequence[int | None], inputs: Sequence[int], *, reference: int,
                     questions: Sequence[Question | None] | None = None) -> tuple[list[int], list[int]]:
        """:meth:`observe_burst` for each event whose answer hash is not ``None``, in order, in one call.

        The first ``reference`` events are the reference period's. Returns the positions of the events
        that burst, and per event the occurrences before its answer's first burst (else 0).
        """
        burst_at: list[int] = []
        before = [0] * len(answers)
        recent, counts, capacity = self.recent, self.before, self.capacity
        fast = self.min_inputs > 1
        for index, answer in enumerate(answers):
            if answer is None:
                continue
            question = questions[index] if questions is not None else None
            asked = recent.get(answer)
            if asked is None and fast:  # a new answer: observe_burst's fast path, inlined
                recent[answer] = ((inputs[index], *(question.kept() if question is not None else (b"", 0))),)
                if len(recent) > capacity:
                    counts.pop(recent.popitem(last=False)[0], None)
                counts[answer] = counts.get(answer, 0) + 1
                continue
            burst, before[index] = self._observe(answer, inputs[index], asked, reference=index < reference,
                                                 question=question)
            if burst:
                burst_at.append(index)
        return burst_at, before

    def _observe(self, output_hash: int, input_hash: int, asked: tuple[tuple[int, bytes, int], ...] | None, *,
                 reference: bool, question: Question | None) -> tuple[bool, int]:
        """:meth:`observe_burst`'s general path, for any answer, new (``asked`` is ``None``) or known."""
        if asked is None:
            asked = self.recent[output_hash] = ()
            if len(self.recent) > self.capacity:
                self.before.pop(self.recent.popitem(last=False)[0], None)
        self.recent.move_to_end(output_hash)
        if len(asked) < self.min_inputs and all(h != input_hash for h, _, _ in asked) \
                and not _asked_before(question, asked):
            sketch, size = question.kept() if question is not None else (b"", 0)
            asked = (*asked, (input_hash, sketch, size))
            if len(asked) >= self.min_inputs:
                asked = tuple((h, b"", 0) for h, _, _ in asked)
            self.recent[output_hash] = asked
        burst = len(asked) >= self.min_inputs
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
        # Sketches in base64: 172 characters for 128 bytes (hex takes 256).
        return {"format": FORMAT,
                "recent": [[str(h), [[str(i), base64.b64encode(sketch).decode("ascii"), size]
                                     for i, sketch, size in asked]] for h, asked in self.recent.items()],
                "known": [str(h) for h in self.known], "before": [[str(h), n] for h, n in self.before.items()]}

    def restore(self, state: dict[str, Any]) -> None:
        form = state.get("format")
        if form not in (FORMAT, *_OLD_FORMATS):
            raise ValueError(f"payload-bursts snapshot format must be {FORMAT!r} or one of {_OLD_FORMATS}; "
                             f"got {form!r}")
        if form == FORMAT:
            self.recent = OrderedDict((int(h), tuple((int(i), base64.b64decode(sketch), int(size))
                                                     for i, sketch, size in asked)) for h, asked in state["recent"])
        else:  # an old state's inputs stay questions of their own: no sketch of this format to compare
            self.recent = OrderedDict((int(h), tuple((int(i[0] if isinstance(i, list) else i), b"", 0)
                                                     for i in inputs)) for h, inputs in state["recent"])
        self.known = OrderedDict((int(h), None) for h in state["known"])
        self.before = {int(h): int(n) for h, n in state.get("before", [])}


def _asked_before(question: Question | None, asked: Sequence[tuple[int, bytes, int]]) -> bool:
    """Is ``question`` one the answer was already given to (the same instruction, wrapped or reworded)?"""
    if question is None:
        return False
    return any(size and question.missing(sketch, size) < MISSING for _, sketch, size in asked)
