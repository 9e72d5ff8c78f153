"""The behaviour stage on real answers: a silent swap is a high behaviour alert, an input-mix shift is input drift.

Streams are built from ``../shared/data/alpaca_eval`` (:mod:`monitor.evaluation_swaps`); the tests skip
without it.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from monitor.errors import ConfigError
from monitor.evaluation_swaps import (
    CONVERSATIONAL,
    default_data_dir,
    input_mix_stream,
    load_answers,
    run_stream,
    stream_events,
    swap_power,
    swap_stream,
)
from monitor.events import EventDecoder
from monitor.pipeline import Pipeline
from monitor.stages.behaviour import FLAG, BehaviourConfig, BehaviourStage, _Window

DATA = default_data_dir()
pytestmark = pytest.mark.skipif(not DATA.is_dir(), reason=f"shared alpaca_eval answers not found at {DATA}")


def test_a_swap_between_two_shared_models_is_a_high_behaviour_alert_within_the_bound() -> None:
    events, change = swap_stream(load_answers(DATA, "Mistral-7B-Instruct-v0.2"),
                                 load_answers(DATA, "Mistral-7B-Instruct-v0.3"), seed=1)
    result = run_stream(events, change, name="mistral", kind="swap")
    assert result.before == 0, result.alerts
    assert result.delay is not None and result.delay <= 805, result.alerts
    assert any(a[2] == "behaviour" and a[1] == "high" and a[0] >= change for a in result.alerts)


def test_an_input_mix_shift_raises_input_drift_and_no_high_alert_nor_rollback() -> None:
    events, change = input_mix_stream(load_answers(DATA, "gpt-4o-2024-05-13"), seed=1)
    result = run_stream(events, change, name="gpt-4o", kind="input_mix")
    assert result.input_drift >= 1
    assert result.high == 0, result.alerts
    assert result.decisions == []
    assert all(a[0] >= change for a in result.alerts if a[2] == "input_drift")


def test_snapshot_restore_mid_stream_and_any_batching_give_the_same_alerts() -> None:
    raw, _ = input_mix_stream(load_answers(DATA, "Meta-Llama-3-8B-Instruct"), seed=2)
    decoder = EventDecoder()
    events = [decoder.decode(json.dumps(e).encode()) for e in raw]
    whole = Pipeline([BehaviourStage()])
    expected = [repr(a) for a in whole.process(events).alerts]
    assert expected
    first = Pipeline([BehaviourStage()])
    found = [repr(a) for a in first.process(events[:577]).alerts]
    state = json.loads(json.dumps(first.snapshot(("assistant", "1"))))
    second = Pipeline([BehaviourStage()])
    second.restore(("assistant", "1"), state)
    for start in range(577, len(events), 97):
        found += [repr(a) for a in second.process(events[start:start + 97]).alerts]
    assert found == expected


def test_input_shifted_events_are_flagged_for_later_stages() -> None:
    raw, change = input_mix_stream(load_answers(DATA, "gpt-3.5-turbo-0613"), seed=0)
    decoder = EventDecoder()
    events = [decoder.decode(json.dumps(e).encode()) for e in raw]
    from monitor.pipeline import KeyBatch

    batch = KeyBatch(("assistant", "1"), events)
    BehaviourStage().process(batch)
    flagged = [i for i, flags in enumerate(batch.flags) if FLAG in flags]
    assert flagged and min(flagged) >= change


def test_evaluate_swaps_runs_from_the_cli(cli, shared_data) -> None:
    out = cli("evaluate", "swaps", "--data", str(shared_data)).stdout
    swaps = [line for line in out.splitlines() if " -> " in line]
    # Seed 0's order: gpt-4o -> gpt-4o-mini and Mistral v0.2 -> v0.3 are missed (docs/swaps.md).
    assert len(swaps) == 5 and sum("missed" not in line for line in swaps) >= 3
    assert "median delay:" in out and "input mix" in out


def test_swap_power_sees_a_strong_swap_and_not_a_model_against_its_own_answers() -> None:
    concise = ("Mixtral-8x7B-Instruct-v0.1", "Mixtral-8x7B-Instruct-v0.1_concise")
    itself = ("gpt-4o-2024-05-13", "gpt-4o-2024-05-13")
    strong, same = swap_power(DATA, pairs=[concise, itself], draws=20)
    assert (strong.name, strong.window, strong.draws) == (" -> ".join(concise), 200, 20)
    assert strong.power == strong.power_loose == 1.0
    # The second "model" is the first: its windows are rejected no more often than held-out answers are.
    assert same.power == 0.0 and same.power_loose <= 0.1
    assert strong.false_rate == same.false_rate == 0.0
    with pytest.raises(ValueError, match="draws must be >= 1"):
        swap_power(DATA, pairs=[concise], draws=0)
    with pytest.raises(ValueError, match="'shape' only"):
        swap_power(DATA, pairs=[concise], config=BehaviourConfig(representation="distilled"))


def test_evaluate_swaps_power_from_the_cli(cli, shared_data) -> None:
    out = cli("evaluate", "swaps", "--data", str(shared_data), "--power", "--draws", "3").stdout
    rows = [line for line in out.splitlines() if " -> " in line]
    assert len(rows) == 5 and "power at 0.0003" in out and "3 draws" in out
    refused = cli("evaluate", "swaps", "--data", str(shared_data), "--power", "--representation", "distilled",
                  check=False)
    assert refused.returncode == 2 and "--power measures the shape representation" in refused.stderr


def test_one_rejection_is_a_wobble_a_sustained_one_is_an_alert() -> None:
    events, change = swap_stream(load_answers(DATA, "gpt-3.5-turbo-0613"),
                                 load_answers(DATA, "Meta-Llama-3-8B-Instruct"), seed=0)
    decoder = EventDecoder()
    decoded = [decoder.decode(json.dumps(e).encode()) for e in events]

    def first_behaviour_alert(sustain: int) -> tuple[int, dict]:
        alerts = [a for a in Pipeline([BehaviourStage(BehaviourConfig(sustain=sustain))]).process(decoded).alerts
                  if a.detector == "behaviour"]
        assert alerts, f"no behaviour alert with sustain={sustain}"
        evidence = json.loads(alerts[0].evidence)
        return evidence["detection_index"], evidence

    at_once, _ = first_behaviour_alert(1)
    sustained, evidence = first_behaviour_alert(2)
    assert change <= at_once and sustained >= at_once + BehaviourConfig().output_every
    assert evidence["sustained_tests"] == 2
    assert [h["events"] for h in evidence["window_inputs"]["horizons"]] == [200, 300]


def test_a_brief_input_excursion_is_flagged_but_only_a_sustained_one_is_an_input_drift_alert() -> None:
    # Seed 4's order puts a run of instructions the reference lacks just before the switch: the short
    # input window rejects for a few events. Alerting at the first rejection told the SOC "what users ask
    # changed" on a stream whose questions never changed.
    raw, change = swap_stream(load_answers(DATA, "gpt-3.5-turbo-0301"), load_answers(DATA, "gpt-3.5-turbo-0613"),
                              seed=4)
    decoder = EventDecoder()
    events = [decoder.decode(json.dumps(e).encode()) for e in raw[:change]]

    def run(config: BehaviourConfig) -> tuple[list, list[int]]:
        from monitor.pipeline import KeyBatch

        batch = KeyBatch(("assistant", "1"), events)
        alerts = [a for a in BehaviourStage(config).process(batch).alerts if a.detector == "input_drift"]
        return alerts, [i for i, flags in enumerate(batch.flags) if FLAG in flags]

    at_once, flagged_at_once = run(BehaviourConfig(input_sustain=1))
    sustained, flagged = run(BehaviourConfig())
    assert at_once and flagged_at_once, "the order's excursion no longer crosses the short window's threshold"
    assert sustained == [] and flagged == flagged_at_once

    mix, shift = input_mix_stream(load_answers(DATA, "gpt-4o-2024-05-13"), seed=1)
    decoded = [decoder.decode(json.dumps(e).encode()) for e in mix]
    alerts = [a for a in Pipeline([BehaviourStage()]).process(decoded).alerts if a.detector == "input_drift"]
    assert len(alerts) == 1
    evidence = json.loads(alerts[0].evidence)
    assert evidence["sustained_tests"] == BehaviourConfig().input_sustain
    assert shift <= evidence["shift_index"] == evidence["detection_index"] - evidence["sustained_tests"] + 1


@pytest.mark.parametrize(("changes", "message"), [
    ({"sustain": 0}, "sustain must be at least 1"),
    ({"input_sustain": 0}, "input_sustain must be at least 1"),
    ({"inputs_long_window": 100}, "inputs_long_window must be at least output_window"),
    ({"inputs_long_window": 400}, "shorter than reference_events"),
])
def test_behaviour_config_rejects_windows_it_cannot_test(changes: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        BehaviourConfig(**changes)


@pytest.mark.parametrize(("version", "missing"), [("behaviour.v4", ("rejections", "shift_run")),
                                                  ("behaviour.v5", ("shift_run",))])
def test_an_older_snapshot_is_migrated_and_keeps_alerting(version: str, missing: tuple[str, ...]) -> None:
    raw, change = swap_stream(load_answers(DATA, "Mistral-7B-Instruct-v0.2"),
                              load_answers(DATA, "gpt-4o-2024-05-13"), seed=2)
    decoder = EventDecoder()
    events = [decoder.decode(json.dumps(e).encode()) for e in raw]
    first = Pipeline([BehaviourStage()])
    first.process(events[:change - 100])
    state = json.loads(json.dumps(first.snapshot(("assistant", "1"))))
    stage_state = state["stages"][BehaviourStage.name]
    stage_state["format"] = version
    stage_state["shifted"] = stage_state["shift_run"] > 0  # what v5 and older kept instead of the run
    for name in missing:
        del stage_state[name]
    second = Pipeline([BehaviourStage()])
    second.restore(("assistant", "1"), state)
    alerts = second.process(events[change - 100:]).alerts
    assert any(a.detector == "behaviour" and json.loads(a.evidence)["detection_index"] > change for a in alerts)


def test_a_shift_first_explained_by_new_inputs_pages_once_the_inputs_come_back() -> None:
    # Model A on conversational questions, then model B on tasks (new inputs: the answers' change is
    # explained), then model B on conversational questions again: the same questions, answered differently.
    first, second = load_answers(DATA, "gpt-3.5-turbo-0301"), load_answers(DATA, "Meta-Llama-3-8B-Instruct")
    rng = np.random.default_rng(0)

    def shuffled(records: list[dict], conversational: bool) -> list[dict]:
        chosen = [r for r in records if (r["dataset"] in CONVERSATIONAL) == conversational]
        return [chosen[i] for i in rng.permutation(len(chosen))]

    records = shuffled(first, True)[:450] + shuffled(second, False)[:250] + shuffled(second, True)
    decoder = EventDecoder()
    events = [decoder.decode(json.dumps(e).encode()) for e in stream_events(records, "assistant")]
    alerts = [(a.severity, json.loads(a.evidence)) for a in Pipeline([BehaviourStage()]).process(events).alerts
              if a.detector == "behaviour"]
    assert [severity for severity, _ in alerts] == ["low", "high"], alerts
    (_, low), (_, high) = alerts
    assert low["explained_by"] == "input_drift" and 450 < low["detection_index"] <= 700
    assert high["escalated"] and high["detection_index"] > 700 and not high["input_shifted"]
    assert all(h["p_value"] >= BehaviourConfig().inputs_alpha for h in high["window_inputs"]["horizons"])


@pytest.mark.parametrize("every", [1, 3, 25])
def test_window_sums_at_the_tests_equal_the_sums_of_the_rows_themselves(every: int) -> None:
    # Both ways of summing (a running sum down every row, or only between the tests' ends and starts)
    # give every span's sum of its last rows exactly, while the window fills and once it is full.
    rng = np.random.default_rng(every)
    window = _Window(40, np.zeros((0, 6), dtype=np.int64))
    rows = np.zeros((0, 6), dtype=np.int64)
    for size in (7, 50, 1, 90):
        new = rng.integers(-2**40, 2**40, size=(size, 6))
        at = np.arange(len(rows) + 1, len(rows) + size + 1) % every == 0
        got = window.extend(new, (25,), at=at)
        rows = np.concatenate([rows, new])
        ends = np.flatnonzero(at) + len(rows) - size + 1
        for (sums, counts), span in zip(got, (40, 25), strict=True):
            assert counts.tolist() == [min(end, span) for end in ends]
            assert sums.tolist() == [rows[max(end - span, 0):end].sum(axis=0).tolist() for end in ends]
