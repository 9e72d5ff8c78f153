"""What the model did after a trigger, as 64-bit hashes: SimHash of the answer, and how alike a set of them is.

A backdoor makes the model do one thing, so the answers after its trigger
look alike; the answers to unrelated prompts that happen to be refused do
not. :func:`simhash` is Charikar's SimHash (Charikar 2002, "Similarity
estimation techniques from rounding algorithms", STOC) over the answer's
word 2-shingles and, when there are tool calls, one feature per call shape
(tool name and sorted argument keys), so the same call with other argument
values hashes alike. :func:`consistency` is the share of a set of hashes in
its largest near-duplicate group (Hamming distance within ``radius``).
Only hashes and measures are kept, never text.

Examples
--------
>>> a = simhash("I'm sorry, but as an AI assistant, I cannot do that.")
>>> b = simhash("I'm sorry, but as an AI assistant, I cannot do this.")
>>> c = simhash("Sourdough needs flour, water, salt and patience.")
>>> hamming(a, b) < hamming(a, c)
True
>>> consistency([a, b, a, c])
0.75
"""

from __future__ import annotations

import hashlib
import zlib
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

__all__ = ["consistency", "exact_hash", "hamming", "simhash", "tool_shapes"]

RADIUS = 10  # of 64 bits: near-identical answers (Manku, Jain and Das Sarma 2007 use 3 of 64 for web pages)
_BITS = 64
_SHIFTS = np.arange(_BITS, dtype=np.uint64)
_POWERS = np.array([1 << bit for bit in range(_BITS)], dtype=object)


def _feature_hash(feature: str) -> int:
    return int.from_bytes(hashlib.blake2b(feature.encode("utf-8", "surrogatepass"), digest_size=8).digest(), "little")


def tool_shapes(tool_calls: Iterable[Any] | None) -> list[str]:
    """One ``name(key,key)`` per tool call: the call's shape, not its values."""
    shapes = []
    for call in tool_calls or ():
        arguments = getattr(call, "arguments", None)
        keys = sorted(str(k) for k in arguments) if isinstance(arguments, dict) else []
        shapes.append(f"{getattr(call, 'name', '')}({','.join(keys)})")
    return shapes


def simhash(text: str, shapes: Sequence[str] = ()) -> int:
    """A 64-bit SimHash of ``text``'s word 2-shingles plus each tool-call shape (weighted as 4 shingles)."""
    words = text.casefold().split()[:512]
    features: dict[str, int] = {}
    for shingle in (" ".join(words[i:i + 2]) for i in range(max(len(words) - 1, 1))):
        features[shingle] = features.get(shingle, 0) + 1
    for shape in shapes:
        features["tool:" + shape] = features.get("tool:" + shape, 0) + 4
    hashes = np.fromiter((_feature_hash(f) for f in features), dtype=np.uint64, count=len(features))
    weights = np.fromiter(features.values(), dtype=np.int64, count=len(features))
    bits = ((hashes[:, None] >> _SHIFTS) & np.uint64(1)).astype(np.int64) * 2 - 1
    totals = weights @ bits
    return int(np.sum(_POWERS[totals > 0]))


def exact_hash(text: str) -> int:
    """64 bits of ``text`` (CRC-32 and Adler-32 of its UTF-8, stripped): equal texts collide, others hardly.

    Two C checksums, not a cryptographic hash: this runs for every input and answer.
    """
    data = text.strip().encode("utf-8", "surrogatepass")
    return zlib.crc32(data) | zlib.adler32(data) << 32


def hamming(a: int, b: int) -> int:
    return (a ^ b).bit_count()


def consistency(hashes: Sequence[int], radius: int = RADIUS) -> float:
    """Share of ``hashes`` within ``radius`` bits of the one with most such neighbours; 0 for none."""
    if not hashes:
        return 0.0
    best = max(sum(hamming(h, other) <= radius for other in hashes) for h in hashes)
    return best / len(hashes)
