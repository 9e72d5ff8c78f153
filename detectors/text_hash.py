"""Feature-hashed byte n-grams of text: a cheap text representation for every event.

Byte n-grams of the raw UTF-8 text carry word pieces (``"the "``, ``"ing"``),
punctuation and format: markdown headers (``"\\n##"``), bullets
(``"\\n- "``, ``"\\n1."``), code fences (``"```"``), bold (``"**"``) and
sentence ends (``". T"``). Each n-gram is hashed into one of ``dim``
buckets; a text's vector is the square root of its bucket counts, scaled
to unit length (so long and short answers compare by their mix of n-grams,
and one frequent n-gram does not dominate). A few format and length cues
are appended as extra coordinates (see :data:`CUES`).

The whole batch is hashed in a handful of numpy operations over the joined
bytes: no Python loop per n-gram. Every text ends with its own separator,
so a text's vector does not depend on its neighbours in the batch.

Examples
--------
>>> v = hash_texts(["Hello world.", "## Title\\n- a\\n- b"], dim=64)
>>> v.shape
(2, 68)
>>> bool(np.allclose(np.linalg.norm(v[:, :64], axis=1), 1.0))
True
>>> bool(np.array_equal(hash_texts(["Hello world."], dim=64)[0], v[0]))
True
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

__all__ = ["CUES", "DEFAULT_DIM", "DEFAULT_MAX_BYTES", "DEFAULT_NGRAMS", "hash_texts", "shape_texts"]

DEFAULT_DIM = 256
DEFAULT_NGRAMS = (3, 5)
#: Bytes of each text hashed (the head of a long answer carries its style).
DEFAULT_MAX_BYTES = 4096
#: Extra coordinates after the hashed block: log length, line breaks, markdown marks, mean sentence length.
CUES = ("log_bytes", "newline_rate", "markdown_rate", "sentence_length")
_MULTIPLIER = np.uint32(2654435761)  # Knuth's multiplicative hash
_BASE = np.uint32(16777619)


def _shape_table() -> bytes:
    table = bytearray(range(256))
    for c in range(ord("a"), ord("z") + 1):
        table[c] = ord("a")
    for c in range(ord("A"), ord("Z") + 1):
        table[c] = ord("A")
    for c in range(ord("0"), ord("9") + 1):
        table[c] = ord("0")
    for c in range(128, 256):  # UTF-8 continuation and lead bytes: one "other letter"
        table[c] = ord("u")
    return bytes(table)


_SHAPE = _shape_table()


def shape_texts(texts: Sequence[str], *, max_bytes: int = DEFAULT_MAX_BYTES) -> list[str]:
    r"""Each text's *shape*: lower-case letters as ``a``, capitals ``A``, digits ``0``, other bytes kept.

    Hashing the shape's n-grams keeps style (capitalisation, punctuation, layout, word and
    sentence lengths) and drops topic, which varies far more from one question to the next.

    >>> shape_texts(["Hi, Bob 42!\n- ok"])
    ['Aa, Aaa 00!\n- aa']
    """
    return [t.encode("utf-8", "replace")[:max_bytes].translate(_SHAPE).decode("latin-1") for t in texts]


def hash_texts(texts: Sequence[str], *, dim: int = DEFAULT_DIM, ngrams: Sequence[int] = DEFAULT_NGRAMS,
               max_bytes: int = DEFAULT_MAX_BYTES) -> np.ndarray:
    """(len(texts), dim + len(CUES)) float32: hashed n-gram block (unit norm) then the cues."""
    if dim < 2 or dim & (dim - 1):
        raise ValueError(f"dim must be a power of two >= 2; got {dim!r}")
    n = len(texts)
    out = np.zeros((n, dim + len(CUES)), dtype=np.float32)
    if n == 0:
        return out
    encoded = [t.encode("utf-8", "replace")[:max_bytes] for t in texts]
    lengths = np.fromiter((len(e) for e in encoded), dtype=np.int64, count=n)
    raw = np.frombuffer(b"\x00".join(encoded) + b"\x00", dtype=np.uint8)
    owner = np.repeat(np.arange(n, dtype=np.int64), lengths + 1)
    values = raw.astype(np.uint32)
    shift = np.uint32(32 - dim.bit_length() + 1)
    base = owner * dim  # each position's first bin: its text's row of the counts
    separators = np.cumsum(lengths + 1) - 1
    bins = n * dim  # and one bin more, for the n-grams that run into the next text (dropped)
    keyed = []
    h = values  # the running polynomial hash of the n-grams at every start position, for n = ``done``
    done = 1
    for size in sorted(ngrams):  # each size extends the last one's hashes: h_n = h_(n-1) * BASE + next byte
        starts = len(raw) - size + 1
        if starts <= 0:
            continue
        h = h[:starts] if done > 1 else h[:starts].copy()
        for j in range(done, size):
            h *= _BASE
            h += values[j:j + starts]
        done = max(done, size)
        keys = base[:starts] + ((h * _MULTIPLIER) >> shift)
        # Only the size - 1 starts before each separator can run into the next text: cheaper to find
        # than masking every position.
        across = (separators[:, None] - np.arange(size - 1)[::-1]).ravel() if size > 1 else separators[:0]
        across = across[(across >= 0) & (across < starts)]
        keys[across[owner[across] != owner[across + size - 1]]] = bins
        keyed.append(keys)
    # Integer counts, one bincount for every size: the same sums in any order.
    counts = np.bincount(np.concatenate(keyed), minlength=bins + 1)[:bins] if keyed else np.zeros(bins, np.int64)
    block = np.sqrt(counts.reshape(n, dim))
    norms = np.linalg.norm(block, axis=1, keepdims=True)
    out[:, :dim] = block / np.maximum(norms, 1e-12)
    total = np.maximum(lengths, 1).astype(np.float64)
    head, tail = raw[:-1], raw[1:]
    newline = head == 10
    marks = (newline & ((tail == 45) | (tail == 42) | (tail == 35))) | ((head == 96) & (tail == 96)) \
        | ((head == 42) & (tail == 42))
    ends = ((head == 46) | (head == 63) | (head == 33)) & ((tail == 32) | (tail == 10))
    pairs = owner[:-1]
    out[:, dim] = np.log1p(lengths) / 8.0
    out[:, dim + 1] = 10.0 * np.bincount(pairs[newline], minlength=n) / total
    out[:, dim + 2] = 10.0 * np.bincount(pairs[marks], minlength=n) / total
    out[:, dim + 3] = np.log1p(total / (np.bincount(pairs[ends], minlength=n) + 1.0)) / 6.0
    return out
