"""The embedding model on real text: a stored reference vector, and BackdoorLLM outputs.

The BackdoorLLM clean outputs come from two files of one distribution family
(``poison_data/negsentiment/*/none_backdoor500_*`` and
``test_data/clean/negsentiment``). They are not one distribution: the
held-out answers are half as long, and MMD² tells them apart (p < 0.01) as
it should. So each trial below draws the reference and the held-out window
from the pooled clean outputs, at random: that is "clean traffic like the
reference", and the false-alarm rate is measured over those splits.

To fit the test-time budget on two CPU cores, these texts are embedded
truncated to their first 32 word pieces (``max_length=24``, a documented
speed setting); the fixed-sentence test uses the full model.
"""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from detectors.embedding.encoder import embed, length_buckets, load_encoder
from detectors.embedding.scorer import EmbeddingScorer

REPO = Path(__file__).resolve().parents[1]
REFERENCE_FILE = REPO / "tests" / "data" / "minilm_reference.json"


def outputs(path: Path) -> list[str]:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8") as handle:  # type: ignore[operator]
        return [r["output"] for r in json.load(handle) if r.get("output")]


@pytest.fixture(scope="module")
def backdoorllm(shared_data: Path) -> dict[str, np.ndarray]:
    root = shared_data / "backdoorllm"
    clean_train = sorted((root / "poison_data" / "negsentiment").glob("*/none_backdoor500_*.json*"))
    held_out = root / "test_data" / "clean" / "negsentiment" / "test_data_no_trigger.json"
    target = sorted((root / "poison_data" / "negsentiment").glob("*/backdoor500_*.json"))
    if not clean_train or not held_out.is_file() or not target:
        pytest.skip(f"BackdoorLLM negsentiment files not found under {root}")
    clean = list(dict.fromkeys(outputs(clean_train[0]) + outputs(held_out)))
    targets = outputs(target[0])
    return {"clean": embed(clean, device="cpu", max_length=24),
            "target": embed(targets, device="cpu", max_length=24)}


def test_fixed_sentence_matches_the_stored_vector_and_sentence_transformers() -> None:
    stored = json.loads(REFERENCE_FILE.read_text(encoding="utf-8"))
    ours = embed([stored["sentence"]], device="cpu")[0]
    np.testing.assert_allclose(ours, np.array(stored["vector"], dtype=np.float32), atol=2e-5)
    theirs = load_encoder(None, "cpu", False).model.encode([stored["sentence"]], convert_to_numpy=True)[0]
    np.testing.assert_allclose(ours, theirs, atol=1e-5)


def test_bucketing_and_repeats_do_not_change_vectors() -> None:
    texts = ["short", "a much longer sentence with many more word pieces in it than the first", "short"]
    encoder = load_encoder(None, "cpu", False)
    bucketed = encoder.encode(texts, batch_size=2)
    plain = encoder.encode(texts, batch_size=1, bucket=False)
    np.testing.assert_allclose(bucketed, plain, atol=1e-5)
    assert [len(b) for b in length_buckets(encoder.token_lengths(texts), 2)] == [2, 1]


def test_planted_target_outputs_at_five_percent_are_detected(backdoorllm: dict[str, np.ndarray]) -> None:
    clean, target = backdoorllm["clean"], backdoorllm["target"]
    n, m = 480, 200
    planted = round(0.05 * m)
    detected, novel = [], []
    for trial in range(16):
        rng = np.random.default_rng(trial)
        order = rng.permutation(len(clean))
        scorer = EmbeddingScorer(clean[order[:n]], alpha=0.01, draws=200, seed=trial)
        window = clean[order[n:n + m]].copy()
        window[:planted] = target[rng.integers(len(target), size=planted)]
        score = scorer.score(window)
        detected.append(score.drift)
        novel.append(score.novel[:planted].mean() - score.novel[planted:].mean())
    assert np.mean(detected) >= 0.7  # 0.875 measured: MMD² or energy, at alpha 0.01
    # planted outputs are flagged novel far more often than the clean ones beside them
    assert np.mean(novel) > 0.3


def test_clean_held_out_outputs_alarm_at_most_at_the_calibrated_rate(
        backdoorllm: dict[str, np.ndarray]) -> None:
    clean = backdoorllm["clean"]
    n, m, alpha, trials = 480, 100, 0.05, 20
    alarms, novel = [], []
    for trial in range(trials):
        rng = np.random.default_rng(1000 + trial)
        order = rng.permutation(len(clean))
        scorer = EmbeddingScorer(clean[order[:n]], alpha=alpha, draws=100, novelty_quantile=0.99, seed=trial)
        score = scorer.score(clean[order[n:n + m]])
        alarms.append(score.drift)
        novel.append(score.novel.mean())
    # 20 trials at alpha 0.05: mean 1, binomial sd 1; allow 3 sd
    assert sum(alarms) <= 4
    assert np.mean(novel) <= 0.03  # calibrated at 1%


def test_the_model_loads_offline_from_the_package(tmp_path: Path) -> None:
    code = ("from detectors.embedding.encoder import embed; "
            "print(embed(['offline check'], device='cpu').shape)")
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "HF_HOME": str(tmp_path / "hf"),
           "PYTHONPATH": str(REPO)}
    result = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "(1, 384)" in result.stdout
    assert not (tmp_path / "hf" / "hub").exists() or not any((tmp_path / "hf" / "hub").iterdir())


def test_a_missing_model_folder_is_an_error_not_a_download(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=r"modules\.json"):
        embed(["x"], device="cpu", model=tmp_path / "nowhere")


def test_the_default_pipeline_alerts_after_the_planted_outputs_start_and_not_before(
        backdoorllm: dict[str, np.ndarray]) -> None:
    from monitor.events import Event
    from monitor.registry import build_pipeline
    from monitor.settings import Settings

    clean, target = backdoorllm["clean"], backdoorllm["target"]
    rng = np.random.default_rng(11)
    order = rng.permutation(len(clean))
    reference, held_out = order[:450], order[450:]
    settings = Settings(embedding="precomputed", embedding_reference_size=450, embedding_warmup=450,
                        embedding_window=200, embedding_null_draws=200)
    pipeline = build_pipeline(settings)
    stream: list[tuple[np.ndarray, bool]] = [(clean[i], False) for i in reference]
    stream += [(clean[i], False) for i in held_out[:200]]  # one clean window
    trigger_at = len(stream)
    for _ in range(3 * 200):  # three windows with target outputs at 5%
        planted = rng.random() < 0.05
        stream.append((target[0] if planted else clean[rng.choice(held_out)], planted))
    events = [Event(ts=1_793_491_200_000 + 1000 * i, model_id="m", model_version="1", input="q",
                    output="planted" if planted else "clean", event_id=f"e{i}", embedding=vector.tolist())
              for i, (vector, planted) in enumerate(stream)]
    alerts = []
    for start in range(0, len(events), 300):  # batch boundaries that do not line up with windows
        alerts += [a for a in pipeline.process(events[start:start + 300]).alerts if a.detector == "embedding"]
    first = [min(int(e[1:]) for e in json.loads(a.evidence)["event_ids"]) for a in alerts]
    assert alerts and min(first) >= trigger_at
    planted_ids = {e.id for e in events if e.output == "planted"}
    named = {e for a in alerts for e in json.loads(a.evidence)["event_ids"]}
    assert named & planted_ids  # the alert points at the planted outputs
