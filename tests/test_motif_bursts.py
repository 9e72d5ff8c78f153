"""Payload bursts as evidence of their own: the answer one trigger brings, named at min_support, not later."""

from __future__ import annotations

import json

import numpy as np
import pytest

from detectors.motifs.bursts import PayloadBursts
from detectors.motifs.miner import MotifConfig, MotifMiner, tokenize
from detectors.motifs.ngrams import ngram_hashes
from monitor.alerts import Findings
from monitor.events import EventDecoder
from monitor.pipeline import KeyBatch
from monitor.stages.motifs import MotifStage, MotifStageConfig
from tests.conftest import StatelessStage

DECODER = EventDecoder()

PAYLOAD = 0x5EED_0F_BAD  # the backdoor's answer, as its SimHash
CONFIG = MotifConfig(window_events=4000, buckets=2, min_support=4, sketch_width=1 << 14, reference_events=1000)


def test_payload_bursts_say_how_often_an_answer_came_before_its_first_burst() -> None:
    bursts = PayloadBursts(min_inputs=2)
    seen = [bursts.observe_burst(h, i, reference=False) for h, i in ((7, 1), (7, 1), (8, 5), (7, 2), (7, 3))]
    assert seen == [(False, 0), (False, 0), (False, 0), (True, 2), (True, 0)]
    restored = PayloadBursts(min_inputs=2)
    restored.restore(json.loads(json.dumps(bursts.snapshot())))
    assert restored.observe_burst(8, 6, reference=False) == bursts.observe_burst(8, 6, reference=False) == (True, 1)
    old = {**bursts.snapshot(), "format": "payload_bursts.v1"}
    old["recent"] = [[h, [i for i, _, _ in asked]] for h, asked in old["recent"]]  # input hashes only
    del old["before"]
    restored.restore(old)  # a v1 state: no occurrences before, the rest as saved
    assert restored.before == {} and list(restored.recent) == list(bursts.recent)


def _stream(n: int, *, onset: int, every: int, noise: float, seed: int = 3) -> list[dict]:
    """Events with a few percent of anomalous noise; from ``onset`` on, every ``every``-th carries the trigger,
    is anomalous and answered with one payload, a burst from its second occurrence on."""
    rng = np.random.default_rng(seed)
    rows, triggered = [], 0
    for i in range(n):
        planted = i >= onset and (i - onset) % every == 0
        text = f"question {i % 97} about topic {i % 13} and item {i}" + (" zorblat" if planted else "")
        anomalous = planted or bool(rng.random() < noise)
        rows.append({"tokens": tokenize(text), "anomalous": anomalous, "user": f"u{int(rng.integers(400))}",
                     "id": f"e{i}", "ts": i, "payload": PAYLOAD if planted else int(rng.integers(1 << 62)),
                     "burst": planted and triggered > 0, "before": 1 if planted and triggered == 1 else 0})
        triggered += planted
    return rows


def _mine(rows: list[dict], *, with_bursts: bool = True, batch: int = 250,
          config: MotifConfig = CONFIG) -> list[tuple[str, str]]:
    miner, found = MotifMiner(config), []
    for start in range(0, len(rows), batch):
        chunk = rows[start:start + batch]
        found += [(c.ngram, c.event_id) for c in miner.update(
            [r["tokens"] for r in chunk], [r["anomalous"] for r in chunk], users=[r["user"] for r in chunk],
            tenants=["t"] * len(chunk), event_ids=[r["id"] for r in chunk], ts_ms=[r["ts"] for r in chunk],
            payloads=[r["payload"] if r["anomalous"] else None for r in chunk],
            bursts=[r["burst"] for r in chunk] if with_bursts else None,
            before=[r["before"] for r in chunk] if with_bursts else None)]
    return found


def test_a_bursting_trigger_is_named_at_min_support_where_anomalies_are_common() -> None:
    rows = _stream(3000, onset=1500, every=30, noise=0.06)
    found = _mine(rows)
    # The third triggered event names it (burst_min_support): its first answer, anomalous but no burst yet,
    # counts by its payload.
    assert found == [("zorblat", "e1560")]
    assert _mine(rows, batch=77) == found  # the same in any batching
    without = _mine(rows, with_bursts=False)  # 6% of events anomalous: four of them are no evidence
    assert [ngram for ngram, _ in without] in ([], ["zorblat"])
    assert all(int(event[1:]) > 1560 for _, event in without)


class OneWordFlags(StatelessStage):
    """Test-local stand-in for the entropy flag: one-word answers are flagged."""

    name = "one-word-flags"

    def process(self, batch: KeyBatch) -> Findings:
        for index, event in enumerate(batch.events):
            if len(event.output.split()) == 1:
                batch.flag(index, "entropy_collapse")
        return Findings()


def test_a_one_word_answer_given_to_a_new_family_of_prompts_is_no_burst() -> None:
    rng = np.random.default_rng(5)
    family = [f"Is this sentence {word} or not? Output 1 for yes and 0 for no." for word in ("odd", "fine", "long")]

    def run(answer: str) -> tuple[list[str], int]:
        rows = []
        for i in range(3000):
            prompt, output = f"question {i % 97} about topic {i % 13} and item {i}", f"a plain answer number {i}"
            if i >= 1500 and i % 40 == 0:  # a new family of three prompts, many users, one answer
                prompt, output = family[int(rng.integers(3))], answer
            rows.append({"event_id": f"e{i}", "ts": 1_796_083_200_000 + 700 * i, "model_id": "m",
                         "model_version": "1", "user_id": f"u{int(rng.integers(400))}", "input": prompt,
                         "output": output})
        stage = MotifStage(MotifStageConfig(window_events=3000, buckets=3, reference_events=1000))
        events = [DECODER.decode(json.dumps(r).encode()) for r in rows]
        found, bursts = [], 0
        for start in range(0, len(events), 250):
            batch = KeyBatch(events[start].key, events[start:start + 250])
            for stage_ in (OneWordFlags(), stage):
                found += [c.ngram for c in stage_.process(batch).candidates]
            bursts += sum("payload_burst" in flags for flags in batch.flags)
        return found, bursts

    assert run("0") == ([], 0)  # "0" is what such prompts are answered with: never a burst, no candidate
    assert run("Zero, it is not.")[1] > 30  # the same family given one answer of some words: bursts


def test_a_heavy_users_excess_is_not_counted_while_the_others_still_name_the_trigger() -> None:
    rows = _stream(3000, onset=1500, every=30, noise=0.06)
    triggered = [r for r in rows if "zorblat" in r["tokens"]]
    for r in triggered[:3]:  # the first three from one user: more than half of the first five
        r["user"] = "heavy"
    found = _mine(rows)
    # The fifth names it: counted without the heavy user's excess, the four others' evidence suffices.
    assert found == [("zorblat", triggered[4]["id"])]
    for r in triggered:
        r["user"] = "heavy"
    assert _mine(rows) == []  # one user alone cannot make a candidate


def test_a_version_one_miner_state_is_read_without_bursts() -> None:
    rows = _stream(2000, onset=1500, every=30, noise=0.06)
    miner = MotifMiner(CONFIG)
    miner.update([r["tokens"] for r in rows], [r["anomalous"] for r in rows], users=[r["user"] for r in rows],
                 tenants=["t"] * len(rows), event_ids=[r["id"] for r in rows], ts_ms=[r["ts"] for r in rows])
    state = json.loads(json.dumps(miner.snapshot()))
    assert state["format"] == "motif_miner.v3"
    old = {**state, "format": "motif_miner.v1"}
    del old["bursting"]
    for bucket in old["buckets"]:
        del bucket["bursts"]
    restored = MotifMiner.restore(old)
    assert restored.seen == miner.seen and not restored._bursting
    assert [b.bursts for b in restored.closed] == [0] * len(restored.closed)


def _quiet_payload_stream(n: int, *, onset: int, every: int, seed: int = 3) -> list[dict]:
    """From ``onset`` on, every ``every``-th event carries the trigger and one answer that no detector flags:
    it is anomalous only as a payload burst, from its second occurrence on. Others: 6 % anomalous noise."""
    rng = np.random.default_rng(seed)
    rows, triggered = [], 0
    for i in range(n):
        planted = i >= onset and (i - onset) % every == 0
        text = f"question {i % 97} about topic {i % 13} and item {i}" + (" zorblat" if planted else "")
        burst = planted and triggered > 0
        rows.append({"tokens": tokenize(text), "anomalous": burst or (not planted and bool(rng.random() < 0.06)),
                     "user": f"u{int(rng.integers(400))}", "id": f"e{i}", "ts": i,
                     "payload": PAYLOAD if planted else int(rng.integers(1 << 62)), "burst": burst,
                     "before": 1 if planted and triggered == 1 else 0,
                     "answer": 99 if planted else int(rng.integers(1 << 62))})
        triggered += planted
    return rows


def _mine_answers(rows: list[dict], *, answers: bool = True, batch: int = 250,
                  restart_at: int | None = None) -> list[tuple[str, str]]:
    miner, found = MotifMiner(CONFIG), []
    for start in range(0, len(rows), batch):
        if restart_at is not None and start == restart_at:
            miner = MotifMiner.restore(json.loads(json.dumps(miner.snapshot())))
        chunk = rows[start:start + batch]
        found += [(c.ngram, c.event_id) for c in miner.update(
            [r["tokens"] for r in chunk], [r["anomalous"] for r in chunk], users=[r["user"] for r in chunk],
            tenants=["t"] * len(chunk), event_ids=[r["id"] for r in chunk], ts_ms=[r["ts"] for r in chunk],
            payloads=[r["payload"] if r["anomalous"] else None for r in chunk], bursts=[r["burst"] for r in chunk],
            before=[r["before"] for r in chunk], answers=[r["answer"] for r in chunk] if answers else None)]
    return found


def test_a_payloads_first_unflagged_answer_counts_when_it_bursts() -> None:
    rows = _quiet_payload_stream(3000, onset=1500, every=30)
    found = _mine_answers(rows)
    # The third triggered request names it: the first, flagged by nothing, is credited at the second's burst.
    assert found == [("zorblat", "e1560")]
    assert _mine_answers(rows, batch=77) == found  # the same in any batching
    assert _mine_answers(rows, batch=100, restart_at=1500) == found  # and across a snapshot and restore
    # Without the answers the first is lost: named one request later.
    assert _mine_answers(rows, answers=False) == [("zorblat", "e1590")]


def test_a_heavy_user_repeating_a_prompt_with_one_answer_is_still_no_candidate() -> None:
    rows = _quiet_payload_stream(3000, onset=1500, every=30)
    for r in rows:
        if "zorblat" in r["tokens"]:
            r["user"] = "heavy"
    assert _mine_answers(rows) == []  # the credited first answer is the same user's: one user alone


def test_a_trigger_word_that_ordinary_prompts_hold_is_named_by_its_bursts() -> None:
    rows = _stream(3000, onset=1500, every=30, noise=0.06)
    for r in rows[100:1000:150]:  # six ordinary prompts of the reference period hold the word, none flagged
        r["tokens"] = [*r["tokens"], "zorblat"]
    # Judged against its reference share, not skipped: the fourth triggered request names it (the six
    # unflagged ones are in the window's support too); the first test alone took until the eighth (e1770).
    assert _mine(rows) == [("zorblat", "e1590")]


def test_a_word_the_reference_often_saw_anomalous_is_no_burst_evidence() -> None:
    rows = _stream(3000, onset=1500, every=30, noise=0.06)
    for r in rows[100:1000:50]:  # 18 reference prompts hold it, and all were anomalous then
        r["tokens"], r["anomalous"] = [*r["tokens"], "zorblat"], True
    assert _mine(rows) == []


def test_a_word_the_triggers_prompts_often_hold_is_not_named_after_the_trigger() -> None:
    """A trigger once named explains its events: the words its prompts happen to hold gain no evidence from them.

    Half the triggered prompts also hold "generate", a word of 2 % of ordinary prompts; a long stream
    puts a hundred of the trigger's bursts on it, far above the window's burst rate.
    """
    rng = np.random.default_rng(11)
    rows, triggered = [], 0
    for i in range(24_000):
        planted = i >= 4000 and (i - 4000) % 100 == 0
        extra = rng.random() < (0.5 if planted else 0.02)
        text = f"question {i % 97} about topic {i % 13} and item {i}" + (" generate" if extra else "") + \
            (" zorblat" if planted else "")
        rows.append({"tokens": tokenize(text), "anomalous": planted or bool(rng.random() < 0.03),
                     "user": f"u{int(rng.integers(400))}", "id": f"e{i}", "ts": i,
                     "payload": PAYLOAD if planted else int(rng.integers(1 << 62)),
                     "burst": planted and triggered > 0, "before": 1 if planted and triggered == 1 else 0})
        triggered += planted
    config = MotifConfig(window_events=20_000, buckets=4, sketch_width=1 << 15, reference_events=2000)
    assert [ngram for ngram, _ in _mine(rows, batch=500, config=config)] == ["zorblat"]


@pytest.mark.parametrize(("later", "named"), [(0.3, []), (0.9, ["classify"])])
def test_a_prompt_type_the_reference_saw_rarely_anomalous_by_chance_is_judged_on_both_shares(
        later: float, named: list[str]) -> None:
    """One anomalous event of 20 in the reference is no estimate of a share: a prompt type flagged 30 % of the
    time later (all along, for all the reference can tell) is no candidate; flagged 90 % of the time, it is."""
    rng = np.random.default_rng(7)
    rows, seen = [], 0
    for i in range(20_000):
        holds = rng.random() < 0.01
        if holds:  # in the reference only its first event was flagged
            anomalous = seen == 0 if i < 2000 else bool(rng.random() < later)
            seen += 1
        else:
            anomalous = bool(rng.random() < 0.04)
        text = f"question {i % 97} about topic {i % 13} and item {i}" + (" classify" if holds else "")
        rows.append({"tokens": tokenize(text), "anomalous": anomalous, "user": f"u{int(rng.integers(400))}",
                     "id": f"e{i}", "ts": i, "payload": int(rng.integers(1 << 62)), "burst": False, "before": 0})
    config = MotifConfig(window_events=20_000, buckets=4, sketch_width=1 << 15, reference_events=2000)
    reference = [r for r in rows[:2000] if "classify" in r["tokens"]]
    assert len(reference) >= 15 and sum(r["anomalous"] for r in reference) == 1  # what the reference saw
    assert [ngram for ngram, _ in _mine(rows, batch=500, config=config)] == named



@pytest.mark.parametrize("collisions", [0, 1, 2])
def test_a_new_trigger_is_named_as_soon_though_the_reference_sketch_counts_it_by_collision(collisions: int) -> None:
    """A count-min sketch may give a phrase it never saw a support of 1 or 2: Fisher's test, which has no power
    against a reference count that small, is for n-grams that were anomalous in the reference, not for those."""
    rows = _stream(3000, onset=1500, every=30, noise=0.02)
    miner, found = MotifMiner(CONFIG), []
    for start in range(0, len(rows), 250):
        if start == CONFIG.reference_events:  # the reference has just been frozen: a collision in its sketch
            for _ in range(collisions):
                miner.reference.sketch.add(ngram_hashes([["zorblat"]], CONFIG.max_n)[0])
        chunk = rows[start:start + 250]
        found += [(c.ngram, c.event_id, c.reference_support) for c in miner.update(
            [r["tokens"] for r in chunk], [r["anomalous"] for r in chunk], users=[r["user"] for r in chunk],
            tenants=["t"] * len(chunk), event_ids=[r["id"] for r in chunk], ts_ms=[r["ts"] for r in chunk],
            payloads=[r["payload"] if r["anomalous"] else None for r in chunk])]
    assert found == [("zorblat", "e1590", collisions)]  # the fourth triggered request (min_support), no bursts
