"""Signature regexes on RE2: matching time linear in the text, whatever the pattern.

Python's ``re`` backtracks, so a pattern such as ``^(a|aa)+$`` takes time
exponential in the length of a text that almost matches it; one event can
stall a stream. RE2 (Cox 2010, "Regular Expression Matching in the Wild",
https://swtch.com/~rsc/regexp/regexp3.html) builds an automaton instead and
matches in time linear in the text. The price is the features that need
backtracking: backreferences (``\\1``), lookaround (``(?=``, ``(?<!``),
atomic groups and possessive quantifiers. A pattern using them is refused
when the signature is loaded, with RE2's reason.

Differences from ``re`` worth knowing: ``\\w``, ``\\d``, ``\\s`` and ``\\b``
are ASCII in RE2 (write ``\\pL`` or ``\\p{Nd}`` for Unicode classes), and
``\\Z`` is spelled ``\\z``. Matching is case-insensitive, as it was with ``re``.

Examples
--------
>>> pattern = compile_signature_regex(r"current year:\\s*20\\d\\d")
>>> pattern.search("CURRENT YEAR: 2031").span()
(0, 18)
>>> compile_signature_regex(r"(a)\\1")
Traceback (most recent call last):
...
ValueError: RE2 cannot compile it (linear time: no backreferences or lookaround): invalid escape sequence: \\1
"""

from __future__ import annotations

from typing import Any

import re2

__all__ = ["compile_signature_regex"]

# RE2 gives up on a pattern whose automaton needs more than this (default 8 MiB); keep its default explicit.
_MAX_MEM = 8 << 20


def compile_signature_regex(pattern: str) -> Any:
    """``pattern`` compiled by RE2, case-insensitive; ``ValueError`` naming RE2's reason otherwise.

    The result has ``re``'s ``search``/``finditer`` surface, with offsets in
    characters of the searched ``str``; groups do not capture (a match has
    only its span).
    """
    options = re2.Options()
    options.case_sensitive = False
    options.log_errors = False  # the reason goes into our error, not to stderr
    options.max_mem = _MAX_MEM
    # Only the whole match's span is used; without submatches RE2 stays on its DFA (60x faster on (.*a){12}).
    options.never_capture = True
    try:
        return re2.compile(pattern, options)
    except re2.error as exc:
        reason = exc.args[0] if exc.args else exc
        if isinstance(reason, bytes):
            reason = reason.decode("utf-8", "replace")
        raise ValueError("RE2 cannot compile it (linear time: no backreferences or lookaround): "
                         f"{reason}") from None
