"""The motif miner's hot paths, made faster, against the plain reference implementations they replaced.

Each fast function must give the same result, bit for bit, as the straightforward code it
replaced (kept here as the reference), on random inputs: the miner's candidates depend on them.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field

import hypothesis.strategies as st
import numpy as np
import pytest
from hypothesis import given, settings

from detectors.motifs.bursts import PayloadBursts, Question, questions
from detectors.motifs.count_min import CountMinSketch
from detectors.motifs.heavy_hitters import PAYLOAD_CAP, HeavyHitters
from detectors.motifs.miner import MotifConfig, MotifMiner
from detectors.motifs.ngrams import (
    MAX_N,
    MAX_TOKENS,
    DistinctNgrams,
    TokenBatch,
    _char_grams,
    _groups,
    distinct_ngram_hashes_by_event,
    is_odd,
    ngram_hashes,
    ngram_texts,
    tokenize,
)
from detectors.motifs.unflagged import UnflaggedAnswers


@dataclass
class _ReferenceEntry:
    text: str
    kind: str
    count: int = 0
    users: set[str] = field(default_factory=set)
    tenants: set[str] = field(default_factory=set)
    examples: list[str] = field(default_factory=list)
    inputs: tuple[int, ...] = ()
    user_hits: dict[str, int] = field(default_factory=dict)
    payloads: tuple[int, ...] = ()
    bursts: int = 0


def _reference_add(entries: dict[int, _ReferenceEntry], item: int, text: str, kind: str, *, user: str, tenant: str,
                   event_id: str, input_hash: int | None, payload: int | None, burst: bool, entity_cap: int,
                   example_cap: int) -> bool:
    """The heavy hitters' add as it was written with sets and lists; True when the entry is new."""
    entry = entries.get(item)
    new = entry is None
    if entry is None:
        entry = entries[item] = _ReferenceEntry(text, kind)
    entry.count += 1
    if user and len(entry.users) < entity_cap:
        entry.users.add(user)
    if tenant and len(entry.tenants) < entity_cap:
        entry.tenants.add(tenant)
    if len(entry.examples) < example_cap:
        entry.examples.append(event_id)
    entry.bursts += burst
    if input_hash is not None and len(entry.inputs) < entity_cap and input_hash not in entry.inputs:
        entry.inputs += (input_hash,)
    if user and (user in entry.user_hits or len(entry.user_hits) < entity_cap):
        entry.user_hits[user] = entry.user_hits.get(user, 0) + 1
    if payload is not None and len(entry.payloads) < PAYLOAD_CAP:
        entry.payloads += (payload,)
    return new


_events = st.lists(st.tuples(
    st.lists(st.integers(0, 12), max_size=12),  # the event's n-gram items, with repeats
    st.sampled_from(["", "u1", "u2", "u3", "u4"]), st.sampled_from(["", "t1", "t2", "t3"]),
    st.one_of(st.none(), st.integers(0, 5)), st.one_of(st.none(), st.integers(0, 3)), st.booleans()),
    max_size=30)


@settings(max_examples=200, deadline=None)
@given(_events, st.integers(0, 4), st.integers(0, 3))
def test_add_event_matches_the_set_and_list_reference(events: list, entity_cap: int, example_cap: int) -> None:
    fast = HeavyHitters(capacity=1000, entity_cap=entity_cap, example_cap=example_cap)
    reference: dict[int, _ReferenceEntry] = {}
    distinct = 0
    for index, (items, user, tenant, input_hash, payload, burst) in enumerate(events):
        texts = [(f"g{item}", "word") for item in items]
        fast.add_event(items, texts, user=user, tenant=tenant, event_id=f"e{index}", input_hash=input_hash,
                       payload=payload, burst=burst)
        seen: set[int] = set()
        for item, (text, kind) in zip(items, texts, strict=True):
            if item not in seen:
                seen.add(item)
                distinct += _reference_add(reference, item, text, kind, user=user, tenant=tenant,
                                           event_id=f"e{index}", input_hash=input_hash, payload=payload,
                                           burst=burst, entity_cap=entity_cap, example_cap=example_cap)
    assert list(fast.entries) == list(reference) and fast.distinct == distinct
    for item, want in reference.items():
        got = fast.entries[item]
        assert (got.text, got.kind, got.count, set(got.users), set(got.tenants), list(got.examples), got.inputs,
                got.user_hits, got.payloads, got.bursts) == \
            (want.text, want.kind, want.count, want.users, want.tenants, want.examples, want.inputs,
             want.user_hits, want.payloads, want.bursts)
        assert type(got.bursts) is int
    # A snapshot round-trip keeps every entry (users and tenants are stored sorted, as before).
    again = HeavyHitters.restore(fast.snapshot(), entity_cap=entity_cap, example_cap=example_cap)
    assert again.snapshot() == fast.snapshot()


_TOKEN = re.compile(r"\w+|[^\w\s]+")
_INVISIBLE = dict.fromkeys(map(ord, "\x00\u00ad\u180e\u200b\u200c\u200d\u200e\u200f\u2060\u2061\u2062\u2063\ufeff"))


def _reference_tokenize(text: str) -> list[str]:
    """The tokeniser's definition: NFKC, casefold, invisible characters dropped, words and punctuation runs."""
    return _TOKEN.findall(unicodedata.normalize("NFKC", text).casefold().translate(_INVISIBLE))[:MAX_TOKENS]


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.text(alphabet=st.characters(max_codepoint=127)),
                 st.text(alphabet=st.sampled_from("ab Z9_-.!?\t\n\x0b\x0c\x1c\x00'é\u200bＡ"))))
def test_tokenize_matches_its_definition(text: str) -> None:
    assert tokenize(text) == _reference_tokenize(text)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(0, 40), max_size=200), st.sampled_from([1, 1 << 20, 1 << 57]))
def test_groups_are_numpy_unique_without_the_values(values: list[int], scale: int) -> None:
    # Small keys are packed with positions; huge and negative ones fall back to numpy.unique.
    key = np.array(values, dtype=np.int64) * scale - (scale == 1 and 7 in values)
    if not len(key):
        return
    want = np.unique(key, return_index=True, return_inverse=True, return_counts=True)[1:]
    for got, expected in zip(_groups(key), want, strict=True):
        assert got.dtype == expected.dtype and np.array_equal(got, expected)


def _reference_estimate_without(sketch: CountMinSketch, items: np.ndarray, later: np.ndarray) -> np.ndarray:
    """estimate_without as first written: the later items matched to the wanted counters with isin and unique."""
    columns, later_columns = sketch.columns(items), sketch.columns(later)
    rows = []
    for row in range(sketch.depth):
        wanted = columns[row]
        taken = later_columns[row][np.isin(later_columns[row], wanted)]
        values, counts = np.unique(taken, return_counts=True)
        at = np.minimum(np.searchsorted(values, wanted), max(len(values) - 1, 0))
        added = np.where((len(values) > 0) & (values[at] == wanted) if len(values) else False,
                         counts[at] if len(values) else 0, 0)
        rows.append(sketch.table[row, wanted] - added)
    return np.min(np.array(rows), axis=0)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(0, 2**64 - 1), max_size=60), st.lists(st.integers(0, 40), max_size=60),
       st.lists(st.integers(0, 40), min_size=1, max_size=20), st.sampled_from([2, 16, 1024]), st.integers(1, 4))
def test_estimate_without_matches_the_isin_reference(earlier: list[int], later: list[int], wanted: list[int],
                                                     width: int, depth: int) -> None:
    sketch = CountMinSketch(width=width, depth=depth)
    added = np.array(later, dtype=np.uint64) * np.uint64(0x9E3779B97F4A7C15 % 2**61)
    sketch.add(np.array(earlier, dtype=np.uint64))
    sketch.add(added)
    items = np.array(wanted, dtype=np.uint64) * np.uint64(0x9E3779B97F4A7C15 % 2**61)
    got = sketch.estimate_without(items, added)
    assert np.array_equal(got, _reference_estimate_without(sketch, items, added))
    assert got.dtype == _reference_estimate_without(sketch, items, added).dtype


@settings(max_examples=100, deadline=None)
@given(st.lists(st.tuples(st.lists(st.integers(0, 2**64 - 1), max_size=40), st.integers(0, 40_000)), max_size=4),
       st.sampled_from([2, 16, 1024]), st.integers(1, 4))
def test_add_counts_each_occurrence_in_every_row(batches: list[tuple[list[int], int]], width: int, depth: int) -> None:
    # Each batch: some items, and one item repeated (tens of thousands of times: the 16-bit counters widen).
    sketch = CountMinSketch(width=width, depth=depth)
    expected = np.zeros((depth, width), dtype=np.int64)
    for items, repeats in batches:
        batch = np.array(items + [7] * repeats, dtype=np.uint64)
        sketch.add(batch)
        for row, columns in enumerate(sketch.columns(batch)):
            np.add.at(expected[row], columns, 1)
        assert np.array_equal(sketch.table, expected)
        assert sketch.table.dtype == (np.uint16 if expected.max(initial=0) <= 65_535 else np.int32)


def _reference_questions(tokens: list[list[str]]) -> list[np.ndarray]:
    """questions from their definition: per input, the distinct high 32 bits of its word 1- and 2-gram hashes."""
    out = []
    for words in tokens:
        hashes, _ = ngram_hashes([words], max_n=2)
        word_grams = hashes[:len(words) + max(len(words) - 1, 0)]  # the char grams come after the word n-grams
        out.append(np.unique(word_grams >> np.uint64(32)).astype(np.uint32))
    return out


@settings(max_examples=200, deadline=None)
@given(st.lists(st.text(max_size=60), max_size=12))
def test_questions_match_the_joined_reference(texts: list[str]) -> None:
    tokens = [tokenize(text) for text in texts]
    expected = _reference_questions(tokens)
    for got in (questions(tokens), questions(TokenBatch(tokens)), questions(DistinctNgrams(tokens, max_n=2)),
                questions(DistinctNgrams(tokens))):
        assert len(got) == len(tokens)
        for question, want in zip(got, expected, strict=True):
            assert question.hashes.dtype == want.dtype and np.array_equal(question.hashes, want)


_token_lists = st.lists(st.lists(st.sampled_from(["a", "b", "zorblat42x", "année", "x" * 17, "2024", "a1b2c3"]),
                                 max_size=9), max_size=10)


@settings(max_examples=200, deadline=None)
@given(_token_lists, st.data())
def test_a_token_batch_part_counts_what_a_batch_of_the_part_counts(tokens: list[list[str]],
                                                                  data: st.DataObject) -> None:
    # The stage builds one batch and hands its parts on (the miner's chunks, each input's first tokens): each
    # part must give the n-grams, in the same order, that a batch built from the part's own tokens gives.
    start = data.draw(st.integers(0, len(tokens)))
    end = data.draw(st.integers(start, len(tokens)))
    keep = data.draw(st.integers(0, 10))
    whole = TokenBatch(tokens)
    first = [t[:keep] for t in tokens]
    for part, own in ((whole.select(start, end), tokens[start:end]), (whole.truncated(keep), first),
                      (whole.truncated(keep).select(start, end), first[start:end])):
        got, expected = distinct_ngram_hashes_by_event(part), distinct_ngram_hashes_by_event(own)
        assert part.events == len(own) and part.size == sum(map(len, own))
        assert got[0].tolist() == expected[0].tolist() and got[1].tolist() == expected[1].tolist()


@settings(max_examples=200, deadline=None)
@given(_token_lists, st.integers(1, MAX_N), st.data())
def test_distinct_ngrams_of_a_run_of_events_are_those_of_a_batch_of_the_run(tokens: list[list[str]], max_n: int,
                                                                          data: st.DataObject) -> None:
    # The miner's chunks are runs of the stage's batch, and its tests take back the events after one.
    start = data.draw(st.integers(0, len(tokens)))
    end = data.draw(st.integers(start, len(tokens)))
    grams = DistinctNgrams(tokens, max_n)
    assert (grams.hashes.tolist(), grams.owners.tolist()) == \
        tuple(a.tolist() for a in distinct_ngram_hashes_by_event(tokens, max_n))
    part, own = grams.select(start, end), DistinctNgrams(tokens[start:end], max_n)
    assert (part.events, part.tokens) == (own.events, own.tokens) == (end - start, sum(map(len, tokens[start:end])))
    assert part.hashes.tolist() == own.hashes.tolist() and part.owners.tolist() == own.owners.tolist()
    for index in range(-1, len(tokens) + 1):
        positions = [p for lo, hi in grams.after(index) for p in range(lo, hi)]
        assert positions == np.flatnonzero(grams.owners > index).tolist()


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(0, 40), max_size=60), st.lists(st.integers(0, 60), min_size=1, max_size=20),
       st.sampled_from([2, 16, 1024]), st.integers(1, 4), st.integers(0, 60))
def test_estimate_without_later_columns_is_estimate_without_their_items(items: list[int], wanted: list[int],
                                                                         width: int, depth: int, cut: int) -> None:
    # The miner hands over the columns the add computed, in pieces (one per n-gram block), not the hashes.
    sketch = CountMinSketch(width=width, depth=depth)
    added = np.array(items, dtype=np.uint64) * np.uint64(0x9E3779B97F4A7C15 % 2**61)
    columns = sketch.columns(added)
    sketch.add(added, columns=columns)
    keys = np.array(wanted, dtype=np.uint64) * np.uint64(0x9E3779B97F4A7C15 % 2**61)
    later = added[cut:]
    got = sketch.estimate_without(keys, later_columns=[columns[:, cut:cut + 7], columns[:, cut + 7:]])
    assert np.array_equal(got, sketch.estimate_without(keys, later))
    assert np.array_equal(got, _reference_estimate_without(sketch, keys, later))
    assert np.array_equal(sketch.estimate_without(keys), sketch.estimate(keys))
    with pytest.raises(ValueError, match="columns must have shape"):
        sketch.add(added, columns=columns[:, :-1] if len(added) else np.zeros((depth + 1, 0), dtype=np.int64))


@settings(max_examples=200, deadline=None)
@given(st.lists(st.sampled_from(["a", "b", "zorblat42x", "année", "x" * 17]), max_size=12), st.integers(0, MAX_N))
def test_ngram_texts_are_the_joined_tokens(tokens: list[str], max_n: int) -> None:
    expected = [(" ".join(tokens[i:i + n]), "word") for n in range(1, max_n + 1) for i in range(len(tokens) - n + 1)]
    expected += [(gram, "char") for token in tokens if is_odd(token) for gram in _char_grams(token)]
    assert ngram_texts(tokens, max_n) == expected


def _reference_observe_burst(bursts: PayloadBursts, output_hash: int, input_hash: int, *, reference: bool,
                             question: Question | None) -> tuple[bool, int]:
    """PayloadBursts.observe_burst without its step for new answers: the general path, for every answer."""
    return bursts._observe(output_hash, input_hash, bursts.recent.get(output_hash), reference=reference,
                           question=question)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 6), st.integers(0, 4), st.booleans(), st.integers(0, 3)), max_size=60),
       st.integers(1, 4), st.integers(1, 3), st.integers(1, 3))
def test_observe_burst_matches_its_single_path_reference(events: list[tuple[int, int, bool, int]], capacity: int,
                                                         min_inputs: int, known_cap: int) -> None:
    # Questions from a few token lists: some inside others (one instruction, wrapped), some apart.
    asked = questions([["name", "three", "fruits"], ["you", "are", "kind", "name", "three", "fruits"],
                       ["capital", "of", "peru"], []])
    got = PayloadBursts(capacity=capacity, min_inputs=min_inputs, known_cap=known_cap)
    want = PayloadBursts(capacity=capacity, min_inputs=min_inputs, known_cap=known_cap)
    for answer, source, reference, which in events:
        question = asked[which] if which < 3 else None
        assert got.observe_burst(answer, source, reference=reference, question=question) == \
            _reference_observe_burst(want, answer, source, reference=reference, question=question)
        assert list(got.recent.items()) == list(want.recent.items())
        assert got.before == want.before and list(got.known) == list(want.known)


def test_a_token_batch_that_is_not_the_events_tokens_is_refused() -> None:
    batch = TokenBatch([["a", "b"], ["c"]])
    with pytest.raises(ValueError, match=r"within \[0, 2\]; got 1 to 3"):
        batch.select(1, 3)
    miner = MotifMiner(MotifConfig(window_events=400, buckets=1, sketch_width=1024, reference_events=0))
    for wrong, got in ((DistinctNgrams(batch), "2 events, 3 tokens and n=6"),
                       (DistinctNgrams([["a"], ["b"]], max_n=2), "2 events, 2 tokens and n=2")):
        with pytest.raises(ValueError, match=f"must hold the 2 events' 2 tokens' n-grams up to n=6; got {got}"):
            miner.update([["a"], ["b"]], [False, False], users=["u", "v"], tenants=["", ""], event_ids=["1", "2"],
                         ts_ms=[1, 2], support=wrong)
    assert miner.seen == 0  # refused before anything was counted


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.one_of(st.none(), st.integers(0, 5)), st.lists(st.sampled_from(["a", "b", "c"]),
                                                                             max_size=3)), max_size=40),
       st.integers(1, 4), st.integers(1, 3), st.data())
def test_unflagged_add_many_is_add_for_each_event(events: list[tuple[int | None, list[str]]], capacity: int,
                                                  per_answer: int, data: st.DataObject) -> None:
    answers = [answer for answer, _ in events]
    tokens = [words for _, words in events]
    users, tenants = [f"u{i % 3}" for i in range(len(events))], [f"t{i % 2}" for i in range(len(events))]
    ids, inputs = [f"e{i}" for i in range(len(events))], [None if i % 4 == 0 else i for i in range(len(events))]
    start = data.draw(st.integers(0, len(events)))
    got, want = UnflaggedAnswers(capacity, per_answer), UnflaggedAnswers(capacity, per_answer)
    got.add_many(range(start, len(events)), answers, tokens, users, tenants, ids, inputs)
    for index in range(start, len(events)):
        if answers[index] is not None:
            want.add(answers[index], tokens[index], user=users[index], tenant=tenants[index], event_id=ids[index],
                     input_hash=inputs[index])
    assert list(got.events.items()) == list(want.events.items())


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.one_of(st.none(), st.integers(0, 6)), st.integers(0, 4), st.integers(0, 3)),
                max_size=60), st.integers(0, 60), st.integers(1, 4), st.integers(1, 3), st.integers(1, 3))
def test_observe_many_is_observe_burst_for_each_event(events: list[tuple[int | None, int, int]], reference: int,
                                                      capacity: int, min_inputs: int, known_cap: int) -> None:
    asked = questions([["name", "three", "fruits"], ["you", "are", "kind", "name", "three", "fruits"],
                       ["capital", "of", "peru"], []])
    answers, inputs = [a for a, _, _ in events], [i for _, i, _ in events]
    chosen = [asked[w] if w < 3 else None for _, _, w in events]
    got = PayloadBursts(capacity=capacity, min_inputs=min_inputs, known_cap=known_cap)
    want = PayloadBursts(capacity=capacity, min_inputs=min_inputs, known_cap=known_cap)
    burst_at, before = got.observe_many(answers, inputs, reference=reference, questions=chosen)
    expected_at, expected_before = [], [0] * len(events)
    for index, (answer, source, question) in enumerate(zip(answers, inputs, chosen, strict=True)):
        if answer is None:
            continue
        burst, expected_before[index] = want.observe_burst(answer, source, reference=index < reference,
                                                           question=question)
        if burst:
            expected_at.append(index)
    assert (burst_at, before) == (expected_at, expected_before)
    assert list(got.recent.items()) == list(want.recent.items())
    assert got.before == want.before and list(got.known) == list(want.known)
