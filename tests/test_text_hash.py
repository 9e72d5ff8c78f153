"""Feature-hashed byte n-grams: the batched hashing against the plain implementation it replaced."""

from __future__ import annotations

from collections.abc import Sequence

import hypothesis.strategies as st
import numpy as np
from hypothesis import given, settings

from detectors.text_hash import _BASE, _MULTIPLIER, CUES, hash_texts, shape_texts


def _reference_block(texts: Sequence[str], dim: int, ngrams: Sequence[int], max_bytes: int) -> np.ndarray:
    """The hashed block as first written: each size hashed from scratch, n-grams across texts masked out."""
    n = len(texts)
    encoded = [t.encode("utf-8", "replace")[:max_bytes] for t in texts]
    lengths = np.fromiter((len(e) for e in encoded), dtype=np.int64, count=n)
    raw = np.frombuffer(b"\x00".join(encoded) + b"\x00", dtype=np.uint8)
    owner = np.repeat(np.arange(n, dtype=np.int64), lengths + 1)
    values = raw.astype(np.uint32)
    shift = np.uint32(32 - dim.bit_length() + 1)
    counts = np.zeros(n * dim, dtype=np.float64)
    for size in ngrams:
        if len(raw) < size:
            continue
        h = values[: len(raw) - size + 1].copy()
        for j in range(1, size):
            h = h * _BASE + values[j: len(raw) - size + 1 + j]
        bucket = ((h * _MULTIPLIER) >> shift).astype(np.int64)
        start_owner = owner[: len(raw) - size + 1]
        valid = start_owner == owner[size - 1:]
        counts += np.bincount(start_owner[valid] * dim + bucket[valid], minlength=n * dim)
    block = np.sqrt(counts.reshape(n, dim))
    return (block / np.maximum(np.linalg.norm(block, axis=1, keepdims=True), 1e-12)).astype(np.float32)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.text(alphabet=st.sampled_from("ab A.\n#-*`é\x00"), max_size=40), min_size=1, max_size=8),
       st.sampled_from([2, 16, 64]), st.lists(st.integers(1, 6), min_size=1, max_size=3), st.integers(1, 50))
def test_hash_texts_matches_the_masked_reference_bit_for_bit(texts: list[str], dim: int, ngrams: list[int],
                                                             max_bytes: int) -> None:
    got = hash_texts(texts, dim=dim, ngrams=ngrams, max_bytes=max_bytes)
    assert got.shape == (len(texts), dim + len(CUES))
    assert got[:, :dim].tobytes() == _reference_block(texts, dim, ngrams, max_bytes).tobytes()


def test_a_text_hashes_the_same_alone_or_among_others() -> None:
    texts = ["## Title\n- a\n- b", "x", "", "Hello world. Again!", "é" * 30]
    together = hash_texts(shape_texts(texts), dim=64, ngrams=(3, 5))
    for index, text in enumerate(texts):
        assert hash_texts(shape_texts([text]), dim=64, ngrams=(3, 5))[0].tobytes() == together[index].tobytes()
