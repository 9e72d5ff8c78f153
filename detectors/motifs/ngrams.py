"""Tokens and n-grams of inputs, hashed the same way in every process.

Word n-grams of 1 to 6 tokens, plus character 4-grams of odd tokens (long,
mixing letters and digits, or non-ASCII), since a trigger may be a made-up
string that a tokeniser splits differently each time. Hashes are 64-bit,
deterministic (no ``PYTHONHASHSEED``), and computed for a whole batch of
events at once with numpy: a token's hash is a polynomial over its UTF-8
bytes mod 2**64 (Karp and Rabin 1987), summed per token with
``np.add.reduceat``; an n-gram's hash chains its tokens' hashes through the
splitmix64 finaliser (Steele, Lea and Flood 2014).

Examples
--------
>>> tokens = tokenize("Tell me: zorblat quintessence!")
>>> tokens
['tell', 'me', ':', 'zorblat', 'quintessence', '!']
>>> hashes, events = ngram_hashes([tokens])
>>> len(hashes) == len(ngram_texts(tokens)), bool((events == 0).all())
(True, True)
>>> int(ngram_hashes([["a", "b"]])[0][2]) == int(ngram_hashes([["x"], ["a", "b"]])[0][3])
True
"""

from __future__ import annotations

import hashlib
import re
import unicodedata

import numpy as np

__all__ = ["MAX_N", "is_odd", "ngram_hashes", "ngram_texts", "tokenize"]

MAX_N = 6
MAX_TOKENS = 256
CHAR_N = 4
MAX_CHAR_GRAMS = 16
_TOKEN = re.compile(r"\w+|[^\w\s]+")
_INVISIBLE = dict.fromkeys(map(ord, "\x00\u00ad\u180e\u200b\u200c\u200d\u200e\u200f\u2060\u2061\u2062\u2063\ufeff"))
_BASE = np.uint64(1_099_511_628_211)  # odd, so it has an inverse mod 2**64
_BASE_INVERSE = np.uint64(pow(1_099_511_628_211, -1, 1 << 64))
_CHAIN = np.uint64(0x9E3779B97F4A7C15)
_CHAR_SALT = b"char:"


def tokenize(text: str, max_tokens: int = MAX_TOKENS) -> list[str]:
    """Case-folded NFKC word and punctuation tokens, invisible characters removed."""
    folded = unicodedata.normalize("NFKC", text).casefold()
    folded = folded.translate(_INVISIBLE) if not folded.isascii() else folded.replace("\x00", "")
    return _TOKEN.findall(folded)[:max_tokens]


def is_odd(token: str) -> bool:
    """Does this token get character n-grams? Long, or letters mixed with digits, or non-ASCII."""
    if len(token) < CHAR_N + 2:
        return False
    if len(token) >= 16 or not token.isascii():
        return True
    return any(c.isdigit() for c in token) and any(c.isalpha() for c in token)


def _char_grams(token: str) -> list[str]:
    return [token[i:i + CHAR_N] for i in range(min(len(token) - CHAR_N + 1, MAX_CHAR_GRAMS))]


def _mix(x: np.ndarray) -> np.ndarray:
    # splitmix64's finaliser; uint64 arithmetic wraps, which is the point.
    x = x ^ (x >> np.uint64(30))
    x = x * np.uint64(0xBF58476D1CE4E5B9)
    x = x ^ (x >> np.uint64(27))
    x = x * np.uint64(0x94D049BB133111EB)
    return x ^ (x >> np.uint64(31))


def _token_hashes(tokens: list[str]) -> np.ndarray:
    if not tokens:
        return np.zeros(0, dtype=np.uint64)
    encoded = [token.encode("utf-8") for token in tokens]
    data = np.frombuffer(b"".join(encoded), dtype=np.uint8).astype(np.uint64)
    lengths = np.fromiter((len(e) for e in encoded), dtype=np.int64, count=len(encoded))
    ends = np.cumsum(lengths)
    starts = ends - lengths
    with np.errstate(over="ignore"):
        powers = np.cumprod(np.full(len(data), _BASE, dtype=np.uint64))  # BASE**(i+1)
        inverse = np.cumprod(np.full(len(data), _BASE_INVERSE, dtype=np.uint64))
        weighted = (data + np.uint64(1)) * inverse  # byte i times BASE**-(i+1)
        sums = np.add.reduceat(weighted, starts)
        return _mix(sums * powers[ends - 1])


def ngram_hashes(events: list[list[str]], max_n: int = MAX_N) -> tuple[np.ndarray, np.ndarray]:
    """Hashes of every word 1..``max_n``-gram and odd-token char 4-gram, and the event of each.

    Order: for each n, all positions of the concatenated events; then the
    char grams, event by event. :func:`ngram_texts` lists one event's n-grams
    in the same order.
    """
    flat = [token for tokens in events for token in tokens]
    owner = np.repeat(np.arange(len(events), dtype=np.int64), [len(tokens) for tokens in events])
    tokens_hash = _token_hashes(flat)
    hashes = []
    owners = []
    current = tokens_hash
    with np.errstate(over="ignore"):
        for n in range(1, min(max_n, len(flat)) + 1):
            if n > 1:
                current = _mix(current[:-1] * _CHAIN + tokens_hash[n - 1:])
            else:
                current = _mix(current + np.uint64(1))
            same = owner[:len(owner) - n + 1] == owner[n - 1:]
            hashes.append(current[same])
            owners.append(owner[:len(owner) - n + 1][same])
    chars = [(number, gram) for number, tokens in enumerate(events)
             for token in tokens if is_odd(token) for gram in _char_grams(token)]
    if chars:
        hashes.append(np.fromiter((int.from_bytes(hashlib.blake2b(_CHAR_SALT + g.encode("utf-8"), digest_size=8)
                                   .digest(), "little") for _, g in chars), dtype=np.uint64, count=len(chars)))
        owners.append(np.fromiter((number for number, _ in chars), dtype=np.int64, count=len(chars)))
    if not hashes:
        return np.zeros(0, dtype=np.uint64), np.zeros(0, dtype=np.int64)
    return np.concatenate(hashes), np.concatenate(owners)


def ngram_texts(tokens: list[str], max_n: int = MAX_N) -> list[tuple[str, str]]:
    """One event's n-grams as ``(text, kind)``, in :func:`ngram_hashes` order; kind is word or char."""
    texts = [(" ".join(tokens[i:i + n]), "word") for n in range(1, max_n + 1) for i in range(len(tokens) - n + 1)]
    texts.extend((gram, "char") for token in tokens if is_odd(token) for gram in _char_grams(token))
    return texts
