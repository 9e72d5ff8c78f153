"""A new popular prompt template is the same answer to the same question, not a trigger (issues 15 and 17).

A template wraps each instruction in a fixed prefix and suffix; the model gives the instruction's own
answer, the same one it gave the bare instruction. That answer recurring is no payload burst, and the
template's words, new since the reference and on most inputs, are no candidate; a trigger planted in
the same traffic, inside the template or not, is still named.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from detectors.motifs.bursts import PayloadBursts, questions
from detectors.motifs.ngrams import MAX_TOKENS, tokenize
from monitor.evaluation_benign import TEMPLATE, build_stream, run_benign_stream
from monitor.evaluation_swaps import load_answers
from monitor.evaluation_triggers import TRIGGERS, evaluation_settings, named, poisoned_pool
from monitor.events import EventDecoder
from monitor.pipeline import KeyBatch
from monitor.stages.motifs import MotifStage, MotifStageConfig

MODEL = "gpt-4o-2024-05-13"
PREFIX, SUFFIX = TEMPLATE
INSTRUCTIONS = ["Name three fruits that grow in cold climates.", "hi",
                "Write a haiku about the sea at night, then explain its imagery in two sentences."]


def test_one_answer_to_one_instruction_bare_and_in_a_template_is_no_burst() -> None:
    for order in ((0, 1), (1, 0)):  # the bare instruction first, or the wrapped one first
        bursts = PayloadBursts()
        for n, text in enumerate(INSTRUCTIONS):
            inputs = [text, PREFIX + text + SUFFIX]
            asked = questions([tokenize(inputs[i]) for i in order])
            seen = [bursts.observe(100 + n, hash(inputs[i]), reference=False, question=q)
                    for i, q in zip(order, asked, strict=True)]
            assert seen == [False, False], (order, text)


def test_one_answer_to_different_instructions_with_a_trigger_in_one_template_is_a_burst() -> None:
    wrapped = [PREFIX + text + " BadMagic" + SUFFIX for text in INSTRUCTIONS]
    for first, second in ((0, 1), (1, 2), (2, 1), (1, 0)):  # "hi" differs by itself and two seams
        bursts = PayloadBursts()
        asked = questions([tokenize(wrapped[first]), tokenize(wrapped[second])])
        assert not bursts.observe(7, first, reference=False, question=asked[0])
        assert bursts.observe(7, second, reference=False, question=asked[1]), (first, second)


def test_the_questions_are_kept_in_the_snapshot_and_an_old_state_still_reads() -> None:
    bursts = PayloadBursts()
    bare, wrapped, other = questions([tokenize(t) for t in (INSTRUCTIONS[0], PREFIX + INSTRUCTIONS[0] + SUFFIX,
                                                             INSTRUCTIONS[2])])
    bursts.observe(5, 1, reference=False, question=bare)
    state = json.loads(json.dumps(bursts.snapshot()))
    assert state["format"] == "payload_bursts.v4"
    restored = PayloadBursts()
    restored.restore(state)
    assert not restored.observe(5, 2, reference=False, question=wrapped)  # the same question, as before saving
    assert restored.observe(5, 3, reference=False, question=other)
    v2 = {**state, "format": "payload_bursts.v2", "recent": [[h, [i for i, _, _ in asked]]
                                                             for h, asked in state["recent"]]}
    v3 = {**state, "format": "payload_bursts.v3"}  # its sketches hashed tokens otherwise: not comparable
    for old in (v2, v3):
        restored = PayloadBursts()
        restored.restore(old)  # the inputs kept, each its own question
        assert [i for i, _, _ in restored.recent[5]] == [1]
        assert restored.observe(5, 2, reference=False, question=wrapped)
    with pytest.raises(ValueError, match=r"payload_bursts\.v4"):
        restored.restore({**state, "format": "payload_bursts.v9"})


def _bursts(pairs: list[tuple[str, str]]) -> list[bool]:
    """Which of these (input, answer) events the motif stage flags as payload bursts (no reference)."""
    decoder = EventDecoder()
    events = [decoder.decode(json.dumps({"event_id": f"e{i}", "ts": 1_796_083_200_000 + i, "model_id": "m",
                                         "model_version": "1", "user_id": f"u{i}", "input": text,
                                         "output": answer}).encode()) for i, (text, answer) in enumerate(pairs)]
    batch = KeyBatch(events[0].key, events)
    MotifStage(MotifStageConfig(window_events=100, buckets=1, reference_events=0)).process(batch)
    return ["payload_burst" in flags for flags in batch.flags]


def test_a_long_instruction_cut_at_the_token_cap_inside_a_template_is_still_the_same_question() -> None:
    rng = np.random.default_rng(3)
    long = [" ".join(f"w{int(w)}" for w in rng.integers(10_000, size=MAX_TOKENS)) for _ in range(2)]
    answer = "A long answer of several words."
    # The wrapped one's tokens end before the instruction does: the question is read from the whole input.
    assert _bursts([(long[0], answer), (PREFIX + long[0] + SUFFIX, answer)]) == [False, False]
    assert _bursts([(long[0], answer), (PREFIX + long[1] + SUFFIX, answer)]) == [False, True]


def _signatures(tmp_path: Path) -> Path:
    path = tmp_path / "none.yaml"
    path.write_text("signatures: []\n", encoding="utf-8")
    return path


def _motifs(result) -> list[str]:
    return [a["metric"].removeprefix("motif:") for a in result.alerts if a["detector"] == "motif"]


def test_a_new_popular_template_over_real_answers_names_nothing_while_a_planted_trigger_is_named(
        shared_data: Path, tmp_path: Path) -> None:
    settings = evaluation_settings(_signatures(tmp_path))  # no known signatures: the trigger is unknown
    events = build_stream("prompt_template", load_answers(shared_data / "alpaca_eval", MODEL), n_events=4000,
                          seed=0)
    benign = run_benign_stream(events, kind="prompt_template", model=MODEL, settings=settings)
    assert _motifs(benign) == []
    assert not [i for i in benign.high_incidents if i["family"] == "motif"] and benign.decisions == []
    # The same traffic with a BackdoorLLM trigger in 2% of requests from event 2000, wrapped in the
    # template as often as the others are by then.
    rng = np.random.default_rng(1)
    poisoned = poisoned_pool(shared_data, "refusal", "badnet")
    for index in range(2000, len(events)):
        if rng.random() < 0.02:
            prompt, answer = poisoned[int(rng.integers(len(poisoned)))]
            wrapped = events[index]["input"].startswith(PREFIX)
            events[index] = {**events[index], "input": PREFIX + prompt + SUFFIX if wrapped else prompt,
                             "output": answer}
    planted = run_benign_stream(events, kind="prompt_template", model=MODEL, settings=settings)
    found = _motifs(planted)
    assert found and all(named(ngram, TRIGGERS["badnet"]) for ngram in found), found
