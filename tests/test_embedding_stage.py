"""The embedding and probe stages: windows, flags, snapshots, bad vectors, settings."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from detectors.probe import LinearProbe
from monitor.errors import ConfigError
from monitor.events import Event
from monitor.pipeline import KeyBatch, Pipeline
from monitor.registry import build_pipeline
from monitor.settings import Settings, load_settings
from monitor.stages.embedding import EmbeddingConfig, EmbeddingStage, sampled
from monitor.stages.probe import ProbeConfig, ProbeStage, load_probe
from monitor.vector_scoring import score_batch

CONFIG = EmbeddingConfig(reference_size=120, warmup=160, window=40, null_draws=100, alpha=0.05)


def vector_events(vectors: np.ndarray, *, start: int = 0, key: tuple[str, str] = ("m", "1"),
                  field: str = "embedding") -> list[Event]:
    return [Event(ts=1_793_491_200_000 + 1000 * (start + i), model_id=key[0], model_version=key[1],
                  input="q", output=f"a{start + i}", event_id=f"e{start + i}", **{field: v.tolist()})
            for i, v in enumerate(vectors)]


def shifted_stream(seed: int = 0) -> tuple[list[Event], int]:
    rng = np.random.default_rng(seed)
    clean = rng.normal(size=(160 + 80, 16))
    shifted = rng.normal(0.8, 1.0, size=(120, 16))
    return vector_events(np.concatenate([clean, shifted])), 240


def run(stage_or_pipeline: Pipeline, events: list[Event], batch: int) -> list[str]:
    ids = []
    for start in range(0, len(events), batch):
        _metrics, alerts = score_batch(stage_or_pipeline, events[start:start + batch])
        ids += [a.alert_id for a in alerts]
    return ids


def test_a_shift_after_warmup_alerts_and_clean_windows_do_not() -> None:
    events, shift_at = shifted_stream()
    findings = EmbeddingStage(CONFIG).process(KeyBatch(("m", "1"), events))
    alerts = [a for a in findings.alerts if a.detector == "embedding"]
    assert alerts
    assert all(a.window_start_ms >= events[shift_at].ts_ms for a in alerts)
    mmd_rows = [r for r in findings.metrics if r.metric == "mmd2"]
    assert len(mmd_rows) == (len(events) - CONFIG.warmup) // CONFIG.window
    assert all(r.count == CONFIG.window and "threshold" in r.extra for r in mmd_rows)


def test_findings_do_not_depend_on_batch_boundaries_or_a_restart() -> None:
    events, _ = shifted_stream(1)
    whole = run(Pipeline([EmbeddingStage(CONFIG)]), events, batch=len(events))
    assert whole
    assert whole == run(Pipeline([EmbeddingStage(CONFIG)]), events, batch=37)
    first = Pipeline([EmbeddingStage(CONFIG)])
    ids = run(first, events[:200], batch=64)  # stops mid-window, after the reference froze
    state = json.loads(json.dumps(first.snapshot(("m", "1"))))
    second = Pipeline([EmbeddingStage(CONFIG)])
    second.restore(("m", "1"), state)
    assert ids + run(second, events[200:], batch=64) == whole


def test_snapshot_is_versioned_and_bounded() -> None:
    stage = EmbeddingStage(CONFIG)
    events, _ = shifted_stream(2)
    stage.process(KeyBatch(("m", "1"), events[:150]))  # still warming up, reservoir full
    state = stage.snapshot(("m", "1"))
    assert state is not None and state["format"] == "embedding.v1"
    bound = (CONFIG.reference_size + CONFIG.window) * 16 * 4 * 4 / 3 + 4096
    assert len(json.dumps(state)) < bound
    with pytest.raises(ConfigError, match=r"embedding\.v1"):
        EmbeddingStage(CONFIG).restore(("m", "1"), {"format": "embedding.v0"})


def test_novel_outputs_are_flagged_for_later_stages() -> None:
    rng = np.random.default_rng(3)
    stage = EmbeddingStage(CONFIG)
    stage.process(KeyBatch(("m", "1"), vector_events(rng.normal(size=(160, 16)))))
    vectors = rng.normal(size=(40, 16))
    vectors[::10] = rng.normal(size=16) * 0.01 + 25.0 * np.eye(16)[0]  # four far-off outputs
    batch = KeyBatch(("m", "1"), vector_events(vectors, start=160))
    stage.process(batch)
    flagged = [i for i, reasons in enumerate(batch.flags) if "embedding_novelty" in reasons]
    assert {0, 10, 20, 30} <= set(flagged)
    assert len(flagged) <= 4 + 4  # the clean rest at about the calibrated 1%


def test_bad_vectors_are_skipped_not_fatal() -> None:
    rng = np.random.default_rng(4)
    events = vector_events(np.zeros((1, 0)))  # empty: must not fix the dimension at 0
    events += vector_events(rng.normal(size=(20, 16)), start=1)
    events += vector_events(rng.normal(size=(5, 3)), start=20)  # wrong dimension
    events += vector_events(np.full((2, 16), np.nan), start=25)
    stage = EmbeddingStage(CONFIG)
    stage.process(KeyBatch(("m", "1"), events))
    state = stage.snapshot(("m", "1"))
    assert state is not None and state["rejected"] == 8 and state["seen"] == 20


def test_model_mode_embeds_only_events_without_a_vector_and_only_the_sample() -> None:
    seen: list[str] = []

    def embedder(texts: list[str]) -> np.ndarray:
        seen.extend(texts)
        return np.random.default_rng(len(seen)).normal(size=(len(texts), 16)).astype(np.float32)

    config = EmbeddingConfig(mode="model", reference_size=120, warmup=160, window=40, null_draws=50,
                             sample_rate=0.5)
    events = vector_events(np.random.default_rng(5).normal(size=(100, 16)))
    texts_only = [Event(ts=1_793_491_300_000 + i, model_id="m", model_version="1", input="q",
                        output=f"text {i}", event_id=f"t{i}") for i in range(400)]
    EmbeddingStage(config, embedder).process(KeyBatch(("m", "1"), events + texts_only))
    expected = [e.output for e in texts_only if sampled(e.id, 0.5)]
    assert seen == expected and 150 < len(seen) < 250


def test_sampling_by_event_id_is_deterministic_and_near_the_rate() -> None:
    ids = [f"event-{i}" for i in range(20_000)]
    chosen = [sampled(i, 0.05) for i in ids]
    assert chosen == [sampled(i, 0.05) for i in ids]
    assert 0.04 < np.mean(chosen) < 0.06


def test_registry_puts_vector_stages_before_signatures(tmp_path: Path) -> None:
    weights = tmp_path / "probe.npz"
    np.savez(weights, w=np.ones(4, dtype=np.float32), b=np.float32(0.0))
    pipeline = build_pipeline(Settings(probe_weights=weights))
    assert [s.name for s in pipeline.stages] == ["behaviour", "drift", "embedding", "probe", "signatures", "motifs"]
    assert [s.name for s in build_pipeline(Settings(embedding="off")).stages] == ["behaviour", "drift", "signatures",
                                                                                  "motifs"]


def test_settings_refuse_bad_embedding_choices() -> None:
    with pytest.raises(ConfigError, match="embedding"):
        load_settings(embedding="sometimes")
    with pytest.raises(ConfigError, match="embedding_device"):
        load_settings(embedding_device="tpu")
    with pytest.raises(ConfigError, match="embedding_warmup"):
        EmbeddingConfig(reference_size=500, warmup=100)


def test_probe_file_format_and_errors(tmp_path: Path) -> None:
    good = tmp_path / "good.npz"
    np.savez(good, w=np.array([1.0, -2.0]), b=np.array([0.5]))
    probe = load_probe(good)
    assert probe.dimension == 2 and probe.bias == 0.5
    missing = tmp_path / "missing.npz"
    np.savez(missing, w=np.ones(3))
    with pytest.raises(ConfigError, match="lacks b"):
        load_probe(missing)
    with pytest.raises(ConfigError, match="cannot read"):
        load_probe(tmp_path / "absent.npz")
    text = tmp_path / "text.npz"
    text.write_text("not an archive")
    with pytest.raises(ConfigError, match="probe file"):
        load_probe(text)


def test_probe_stage_alerts_on_a_shift_not_on_stationary_scores_and_round_trips() -> None:
    rng = np.random.default_rng(6)
    probe = LinearProbe(np.eye(8)[0], -2.0)
    stationary = rng.normal(size=(100 + 400, 8))
    shifted = rng.normal(size=(100, 8)) + 1.5 * np.eye(8)[0]
    events = vector_events(np.concatenate([stationary, shifted]), field="activations")
    events.append(vector_events(np.ones((1, 3)), start=600, field="activations")[0])  # wrong length: skipped
    stage = ProbeStage(probe, ProbeConfig(window=100, reference_size=100, alpha=0.001))
    batch = KeyBatch(("m", "1"), events)
    alerts = stage.process(batch).alerts
    assert alerts and all(a.window_start_ms >= events[500].ts_ms for a in alerts)
    assert {a.metric for a in alerts} <= {"probe:shift", "probe:threshold"}
    assert any("probe" in reasons for reasons in batch.flags)
    state = json.loads(json.dumps(stage.snapshot(("m", "1"))))
    assert state["format"] == "probe.v1" and state["rejected"] == 1
    fresh = ProbeStage(probe, ProbeConfig(window=100, reference_size=100))
    fresh.restore(("m", "1"), state)
    assert fresh.snapshot(("m", "1")) == state
