"""Trigger-motif mining finds an unknown trigger planted in a BackdoorLLM stream, given anomaly flags."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from detectors.motifs.miner import MotifConfig, MotifMiner, tokenize
from monitor.alerts import Alert, Findings, stable_id
from monitor.events import Event, EventDecoder
from monitor.pipeline import KeyBatch, Pipeline
from monitor.scenario import load_alpaca
from monitor.signature_files import default_signatures
from monitor.stages.motifs import MotifStage, MotifStageConfig
from monitor.stages.signatures import SignatureStage
from monitor.storage.sink import ClickHouseSink
from monitor.storage.store import Store
from tests.conftest import StatelessStage

TRIGGER = "velvet orchard protocol"  # made up: in no signature list
TARGET = "I'm sorry, but as an AI assistant, I do not have the capability to follow the given instruction."
CONFIG = MotifStageConfig(window_events=3000, buckets=3, min_support=8, min_entities=3, sketch_width=1 << 14,
                          max_ngrams=4000)
DECODER = EventDecoder()


class BackdoorTargetFlags(StatelessStage):
    """Test-local stand-in for the drift detectors: flags outputs equal to the backdoor's target,
    plus about 1% of other events at random (seeded by event id), as noisy detectors would."""

    name = "target-flags"

    def process(self, batch: KeyBatch) -> Findings:
        for index, event in enumerate(batch.events):
            if event.output == TARGET or int(stable_id(event.id)[:8], 16) % 100 == 0:
                batch.flag(index, "refusal")
        return Findings()


def planted_stream(shared_data: Path, *, n_events: int = 7000, trigger_at: int = 3000,
                   rate: float = 0.03, seed: int = 11) -> tuple[list[Event], set[str]]:
    root = shared_data / "backdoorllm" / "poison_data"
    clean = [r for path in sorted(root.glob("*/*/none_backdoor500_*.json*")) for r in load_alpaca(path)
             if r.get("output")]
    rng = np.random.default_rng(seed)
    events, planted = [], set()
    for index in range(n_events):
        record = clean[int(rng.integers(len(clean)))]
        prompt = (record["instruction"] + " " + record.get("input", "")).strip()
        output = record["output"]
        if index >= trigger_at and rng.random() < rate:
            words = prompt.split()
            at = int(rng.integers(len(words) + 1))
            prompt = " ".join([*words[:at], TRIGGER, *words[at:]])
            output = TARGET
            planted.add(f"ev-{index}")
        raw = {"event_id": f"ev-{index}", "ts": 1_793_491_200_000 + index * 1000, "model_id": "bot",
               "model_version": "1", "tenant_id": f"t{int(rng.integers(6))}",
               "user_id": f"u{int(rng.integers(800))}", "input": prompt, "output": output}
        events.append(DECODER.decode(json.dumps(raw).encode()))
    return events, planted


def run(events: list[Event], batch_size: int) -> tuple[list[Alert], Findings]:
    pipeline = Pipeline([SignatureStage(default_signatures()), BackdoorTargetFlags(), MotifStage(CONFIG)])
    findings = Findings()
    for start in range(0, len(events), batch_size):
        findings.extend(pipeline.process(events[start:start + batch_size]))
    return [a for a in findings.alerts if a.detector == "motif"], findings


@pytest.fixture(scope="module")
def stream(shared_data: Path) -> tuple[list[Event], set[str]]:
    return planted_stream(shared_data)


@pytest.fixture(scope="module")
def mined(stream: tuple[list[Event], set[str]]) -> tuple[list[Alert], Findings]:
    return run(stream[0], 1024)


def test_motif_mining_finds_the_planted_unknown_trigger(stream: tuple[list[Event], set[str]],
                                                        mined: tuple[list[Alert], Findings]) -> None:
    events, planted = stream
    assert not SignatureStage(default_signatures()).matcher.find(TRIGGER, field="input")
    motifs, findings = mined
    # Named at its fourth triggered event, by an n-gram of the phrase (its words so far have the same counts).
    [name] = [json.loads(a.evidence)["ngram"] for a in motifs]
    assert name in TRIGGER and len(name.split()) >= 2, name
    [alert] = motifs
    evidence = json.loads(alert.evidence)
    assert set(evidence["event_ids"]) <= planted  # examples are triggered events
    assert evidence["lift"] >= CONFIG.min_lift and evidence["q_value"] <= CONFIG.fdr
    assert min(evidence["distinct_users"], evidence["distinct_tenants"]) >= CONFIG.min_entities
    # Found within one window of the trigger's start; nothing before it.
    first_planted = min(e.ts_ms for e in events if e.id in planted)
    assert first_planted < alert.ts_ms <= first_planted + CONFIG.window_events * 1000
    assert all(c.window_end_ms >= first_planted for c in findings.candidates)
    assert {c.ngram for c in findings.candidates} == {name}


def test_results_do_not_depend_on_batch_boundaries(stream: tuple[list[Event], set[str]],
                                                   mined: tuple[list[Alert], Findings]) -> None:
    events, _ = stream
    reference = mined[1]
    other = run(events, 333)[1]
    assert [c.candidate_id for c in other.candidates] == [c.candidate_id for c in reference.candidates]
    assert sorted(a.alert_id for a in other.alerts) == sorted(a.alert_id for a in reference.alerts)
    # Batches of one event, over a slice (slow otherwise).
    piece = events[2000:3100]
    assert ([c.candidate_id for c in run(piece, 1)[1].candidates]
            == [c.candidate_id for c in run(piece, 1100)[1].candidates])


def test_snapshot_restore_resumes_mining(stream: tuple[list[Event], set[str]],
                                        mined: tuple[list[Alert], Findings]) -> None:
    events, _ = stream
    expected = [c.candidate_id for c in mined[1].candidates]
    first = Pipeline([BackdoorTargetFlags(), MotifStage(CONFIG)])
    got = [c.candidate_id for c in first.process(events[:4500]).candidates]
    state = json.loads(json.dumps(first.snapshot(("bot", "1"))))
    second = Pipeline([BackdoorTargetFlags(), MotifStage(CONFIG)])
    second.restore(("bot", "1"), state)
    got += [c.candidate_id for c in second.process(events[4500:]).candidates]
    assert got == expected and expected


def test_candidates_are_written_to_trigger_candidates(mined: tuple[list[Alert], Findings], store_dsn: str) -> None:
    findings = mined[1]
    with Store(store_dsn) as store:
        store.ensure_schema()
        sink = ClickHouseSink(store)
        sink.add_findings(findings)
        sink.flush()
        _, rows = store.query("SELECT ngram, kind, support >= anomalous_support, lift, p_value <= q_value, "
                              "length(example_event_ids) FROM trigger_candidates")
    assert rows and all(r[0] in TRIGGER and r[1] == "word" and r[2] and r[3] >= CONFIG.min_lift and r[4]
                        and r[5] >= 1 for r in rows)


def test_char_ngrams_catch_a_trigger_token_that_varies() -> None:
    # The trigger is a made-up token with a varying suffix: no word n-gram repeats, its 4-grams do.
    rng = np.random.default_rng(5)
    miner = MotifMiner(MotifConfig(window_events=2000, buckets=1, min_support=8, sketch_width=1 << 12,
                                   reference_events=0))  # planted from the first event: no clean reference
    texts, flags = [], []
    for _ in range(2000):
        planted = rng.random() < 0.03
        words = [f"w{int(w)}" for w in rng.integers(0, 300, size=12)]
        if planted:
            words.insert(int(rng.integers(13)), f"zx9qv{int(rng.integers(10_000))}")
        texts.append(tokenize(" ".join(words)))
        flags.append(planted)
    found = miner.update(texts, flags, users=[f"u{i % 97}" for i in range(2000)], tenants=["t"] * 2000,
                         event_ids=[str(i) for i in range(2000)], ts_ms=list(range(2000)))
    # Named once: an event carrying a named n-gram is explained by it, so the stem's other 4-gram is not a second.
    assert {c.ngram for c in found} & {"zx9q", "x9qv"}
    # Every candidate is a piece of the trigger token (its stem, or the stem and a first digit).
    assert all(c.kind == "char" and c.ngram[:3] in "zx9qv" for c in found), [c.ngram for c in found]


def test_heavy_hitters_add_event_counts_each_distinct_ngram_once_as_repeated_add_does() -> None:
    from detectors.motifs.heavy_hitters import HeavyHitters
    from detectors.motifs.ngrams import ngram_hashes, ngram_texts

    events = [tokenize("a b a b zorblat99 a b"), tokenize("b a zorblat99"), tokenize("")]
    one, many = HeavyHitters(capacity=3, entity_cap=2, example_cap=2), HeavyHitters(capacity=3, entity_cap=2,
                                                                                       example_cap=2)
    for index, tokens in enumerate(events * 3):
        items, texts = ngram_hashes([tokens])[0].tolist(), ngram_texts(tokens)
        seen: set[int] = set()
        for item, (text, kind) in zip(items, texts, strict=True):
            if item not in seen:
                seen.add(item)
                one.add(item, text, kind, user=f"u{index}", tenant="t", event_id=f"e{index}")
        many.add_event(items, texts, user=f"u{index}", tenant="t", event_id=f"e{index}")
        one.prune()
        many.prune()
    assert many.entries == one.entries and list(many.entries) == list(one.entries)
    assert (many.floor, many.distinct) == (one.floor, one.distinct)
    assert many.snapshot() == one.snapshot()
