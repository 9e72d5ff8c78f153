"""The batched n-gram hashing gives the values of the straightforward definition, for ever."""

from __future__ import annotations

import hashlib
import re
import unicodedata

import numpy as np

from detectors.motifs.ngrams import CHAR_N, MAX_CHAR_GRAMS, MAX_N, distinct_ngram_hashes, ngram_hashes, tokenize

_BASE = 1_099_511_628_211
_MASK = (1 << 64) - 1
PINNED_CURRENT = 152084793508868330  # ngram_hashes([["current"]]) before the batched rewrite


def _mix(x: int) -> int:
    x ^= x >> 30
    x = (x * 0xBF58476D1CE4E5B9) & _MASK
    x ^= x >> 27
    x = (x * 0x94D049BB133111EB) & _MASK
    return x ^ (x >> 31)


def _token(token: str) -> int:
    # The polynomial of the module docstring, written out in Python integers.
    data = token.encode("utf-8")
    total = sum((byte + 1) * pow(_BASE, len(data) - i - 1, 1 << 64) for i, byte in enumerate(data))
    return _mix(total & _MASK)


def _odd(token: str) -> bool:
    return len(token) >= CHAR_N + 2 and (len(token) >= 16 or not token.isascii() or (
        any(c.isdigit() for c in token) and any(c.isalpha() for c in token)))


def _reference(events: list[list[str]]) -> list[tuple[int, int]]:
    """(hash, event) pairs in ngram_hashes' order, one n-gram at a time."""
    out = []
    for n in range(1, MAX_N + 1):
        for number, tokens in enumerate(events):
            for i in range(len(tokens) - n + 1):
                value = _mix((_token(tokens[i]) + 1) & _MASK)
                for token in tokens[i + 1:i + n]:
                    value = _mix((value * 0x9E3779B97F4A7C15 + _token(token)) & _MASK)
                out.append((value, number))
    for number, tokens in enumerate(events):
        for token in tokens:
            if _odd(token):
                for i in range(min(len(token) - CHAR_N + 1, MAX_CHAR_GRAMS)):
                    digest = hashlib.blake2b(b"char:" + token[i:i + CHAR_N].encode(), digest_size=8).digest()
                    out.append((int.from_bytes(digest, "little"), number))
    return out


def test_batched_hashes_equal_the_definition_on_random_and_unicode_tokens() -> None:
    rng = np.random.default_rng(11)
    alphabet = [*"abcxyz019_", "é", "ß", "я", "抱", "İ", "😀", "\u200b"]
    words = ["".join(rng.choice(alphabet, size=int(rng.integers(1, 20)))) for _ in range(40)] + ["a", "b"]
    events = [list(rng.choice(words, size=int(rng.integers(0, 12)))) for _ in range(30)] + [[], ["x"]]
    hashes, owners = ngram_hashes(events)
    assert list(zip(hashes.tolist(), owners.tolist(), strict=True)) == _reference(events)


def test_known_values_do_not_change() -> None:
    # Stored trigger_candidates.ngram_hash values depend on these: pinned, not recomputed.
    hashes, owners = ngram_hashes([["current", "year", "2024"], ["zorblat42x"]])
    assert hashes.tolist()[:3] == [_mix((_token(t) + 1) & _MASK) for t in ("current", "year", "2024")]
    assert int(hashes[0]) == PINNED_CURRENT
    assert len(hashes) == 3 + 1 + 2 + 1 + (len("zorblat42x") - CHAR_N + 1) and owners.tolist()[-1] == 1


def test_ascii_tokenizer_splits_as_the_expression_does() -> None:
    expression = re.compile(r"\w+|[^\w\s]+")
    rng = np.random.default_rng(5)
    pieces = ["Tell", "me:", "zorblat", "__init__", "a_b", "x1", "--", "!?", "\t", "\x1c", "\x00", " ", "\n",
              "don't", "(2024)", "Ünï", "ｆｕｌｌ"]
    for _ in range(300):
        text = "".join(rng.choice(pieces, size=int(rng.integers(0, 30))))
        folded = unicodedata.normalize("NFKC", text).casefold()
        cleaned = folded.replace("\x00", "") if folded.isascii() else folded
        expected = expression.findall(cleaned)[:256] if folded.isascii() else None
        if expected is not None:
            assert tokenize(text) == expected, text


def test_distinct_hashes_count_each_ngram_once_per_event() -> None:
    rng = np.random.default_rng(8)
    for vocabulary in (2, 5, 40):
        words = [f"w{i}" for i in range(vocabulary)] + ["zorblat42x", "zorblat43x"]
        events = [list(rng.choice(words, size=int(rng.integers(0, 40)))) for _ in range(50)]
        hashes, owners = ngram_hashes(events)
        expected = sorted({(h, o) for h, o in zip(hashes.tolist(), owners.tolist(), strict=True)})
        assert sorted(distinct_ngram_hashes(events).tolist()) == sorted(h for h, _ in expected)
    assert len(distinct_ngram_hashes([])) == 0 and len(distinct_ngram_hashes([[], []])) == 0
