"""Neutralising untrusted text on output: spreadsheet formulas in CSV, control sequences on a terminal.

Model ids, tenant ids, labels and query results come from whoever sends
events. Written raw they can attack the analyst reading them:

- a CSV cell starting with ``=``, ``+``, ``-``, ``@``, a tab or a carriage
  return is a formula to Excel, LibreOffice and Google Sheets
  (``=HYPERLINK(...)``, DDE ``=cmd|'/C calc'!A0``). :func:`csv_cell`
  prefixes such a cell with ``'``, as OWASP's "CSV Injection" page advises
  (https://owasp.org/www-community/attacks/CSV_Injection); the full-width
  forms of those characters are treated the same way.
- ESC starts CSI sequences (``ESC [ 2J`` clears the screen) and OSC ones
  (``ESC ] 52`` writes the clipboard, ``ESC ] 8`` forges a hyperlink); C1
  controls do the same in one byte, BS and CR overwrite what came before,
  and bidi overrides reorder what is shown (Boucher and Anderson 2021,
  "Trojan Source", arXiv:2111.00169). :func:`terminal_text` shows each of
  them as a visible escape (``\\x1b``, ``\\u202e``) instead.

Numbers and other non-strings pass :func:`csv_cell` unchanged; only text can
carry a formula.

Examples
--------
>>> csv_cell("=HYPERLINK(\\"http://x\\")"), csv_cell("-1+2"), csv_cell(-12), csv_cell("gpt-4o")
('\\'=HYPERLINK("http://x")', "'-1+2", -12, 'gpt-4o')
>>> terminal_text("bot\\x1b]0;pwned\\x07\\u202e")
'bot\\\\x1b]0;pwned\\\\x07\\\\u202e'
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

__all__ = ["FORMULA_STARTS", "csv_cell", "csv_row", "terminal_row", "terminal_text"]

FORMULA_STARTS = frozenset("=+-@\t\r\n\uff1d\uff0b\uff0d\uff20")

# C0 controls but tab and newline, DEL, C1 controls; bidi embeddings, overrides, isolates and marks; the
# Unicode line and paragraph separators, which some terminals treat as newlines.
_CONTROLS = "\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069"
_UNSAFE = re.compile(f"[{_CONTROLS}]")
_UNSAFE_OR_BREAK = re.compile(f"[{_CONTROLS}\t\n]")


def _escape(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def csv_cell(value: Any) -> Any:
    """``value`` safe for a spreadsheet: text that would start a formula gets a leading ``'``."""
    if isinstance(value, str) and value and value[0] in FORMULA_STARTS:
        return "'" + value
    return value


def csv_row(values: Iterable[Any]) -> list[Any]:
    """:func:`csv_cell` of each value, for ``csv.writer(...).writerow``."""
    return [csv_cell(value) for value in values]


def terminal_text(value: Any, *, keep_newlines: bool = False) -> str:
    """``str(value)`` with every control, escape and bidi character shown as a visible escape.

    Tabs and newlines are escaped too (a table cell stays on one line) unless
    ``keep_newlines``, for free text printed on its own.
    """
    text = value if isinstance(value, str) else str(value)
    return (_UNSAFE if keep_newlines else _UNSAFE_OR_BREAK).sub(_escape, text)


def terminal_row(values: Iterable[Any]) -> list[str]:
    """:func:`terminal_text` of each value, for a table printed to a terminal."""
    return [terminal_text(value) for value in values]
