"""The batch refusal matcher gives exactly the regular expression's answers."""

from __future__ import annotations

import re
import sys

import numpy as np
import pytest

from detectors.refusal import _SAME_LETTER, DEFAULT_REFUSAL_PHRASES, RefusalMatcher, refusal_pattern


def _by_expression(texts: list[str], phrases: list[str] | None = None) -> list[bool]:
    pattern = refusal_pattern(phrases)
    return [pattern.search(t[:400].replace("’", "'")) is not None for t in texts]


def test_default_multilingual_phrases_match_as_the_expression_does() -> None:
    rng = np.random.default_rng(3)
    fillers = ["Sure, here it is. ", "Voilà — ", "Конечно. ", "好的。", "ΣΑΣ ", "İstanbul ", "straße ", ""]
    texts = []
    for phrase in DEFAULT_REFUSAL_PHRASES:
        for variant in (phrase, phrase.upper(), phrase.title(), phrase.replace("'", "’"), phrase[:-1]):
            before = "".join(rng.choice(fillers, size=int(rng.integers(0, 4))))
            texts.append(before + variant + " more words")
    texts += ["x" * 398 + "I cannot", "x" * 392 + "I cannot", "", "ı'M SORRY", "İ'm sorry", "\x00i cannot"]
    found = RefusalMatcher().flags(texts).tolist()
    assert found == _by_expression(texts)
    assert sum(found) > len(DEFAULT_REFUSAL_PHRASES) * 3  # most variants are refusals


def test_custom_phrases_with_odd_letters_match_as_the_expression_does() -> None:
    phrases = ["weiß nicht", "σας", "ı refuse", "no WAY", "вот"]
    texts = ["ICH WEIẞ NICHT", "ich weiss nicht", "ΣΑΣ λέω", "I REFUSE", "i refuse", "No way!", "ᲀот так",
             "ВОТ", "nothing here"]
    assert RefusalMatcher(phrases).flags(texts).tolist() == _by_expression(texts, phrases)
    with pytest.raises(ValueError, match="at least one"):
        RefusalMatcher([])
    with pytest.raises(ValueError, match="NUL"):
        RefusalMatcher(["a\x00b"])


def test_fold_finds_every_character_the_expression_accepts() -> None:
    # Over every code point: whatever re.IGNORECASE lets stand for a phrase's letter, the
    # matcher's fold maps to that letter's fold, so the automaton never misses a hit.
    matcher = RefusalMatcher()
    everything = "".join(chr(c) for c in range(0x110000) if not 0xD800 <= c < 0xE000)
    folded = matcher._fold(everything)
    assert len(folded) == len(everything)  # one character per character (İ is handled before lowering)
    letters = sorted({c for phrase in DEFAULT_REFUSAL_PHRASES for c in phrase.lower()} | set("isk"))
    for letter in letters:
        target = matcher._fold(letter)
        for hit in re.finditer(re.escape(letter), everything, re.IGNORECASE):
            assert folded[hit.start()] == target, (letter, hit.group())


@pytest.mark.skipif(sys.version_info < (3, 11), reason="re._casefix appeared in Python 3.11")
def test_same_letter_groups_are_those_of_this_python() -> None:
    from re import _casefix  # type: ignore[attr-defined]

    groups = {tuple(sorted((c, *others))) for c, others in _casefix._EXTRA_CASES.items()}
    assert groups == {tuple(sorted(group)) for group in _SAME_LETTER}
