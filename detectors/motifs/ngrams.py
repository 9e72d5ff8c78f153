"""Tokens and n-grams of inputs, hashed the same way in every process.

Word n-grams of 1 to 6 tokens, plus character 4-grams of odd tokens (long,
mixing letters and digits, or non-ASCII), since a trigger may be a made-up
string that a tokeniser splits differently each time. Hashes are 64-bit,
deterministic (no ``PYTHONHASHSEED``), and computed for a whole batch of
events at once with numpy: a token's hash is a polynomial over its UTF-8
bytes mod 2**64 (Karp and Rabin 1987), summed per token with
``np.add.reduceat``; an n-gram's hash chains its tokens' hashes through the
splitmix64 finaliser (Steele, Lea and Flood 2014). Each distinct token of
a batch is hashed, and judged odd or not, once. :func:`distinct_ngram_hashes`
gives the same hashes with each n-gram once per event, what support counts;
:class:`DistinctNgrams` keeps them by n for a batch, to be cut into runs of
events and read by n without hashing again.

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
import itertools
import re
import unicodedata

import numpy as np

__all__ = ["MAX_N", "DistinctNgrams", "TokenBatch", "distinct_ngram_hashes", "distinct_ngram_hashes_by_event",
           "is_odd", "ngram_hashes", "ngram_texts", "tokenize"]

MAX_N = 6
MAX_TOKENS = 256
CHAR_N = 4
MAX_CHAR_GRAMS = 16
_TOKEN = re.compile(r"\w+|[^\w\s]+")
_ASCII_TOKEN = re.compile(r"\w+|[^\w\s]+", re.ASCII)  # the same on ASCII text, and faster
# After casefold, the characters of pieces that are one token each: lower-case letters, digits and ASCII
# whitespace (re's \s with re.ASCII). Deleting them with bytes.translate leaves nothing exactly when the
# expression [^a-z0-9\s] finds nothing, five times faster than the expression's search.
_ASCII_ONE_TOKEN = b"abcdefghijklmnopqrstuvwxyz0123456789 \t\n\r\x0b\x0c"
_INVISIBLE = dict.fromkeys(map(ord, "\x00\u00ad\u180e\u200b\u200c\u200d\u200e\u200f\u2060\u2061\u2062\u2063\ufeff"))
_BASE = np.uint64(1_099_511_628_211)  # odd, so it has an inverse mod 2**64
_BASE_INVERSE = np.uint64(pow(1_099_511_628_211, -1, 1 << 64))
_CHAIN = np.uint64(0x9E3779B97F4A7C15)
_SHIFT_1, _SHIFT_2, _SHIFT_3 = np.uint64(30), np.uint64(27), np.uint64(31)
_MULTIPLY_1, _MULTIPLY_2 = np.uint64(0xBF58476D1CE4E5B9), np.uint64(0x94D049BB133111EB)
_CHAR_SALT = b"char:"
_NO_GRAMS = np.zeros(0, dtype=np.uint64)


def tokenize(text: str, max_tokens: int = MAX_TOKENS) -> list[str]:
    """Case-folded NFKC word and punctuation tokens, invisible characters removed."""
    folded = unicodedata.normalize("NFKC", text).casefold()
    if not folded.isascii():
        return _TOKEN.findall(folded.translate(_INVISIBLE))[:max_tokens]
    # ASCII (most inputs): split at whitespace, which no token spans (str.split and re's \s
    # agree on it), and run the expression only on pieces that are not one plain word.
    folded = folded.replace("\x00", "")
    if not folded.encode("ascii").translate(None, _ASCII_ONE_TOKEN):
        return folded.split()[:max_tokens]  # letters and digits only: every piece is one token
    tokens: list[str] = []
    for piece in folded.split():
        if piece.isalnum():
            tokens.append(piece)
        else:
            tokens.extend(_ASCII_TOKEN.findall(piece))
    return tokens[:max_tokens]


def is_odd(token: str) -> bool:
    """Does this token get character n-grams? Long, or letters mixed with digits, or non-ASCII."""
    if len(token) < CHAR_N + 2:
        return False
    if len(token) >= 16 or not token.isascii():
        return True
    if token.isalpha():  # most words: no digit, so not odd (a check in C before the loops in Python)
        return False
    return any(c.isdigit() for c in token) and any(c.isalpha() for c in token)


def _char_grams(token: str) -> list[str]:
    return [token[i:i + CHAR_N] for i in range(min(len(token) - CHAR_N + 1, MAX_CHAR_GRAMS))]


def _mix(x: np.ndarray) -> np.ndarray:
    """splitmix64's finaliser of ``x``, in place (``x`` is a fresh uint64 array); uint64 arithmetic wraps."""
    shifted = x >> _SHIFT_1
    x ^= shifted
    x *= _MULTIPLY_1
    np.right_shift(x, _SHIFT_2, out=shifted)
    x ^= shifted
    x *= _MULTIPLY_2
    np.right_shift(x, _SHIFT_3, out=shifted)
    x ^= shifted
    return x


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


class TokenBatch:
    """A batch's tokens as dense ids: each distinct token is hashed and judged once.

    Built once per batch and shared by what reads the batch's tokens (the miner's n-grams, the payload
    bursts' questions); :meth:`select` and :meth:`truncated` give parts of it without hashing again.

    Parameters
    ----------
    events
        Each event's tokens.

    Examples
    --------
    >>> batch = TokenBatch([["a", "b", "a"], ["b", "c"]])
    >>> batch.events, batch.size, batch.distinct
    (2, 5, ['a', 'b', 'c'])
    >>> batch.select(1, 2).ids.tolist(), batch.truncated(1).ids.tolist()
    ([1, 2], [0, 1])
    """

    def __init__(self, events: list[list[str]]) -> None:
        flat = list(itertools.chain.from_iterable(events))
        self.events = len(events)
        self.size = len(flat)
        lengths = np.fromiter(map(len, events), dtype=np.int64, count=len(events))
        self.starts = np.concatenate(([0], np.cumsum(lengths)))  # each event's first position, and the end
        self.owner = np.repeat(np.arange(len(events), dtype=np.int64), lengths)
        # setdefault through map (no Python frame per token) gives each token its first position.
        codes: dict[str, int] = {}
        first = np.fromiter(map(codes.setdefault, flat, range(len(flat))), dtype=np.int64, count=len(flat))
        dense = np.empty(len(flat), dtype=np.int64)
        dense[np.fromiter(codes.values(), dtype=np.int64, count=len(codes))] = np.arange(len(codes))
        self.ids = dense[first]
        self.distinct = list(codes)
        self.hash = _token_hashes(self.distinct)[self.ids]
        # Only tokens long enough can be odd: their lengths are judged in one pass, the rest one by one.
        grams = [_NO_GRAMS] * len(self.distinct)
        chars = np.fromiter(map(len, self.distinct), dtype=np.int64, count=len(self.distinct))
        for index in np.flatnonzero(chars >= CHAR_N + 2).tolist():
            if is_odd(token := self.distinct[index]):
                grams[index] = _char_gram_hashes(token)
        self.gram_counts = np.fromiter((len(g) for g in grams), dtype=np.int64, count=len(grams))
        self.grams = grams

    def _part(self, keep: np.ndarray | slice, owner: np.ndarray, events: int) -> TokenBatch:
        part = object.__new__(TokenBatch)
        part.distinct, part.grams, part.gram_counts = self.distinct, self.grams, self.gram_counts
        part.ids, part.hash, part.owner, part.events = self.ids[keep], self.hash[keep], owner, events
        part.size = len(part.ids)
        part.starts = np.concatenate(([0], np.cumsum(np.bincount(owner, minlength=events))))
        return part

    def select(self, start: int, end: int) -> TokenBatch:
        """The events ``start`` to ``end`` (exclusive), numbered from 0, with the same token ids."""
        if not 0 <= start <= end <= self.events:
            raise ValueError(f"events must lie within [0, {self.events}]; got {start!r} to {end!r}")
        lo, hi = int(self.starts[start]), int(self.starts[end])
        return self._part(slice(lo, hi), self.owner[lo:hi] - start, end - start)

    def truncated(self, max_tokens: int) -> TokenBatch:
        """Each event's first ``max_tokens`` tokens (what ``tokenize(text, max_tokens)`` keeps)."""
        keep = np.arange(self.size) - self.starts[self.owner] < max_tokens
        if keep.all():
            return self
        return self._part(keep, self.owner[keep], self.events)

    def chained(self, previous: np.ndarray, n: int) -> np.ndarray:
        """Hashes of the n-grams at every start position, from those of the (n-1)-grams."""
        with np.errstate(over="ignore"):
            if n == 1:
                return _mix(self.hash + np.uint64(1))
            chained = previous[:-1] * _CHAIN
            chained += self.hash[n - 1:]
            return _mix(chained)

    def within(self, n: int) -> np.ndarray:
        """Per start position, does the n-gram there lie within one event?"""
        return self.owner[:self.size - n + 1] == self.owner[n - 1:]

    def char_grams(self) -> tuple[np.ndarray, np.ndarray]:
        """Every odd token's char-gram hashes, in token order, and their events."""
        if not self.gram_counts.any():
            return _NO_GRAMS, np.zeros(0, dtype=np.int64)
        odd = np.flatnonzero(self.gram_counts[self.ids])
        per_token = self.gram_counts[self.ids[odd]]
        starts = (np.cumsum(self.gram_counts) - self.gram_counts)[self.ids[odd]]
        offsets = np.arange(int(per_token.sum())) - np.repeat(np.cumsum(per_token) - per_token, per_token)
        return np.concatenate(self.grams)[np.repeat(starts, per_token) + offsets], np.repeat(self.owner[odd], per_token)


def ngram_hashes(events: list[list[str]], max_n: int = MAX_N) -> tuple[np.ndarray, np.ndarray]:
    """Hashes of every word 1..``max_n``-gram and odd-token char 4-gram, and the event of each.

    Order: for each n, all positions of the concatenated events; then the
    char grams, event by event. :func:`ngram_texts` lists one event's n-grams
    in the same order.
    """
    batch = TokenBatch(events)
    hashes = []
    owners = []
    current = batch.hash
    for n in range(1, min(max_n, batch.size) + 1):
        current = batch.chained(current, n)
        same = batch.within(n)
        hashes.append(current[same])
        owners.append(batch.owner[:batch.size - n + 1][same])
    grams, gram_owners = batch.char_grams()
    if len(grams):
        hashes.append(grams)
        owners.append(gram_owners)
    if not hashes:
        return np.zeros(0, dtype=np.uint64), np.zeros(0, dtype=np.int64)
    return np.concatenate(hashes), np.concatenate(owners)


def _distinct(events: list[list[str]] | TokenBatch, max_n: int) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Each distinct n-gram once per event, per n, with the event of each.

    Distinct by content: an n-gram repeats in an event only where its first
    n-1 tokens do, so each n only sorts the positions whose shorter n-gram
    repeated, a fraction of the batch. (Two different n-grams of one event
    with the same 64-bit hash count twice, where deduplicating hashes would
    count them once: a chance of about 2**-64 per pair.)
    """
    batch = events if isinstance(events, TokenBatch) else TokenBatch(events)
    width = max(len(batch.distinct), 1)
    out: list[np.ndarray] = []
    owners: list[np.ndarray] = []
    current = batch.hash
    repeated = np.zeros(0, dtype=np.int64)  # positions whose (n-1)-gram repeats in its event ...
    group = np.zeros(0, dtype=np.int64)  # ... and which repeat it is (same group, same content and event)
    for n in range(1, min(max_n, batch.size) + 1):
        current = batch.chained(current, n)
        same = batch.within(n)
        if n == 1:
            candidates, key = np.arange(batch.size), batch.owner * width + batch.ids
        else:
            inside = same[np.minimum(repeated, len(same) - 1)] & (repeated < len(same))
            candidates = repeated[inside]
            key = group[inside] * width + batch.ids[candidates + n - 1]
        keep = same.copy()
        keep[candidates] = False
        if len(candidates):
            first, inverse, counts = _groups(key)
            keep[candidates[first]] = True
            again = counts[inverse] > 1
            repeated, group = candidates[again], inverse[again]
        out.append(current[keep])
        owners.append(batch.owner[:batch.size - n + 1][keep])
    grams, gram_owners = batch.char_grams()
    if len(grams):
        order = np.lexsort((grams, gram_owners))
        grams, gram_owners = grams[order], gram_owners[order]
        first_gram = np.ones(len(grams), dtype=bool)
        first_gram[1:] = (grams[1:] != grams[:-1]) | (gram_owners[1:] != gram_owners[:-1])
        out.append(grams[first_gram])
        owners.append(gram_owners[first_gram])
    return out, owners


def _groups(key: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``np.unique(key, return_index=True, return_inverse=True, return_counts=True)`` less the values.

    For non-negative int64 keys: one sort of ``key`` and position packed in one integer (the
    position in the low bits, so equal keys sort by position and each run starts at its first
    occurrence): two to three times fewer instructions than :func:`numpy.unique`'s stable argsort
    (callgrind, batches of bench inputs). Keys that cannot be packed (negative, or too large) fall
    back to :func:`numpy.unique`; the results are the same either way.
    """
    size = len(key)
    shift = max(size - 1, 1).bit_length()
    if size == 0 or int(key.min()) < 0 or int(key.max()) >= 1 << (62 - shift):
        _, first, inverse, counts = np.unique(key, return_index=True, return_inverse=True, return_counts=True)
        return first, inverse, counts
    packed = np.sort((key << shift) | np.arange(size, dtype=np.int64), kind="stable")
    positions = packed & ((1 << shift) - 1)
    packed >>= shift
    starts = np.empty(size, dtype=bool)
    starts[0] = True
    np.not_equal(packed[1:], packed[:-1], out=starts[1:])
    runs = np.cumsum(starts) - 1
    inverse = np.empty(size, dtype=np.int64)
    inverse[positions] = runs
    begin = np.flatnonzero(starts)
    counts = np.diff(begin, append=size)
    return positions[begin], inverse, counts


class DistinctNgrams:
    """A batch's distinct n-grams per event (what support counts), in blocks: each n, then the char grams.

    Within a block the hashes are in position order, so each block's events are in order: :meth:`select`
    cuts a run of events and :meth:`after` finds the events after one by binary search, and the word 1-
    and 2-grams are there for :func:`~detectors.motifs.bursts.questions`, without hashing again.
    :attr:`hashes` and :attr:`owners` are :func:`distinct_ngram_hashes_by_event`'s two arrays.

    Parameters
    ----------
    tokens
        Each event's tokens, or their :class:`TokenBatch`.
    max_n
        The longest word n-gram.

    Examples
    --------
    >>> grams = DistinctNgrams([["a", "b", "a"], ["b"]], max_n=2)
    >>> grams.events, grams.tokens, grams.words, grams.owners.tolist()
    (2, 4, 2, [0, 0, 1, 0, 0])
    >>> part = grams.select(1, 2)
    >>> part.events, part.tokens, part.owners.tolist(), part.hashes.tolist() == grams.hashes[2:3].tolist()
    (1, 1, [0], True)
    >>> grams.after(0)
    [(2, 3), (5, 5)]
    """

    def __init__(self, tokens: list[list[str]] | TokenBatch, max_n: int = MAX_N) -> None:
        batch = tokens if isinstance(tokens, TokenBatch) else TokenBatch(tokens)
        out, owners = _distinct(batch, max_n)
        self.events, self.tokens, self.max_n = batch.events, batch.size, max_n
        self.words = min(max_n, batch.size)  # word blocks (n = 1 .. words); a char block follows when not empty
        self._token_starts = batch.starts
        self.offsets = np.concatenate(([0], np.cumsum([len(block) for block in out], dtype=np.int64)))
        self.hashes = np.concatenate(out) if out else np.zeros(0, dtype=np.uint64)
        self.owners = np.concatenate(owners) if owners else np.zeros(0, dtype=np.int64)

    def words_up_to(self, n: int) -> tuple[np.ndarray, np.ndarray]:
        """The word 1- to ``n``-grams' hashes and events (``n`` at most :attr:`max_n`)."""
        if n > self.max_n:
            raise ValueError(f"n must be at most max_n={self.max_n}; got {n!r}")
        end = int(self.offsets[min(n, self.words)])
        return self.hashes[:end], self.owners[:end]

    def _bounds(self, event: int, side: str) -> list[int]:
        """Per block, the first position whose event is ``event`` or later (``side="left"``) or later only."""
        return [int(lo) + int(np.searchsorted(self.owners[lo:hi], event, side=side))  # type: ignore[call-overload]
                for lo, hi in zip(self.offsets[:-1].tolist(), self.offsets[1:].tolist(), strict=True)]

    def after(self, event: int) -> list[tuple[int, int]]:
        """Per block, the ``(start, end)`` positions of the n-grams of the events after ``event``."""
        return list(zip(self._bounds(event, "right"), self.offsets[1:].tolist(), strict=True))

    def select(self, start: int, end: int) -> DistinctNgrams:
        """The events ``start`` to ``end`` (exclusive), numbered from 0: what a batch of their tokens gives."""
        if not 0 <= start <= end <= self.events:
            raise ValueError(f"events must lie within [0, {self.events}]; got {start!r} to {end!r}")
        if start == 0 and end == self.events:
            return self
        ranges = list(zip(self._bounds(start, "left"), self._bounds(end, "left"), strict=True))
        part = object.__new__(DistinctNgrams)
        part.events, part.max_n, part.words = end - start, self.max_n, self.words
        part._token_starts = self._token_starts[start:end + 1] - self._token_starts[start]
        part.tokens = int(part._token_starts[-1])
        part.offsets = np.concatenate(([0], np.cumsum([hi - lo for lo, hi in ranges], dtype=np.int64)))
        part.hashes = np.concatenate([self.hashes[lo:hi] for lo, hi in ranges]) if ranges \
            else np.zeros(0, dtype=np.uint64)
        part.owners = np.concatenate([self.owners[lo:hi] for lo, hi in ranges]) - start if ranges \
            else np.zeros(0, dtype=np.int64)
        return part


def distinct_ngram_hashes(events: list[list[str]], max_n: int = MAX_N) -> np.ndarray:
    """The hashes of :func:`ngram_hashes`, each distinct n-gram once per event (order unspecified).

    See :func:`distinct_ngram_hashes_by_event`, which also says whose each hash is.
    """
    return DistinctNgrams(events, max_n).hashes


def distinct_ngram_hashes_by_event(events: list[list[str]] | TokenBatch,
                                   max_n: int = MAX_N) -> tuple[np.ndarray, np.ndarray]:
    """:func:`distinct_ngram_hashes` and the event of each hash; ``events`` may be their :class:`TokenBatch`."""
    grams = DistinctNgrams(events, max_n)
    return grams.hashes, grams.owners


def _char_gram_hashes(token: str) -> np.ndarray:
    return np.array([int.from_bytes(hashlib.blake2b(_CHAR_SALT + gram.encode("utf-8"), digest_size=8).digest(),
                                    "little") for gram in _char_grams(token)], dtype=np.uint64)


def ngram_texts(tokens: list[str], max_n: int = MAX_N) -> list[tuple[str, str]]:
    """One event's n-grams as ``(text, kind)``, in :func:`ngram_hashes` order; kind is word or char."""
    texts = [(token, "word") for token in tokens] if max_n >= 1 else []
    grams = tokens
    for n in range(2, max_n + 1):
        # Each n-gram is the (n-1)-gram at its position and one token more: a concatenation, not a join.
        # The last (n-1)-gram has no token after it: zip stops there.
        grams = [gram + " " + token for gram, token in zip(grams, tokens[n - 1:], strict=False)]
        texts.extend([(gram, "word") for gram in grams])
    texts.extend((gram, "char") for token in tokens if is_odd(token) for gram in _char_grams(token))
    return texts
