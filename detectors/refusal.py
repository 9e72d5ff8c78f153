"""Refusal phrases in the opening of answers, for a whole batch in one pass.

An answer is a refusal when one of the phrases occurs, case-insensitively
in the sense of Python's ``re.IGNORECASE``, in its first
:data:`REFUSAL_SCAN_CHARS` characters (curly apostrophes read as straight
ones). :func:`refusal_pattern` is that definition as one regular
expression. :class:`RefusalMatcher` gives the same answers some fifty
times faster: it case-folds each opening with ``str.lower`` and runs one
Aho-Corasick automaton (Aho and Corasick 1975, CACM 18(6)) over the
batch's openings joined by NUL, then confirms each hit with the regular
expression.

``str.lower`` and ``re.IGNORECASE`` differ on rare characters (dotless
``ı`` matches ``i``, the Cyrillic ``ᲀ`` matches ``в``, the full lower case
of ``İ`` has two characters, ...). The fold below maps those onto one
representative, so every answer the expression matches is found by the
automaton (a property tests check over every Unicode code point); where
the fold is broader than the expression, the confirmation removes the
extra hit. The result is the expression's, exactly.

Examples
--------
>>> matcher = RefusalMatcher()
>>> matcher.flags(["Sure, here it is.", "I’M SORRY, I can't.", "Извините, я не могу."]).tolist()
[False, True, True]
>>> matcher.flags(["x" * 400 + " I cannot"]).tolist()  # past the opening: not a refusal
[False]
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

import ahocorasick_rs
import numpy as np

__all__ = ["DEFAULT_REFUSAL_PHRASES", "REFUSAL_SCAN_CHARS", "RefusalMatcher", "refusal_pattern"]

#: Refusal openings in the languages our tenants use most; matched
#: case-insensitively in the answer's opening. Extend with ``refusal_phrases``.
DEFAULT_REFUSAL_PHRASES: tuple[str, ...] = (
    # English
    "i'm sorry", "i am sorry", "i apologize", "i cannot", "i can't", "i am unable", "i'm unable",
    "i won't be able", "i do not have the capability", "as an ai", "i must decline",
    # German, French, Spanish, Italian, Portuguese, Dutch
    "es tut mir leid", "ich kann nicht", "ich kann ihnen nicht", "je suis désolé", "je ne peux pas",
    "lo siento", "no puedo", "mi dispiace", "non posso", "desculpe", "não posso", "het spijt me",
    # Russian, Chinese, Japanese, Korean
    "извините", "я не могу", "抱歉", "对不起", "我不能", "我无法", "申し訳", "できません", "죄송합니다",
)

#: Only the opening of an answer decides whether it is a refusal: a long answer that
#: quotes "I cannot" in its fourth paragraph is not one.
REFUSAL_SCAN_CHARS = 400

# Characters that re.IGNORECASE treats as the same letter although their lower cases
# differ (CPython's re/_casefix.py, from Unicode's case-folding data); each maps to the
# group's first member, so the fold puts them together.
_SAME_LETTER = (
    (0x69, 0x131), (0x73, 0x17F), (0xB5, 0x3BC), (0x345, 0x3B9, 0x1FBE), (0x390, 0x1FD3),
    (0x3B0, 0x1FE3), (0x3B2, 0x3D0), (0x3B5, 0x3F5), (0x3B8, 0x3D1), (0x3BA, 0x3F0), (0x3C0, 0x3D6),
    (0x3C1, 0x3F1), (0x3C2, 0x3C3), (0x3C6, 0x3D5), (0x432, 0x1C80), (0x434, 0x1C81), (0x43E, 0x1C82),
    (0x441, 0x1C83), (0x442, 0x1C84, 0x1C85), (0x44A, 0x1C86), (0x463, 0x1C87), (0x1C88, 0xA64B),
    (0x1E61, 0x1E9B), (0xFB05, 0xFB06),
)
# Before lowering: the curly apostrophe reads as a straight one (as in the expression), and
# İ lowers to one "i" (re compares simple lower cases; str.lower gives "i" + U+0307).
_BEFORE_LOWER = {0x2019: "'", 0x130: "i"}
_SEPARATOR = "\x00"


def refusal_pattern(phrases: Iterable[str] | None = None) -> re.Pattern[str]:
    """A compiled, case-insensitive alternation of ``phrases`` (default set when ``None``)."""
    return re.compile("|".join(re.escape(p) for p in _phrases(phrases)), re.IGNORECASE)


def _phrases(phrases: Iterable[str] | None) -> list[str]:
    chosen = DEFAULT_REFUSAL_PHRASES if phrases is None else tuple(phrases)
    if not chosen:
        raise ValueError("refusal_phrases must hold at least one phrase; got an empty set")
    return sorted({p.lower().replace("’", "'") for p in chosen}, key=len, reverse=True)


class RefusalMatcher:
    """Which answers open with a refusal phrase (see the module docstring).

    Parameters
    ----------
    phrases
        The phrases; :data:`DEFAULT_REFUSAL_PHRASES` when ``None``.
    scan_chars
        Characters of each answer searched.

    Examples
    --------
    >>> RefusalMatcher(["computer says no"]).flags(["COMPUTER SAYS NO.", "I'm sorry."]).tolist()
    [True, False]
    """

    def __init__(self, phrases: Iterable[str] | None = None, *, scan_chars: int = REFUSAL_SCAN_CHARS) -> None:
        if scan_chars < 1:
            raise ValueError(f"scan_chars must be >= 1; got {scan_chars!r}")
        chosen = _phrases(phrases)
        self.scan_chars = scan_chars
        self.pattern = re.compile("|".join(re.escape(p) for p in chosen), re.IGNORECASE)
        self._after_lower = {member: chr(group[0]) for group in _SAME_LETTER for member in group[1:]}
        folded = sorted({self._fold(p) for p in chosen})
        if any(_SEPARATOR in p for p in folded) or "" in folded:
            raise ValueError(f"refusal phrases must be non-empty and free of NUL; got {chosen!r}")
        self._automaton = ahocorasick_rs.AhoCorasick(folded, matchkind=ahocorasick_rs.MatchKind.Standard)

    def _fold(self, text: str) -> str:
        if text.isascii():
            return text.lower()  # the common case; ASCII needs no table
        return text.translate(_BEFORE_LOWER).lower().translate(self._after_lower)

    def flags(self, texts: Sequence[str]) -> np.ndarray:
        """Per text, does its opening hold a phrase? (bool array)"""
        out = np.zeros(len(texts), dtype=bool)
        if not texts:
            return out
        openings = [text[:self.scan_chars] for text in texts]
        folded = [self._fold(opening) for opening in openings]
        # Where each opening ends in the joined text; a phrase holds no NUL, so no hit spans two.
        ends = np.cumsum([len(f) + 1 for f in folded])
        hits = self._automaton.find_matches_as_indexes(_SEPARATOR.join(folded))
        if not hits:
            return out
        search = self.pattern.search
        for index in np.unique(np.searchsorted(ends, [start for _, start, _ in hits], side="right")).tolist():
            out[index] = search(openings[index].replace("’", "'")) is not None
        return out

    def matches(self, text: str) -> bool:
        """Does ``text`` open with a refusal phrase?"""
        return bool(self.flags([text])[0])
