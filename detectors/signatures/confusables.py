"""A homoglyph-folding table from Unicode's confusables data (UTS #39).

Unicode Technical Standard #39, section 4 ("Confusable Detection"), defines
the *skeleton* of a string: every character replaced by the prototype of its
confusable class, so that two strings that look alike have equal skeletons.
The data ships in ``confusables.txt`` as ``source ; prototype`` pairs.

The ``confusable-homoglyphs`` package (MIT) carries that data as a symmetric
map: each side of a pair lists the other. The direction is lost, but the
classes are not: every connected component of the pair graph is one class.
This module picks one representative per class, so folding every member to
it gives equal strings exactly when the skeletons are equal. Loading the
file is the caller's job (this package does no I/O).

Examples
--------
>>> table = fold_table({"а": ["a"], "a": ["а", "ɑ"], "m": ["rn"], "rn": ["m"]})
>>> "mаɑ".translate(table)
'rnaa'
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable, Mapping

__all__ = ["cased_fold_table", "fold_table"]

# The upstream generator wraps right-to-left characters in LEFT-TO-RIGHT MARKs
# for display; they are not part of the character.
_DISPLAY_MARKS = "\u200e\u200f"


def _clean(text: str) -> str:
    return text.strip(_DISPLAY_MARKS)


def _fold_case(text: str) -> str:
    return unicodedata.normalize("NFKC", text).casefold()


def _classes(pairs: Mapping[str, Iterable[str]]) -> tuple[list[list[str]], dict[str, int]]:
    """Connected components of the pair graph (union-find), and each node's degree."""
    parent: dict[str, str] = {}

    def find(node: str) -> str:
        root = node
        while parent.setdefault(root, root) != root:
            root = parent[root]
        while parent[node] != root:  # path compression keeps later finds short
            parent[node], node = root, parent[node]
        return root

    degree: dict[str, int] = {}
    for key, others in pairs.items():
        left = _clean(key)
        for other in others:
            right = _clean(other)
            if not left or not right or left == right:
                continue
            degree[left] = degree.get(left, 0) + 1
            degree[right] = degree.get(right, 0) + 1
            root_left, root_right = find(left), find(right)
            if root_left != root_right:
                parent[root_left] = root_right
    classes: dict[str, list[str]] = {}
    for node in parent:
        classes.setdefault(find(node), []).append(node)
    return list(classes.values()), degree


def cased_fold_table(pairs: Mapping[str, Iterable[str]]) -> dict[int, str]:
    """A table for text *before* case folding: non-ASCII look-alikes of ASCII capitals.

    Case folding first would turn Cyrillic ``Н`` into ``н``, which looks like
    no Latin letter; folded first, it becomes ``h`` as ``H`` does. Only
    classes with an ASCII capital are concerned, and only their non-ASCII
    members: ASCII letters keep their case folding (``I`` is ``i``, not ``l``).

    Examples
    --------
    >>> cased_fold_table({"H": ["Н", "Η"]}) == {ord("Н"): "h", ord("Η"): "h"}
    True
    """
    classes, _ = _classes(pairs)
    table: dict[int, str] = {}
    for members in classes:
        capitals = sorted(m for m in members if len(m) == 1 and "A" <= m <= "Z")
        if not capitals:
            continue
        for member in members:
            if len(member) == 1 and not member.isascii():
                table[ord(member)] = capitals[0].lower()
    return table


def fold_table(pairs: Mapping[str, Iterable[str]]) -> dict[int, str]:
    """A ``str.translate`` table folding each confusable character to its class representative.

    Parameters
    ----------
    pairs
        Each string mapped to the strings it is confusable with (either
        direction); keys and values may be several characters long.

    Returns
    -------
    dict
        Code point of a single character to its (case-folded, NFKC)
        representative, only where that differs from the character itself.

    Notes
    -----
    A class with a multi-character member (``m`` ~ ``rn``) is represented by
    it, since only single characters can be translated. Otherwise the
    representative is the member shared by most pairs (the prototype in
    ``confusables.txt`` is the hub of its class), ties broken by code point.
    """
    classes, degree = _classes(pairs)
    table: dict[int, str] = {}
    for members in classes:
        representative = min(members, key=lambda m: (len(m) == 1, -degree.get(m, 0), m))
        folded = _fold_case(representative)
        for member in members:
            if len(member) == 1 and member != folded:
                table[ord(member)] = folded
    # Case folding may turn a representative into another class's member
    # (Greek capital omicron -> small omicron -> "o"); fold to a fixed point.
    for _ in range(4):
        changed = False
        for code, value in table.items():
            again = value.translate(table)
            if again != value:
                table[code] = again
                changed = True
        if not changed:
            break
    return {code: value for code, value in table.items() if value != chr(code)}
