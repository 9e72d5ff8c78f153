"""Canary tokens: minted at random, recognised by shape, identified by keyed hash.

A canary is planted in a system prompt or a document; seeing it in a model's
output means that text leaked. driftwatch never keeps a canary's value:
it stores ``HMAC-SHA256(key, canonical(value))`` (RFC 2104) and, to check an
output, finds every substring shaped like a canary, hashes it with the same
key and looks the hash up. So the value appears nowhere: not in the signature
table, not in alerts, not in logs.

The shape is ``dwc-`` and 24 base32 letters (120 random bits), in groups of
six. Matching tolerates case changes and separators (spaces, hyphens, dots,
underscores) between the letters, which is what a model paraphrasing a token
tends to do.

Examples
--------
>>> import random
>>> token = mint_canary(random.Random(1).getrandbits)
>>> len(token), token[:4]
(31, 'dwc-')
>>> key = b"k" * 32
>>> [keyed_hash(key, m) == keyed_hash(key, token) for m in find_canary_shapes(token.upper().replace("-", " "))]
[True]
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Callable

__all__ = ["CANARY_SHAPE", "canonical_canary", "find_canary_shapes", "keyed_hash", "mint_canary"]

_ALPHABET = "abcdefghijklmnopqrstuvwxyz234567"
_BODY_CHARS = 24
_SEPARATOR = r"[\s\-_.]?"
# In text already case-folded and stripped of invisible characters.
CANARY_SHAPE = re.compile(r"dwc" + _SEPARATOR + r"(?:[a-z2-7]" + _SEPARATOR + r"){23}[a-z2-7](?![a-z2-7])")


def mint_canary(random_bits: Callable[[int], int]) -> str:
    """A fresh canary, from ``random_bits(k)`` (use ``secrets.randbits``)."""
    value = random_bits(5 * _BODY_CHARS)
    body = "".join(_ALPHABET[(value >> (5 * i)) & 31] for i in range(_BODY_CHARS))
    return "dwc-" + "-".join(body[i:i + 6] for i in range(0, _BODY_CHARS, 6))


def canonical_canary(text: str) -> str:
    """The canary without case or separators: what the keyed hash covers."""
    return re.sub(r"[^a-z2-7]", "", text.casefold().removeprefix("dwc"))


def keyed_hash(key: bytes, value: str) -> str:
    """HMAC-SHA256 of the canonical canary, as 64 hex digits."""
    if len(key) < 16:
        raise ValueError(f"canary key must be at least 16 bytes; got {len(key)}")
    return hmac.new(key, ("dwc" + canonical_canary(value)).encode("ascii"), hashlib.sha256).hexdigest()


def find_canary_shapes(text: str) -> list[str]:
    """Substrings of ``text`` (case-folded here) shaped like a canary."""
    return [m.group() for m in CANARY_SHAPE.finditer(text.casefold())]
