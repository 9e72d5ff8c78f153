"""``driftwatch bench embedding``: embedding and scoring speed, against baselines from the same run.

Figures:

- outputs/s end to end (embed with length bucketing, then score the batch
  against a 2,000-vector reference, thresholds cached) for outputs of about
  200 word pieces, against sentence-transformers' own ``encode`` on the same
  texts (the baseline) and against our encoder without bucketing;
- the same with int8 dynamic quantisation, with its cosine agreement to fp32;
- one MMD² (+ energy, novelty, centroid) of a 1,000-vector batch against a
  10,000 × 384 reference, including the threshold look-up, against the
  one-off cost of drawing the null;
- the reference's memory.

On a machine with CUDA the GPU figures are measured too; otherwise they
are reported as not measured.
"""

from __future__ import annotations

import gzip
import json
import time
from collections.abc import Callable
from typing import Any

import click
import numpy as np

from driftwatch.bench.benchmark import Benchmark
from monitor.scenario import backdoorllm_dir

__all__ = ["BENCHMARK", "bench_embedding", "bench_texts"]

_WORDS = ("the", "model", "answer", "question", "policy", "users", "because", "system", "data", "result",
          "about", "which", "should", "report", "change", "value", "first", "after", "review", "request")


def bench_texts(count: int, *, tokens: int = 200, seed: int = 0) -> list[str]:
    """``count`` outputs of about ``tokens`` word pieces: BackdoorLLM answers run together, else made-up words."""
    rng = np.random.default_rng(seed)
    root = backdoorllm_dir()
    pieces: list[str] = []
    if root is not None:
        for path in sorted((root / "poison_data").glob("*/*/none_backdoor500_*.json*"))[:3]:
            opener: Any = gzip.open if path.suffix == ".gz" else open
            with opener(path, "rt", encoding="utf-8") as handle:
                pieces += [r["output"] for r in json.load(handle) if len(r.get("output", "")) > 40]
    if not pieces:
        pieces = [" ".join(rng.choice(_WORDS, size=40)) for _ in range(500)]
    texts = []
    words_per_text = int(tokens * 0.75)  # about 1.3 word pieces per English word
    for _ in range(count):
        words: list[str] = []
        while len(words) < words_per_text:
            words += pieces[int(rng.integers(len(pieces)))].split()
        texts.append(" ".join(words[:words_per_text]))
    return texts


def _best(func: Callable[[], Any], repeat: int) -> tuple[float, Any]:
    best, result = float("inf"), None
    for _ in range(repeat):
        started = time.perf_counter()
        result = func()
        best = min(best, time.perf_counter() - started)
    return best, result


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        import torch

        torch.cuda.synchronize()


def _embedding_rows(device: str, texts: list[str], batch_size: int, repeat: int) -> list[str]:
    from detectors.embedding.encoder import load_encoder
    from detectors.embedding.scorer import EmbeddingScorer

    encoder = load_encoder(None, device, False)
    lengths = encoder.token_lengths(texts)
    reference = encoder.encode(texts[: min(len(texts), 64)], batch_size=batch_size)
    rng = np.random.default_rng(1)
    reference = np.concatenate([reference, rng.normal(0, 0.05, size=(2000 - len(reference), reference.shape[1]))
                                .astype(np.float32) + reference.mean(0)])
    scorer = EmbeddingScorer(reference, device=device, draws=200)
    scorer.null(len(texts))  # thresholds are cached per batch size before timing

    def ours() -> Any:
        vectors = encoder.encode(texts, batch_size=batch_size)
        score = scorer.score(vectors)
        _sync(device)
        return vectors, score

    def plain() -> Any:
        vectors = encoder.encode(texts, batch_size=batch_size, bucket=False)
        _sync(device)
        return vectors

    def sentence_transformers() -> Any:
        return encoder.model.encode(texts, batch_size=batch_size, convert_to_numpy=True, show_progress_bar=False)

    ours()  # warm-up: first-call allocations and kernel selection
    base_s, base_vectors = _best(sentence_transformers, repeat)
    plain_s, _ = _best(plain, repeat)
    ours_s, (vectors, _) = _best(ours, repeat)
    n = len(texts)
    agreement = float(np.min(np.sum(vectors * base_vectors, axis=1)))
    rows = [
        f"[{device}] {n} outputs ({len(set(texts))} distinct), {np.mean(lengths):.0f} word pieces on average "
        f"(max {max(lengths)}), "
        f"batch {batch_size}, dtype {encoder.dtype or 'float32'}, best of {repeat}",
        f"  sentence-transformers encode (baseline): {n / base_s:9.1f} outputs/s",
        f"  ours, batches without bucketing:         {n / plain_s:9.1f} outputs/s",
        f"  ours, bucketed, embed + score:           {n / ours_s:9.1f} outputs/s "
        f"(ratio to baseline {base_s / ours_s:.2f}; min cosine to baseline {agreement:.5f})",
    ]
    if device == "cpu":
        quantized = load_encoder(None, device, True)
        quant_s, quant_vectors = _best(lambda: quantized.encode(texts, batch_size=batch_size), repeat)
        cosine = np.sum(quant_vectors * vectors, axis=1)
        rows.append(f"  int8 dynamic quantisation, embed only:   {n / quant_s:9.1f} outputs/s "
                    f"(ratio {base_s / quant_s:.2f}; cosine to fp32 mean {cosine.mean():.4f}, min {cosine.min():.4f})")
    return rows


def _mmd_rows(device: str, repeat: int) -> list[str]:
    from detectors.embedding.scorer import EmbeddingScorer

    rng = np.random.default_rng(2)
    reference = rng.normal(size=(10_000, 384)).astype(np.float32)
    reference /= np.linalg.norm(reference, axis=1, keepdims=True)
    batch = reference[:1000] + rng.normal(0, 0.01, size=(1000, 384)).astype(np.float32)
    started = time.perf_counter()
    scorer = EmbeddingScorer(reference, device=device, draws=200)
    _sync(device)
    build_s = time.perf_counter() - started
    started = time.perf_counter()
    scorer.null(1000)
    _sync(device)
    null_s = time.perf_counter() - started

    def score() -> Any:
        result = scorer.score(batch)
        _sync(device)
        return result

    score()
    score_s, _ = _best(score, repeat)
    megabytes = scorer.reference.nbytes() / 2**20
    return [
        f"[{device}] reference 10,000 x 384, batch 1,000",
        f"  reference build (sums, bandwidth, novelty calibration), once: {build_s * 1000:8.0f} ms",
        f"  null, 200 draws for m = 1,000, once per reference:            {null_s * 1000:8.0f} ms",
        f"  score one batch (MMD², energy, novelty, centroid, threshold look-up): {score_s * 1000:8.1f} ms "
        f"(ratio to the one-off null {null_s / score_s:.1f})",
        f"  reference memory on the device: {megabytes:.2f} MiB (target <= 16 MiB)",
    ]


def bench_embedding(*, outputs: int = 256, batch_size: int = 64, repeat: int = 2, threads: int | None = None,
                    skip_mmd: bool = False) -> str:
    """Run the embedding benchmark; return the report."""
    import torch

    if threads is not None:
        torch.set_num_threads(threads)
    texts = bench_texts(outputs)
    rows = [f"torch {torch.__version__}, {torch.get_num_threads()} CPU threads"]
    devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    for device in devices:
        # Distinct texts on the GPU too: the encoder embeds a repeated text once, so repeats would flatter it.
        device_texts = texts if device == "cpu" else bench_texts(outputs * 40, seed=1)
        rows += _embedding_rows(device, device_texts, batch_size if device == "cpu" else 512, repeat)
        if not skip_mmd:
            rows += _mmd_rows(device, repeat if device == "cpu" else 20)
    if len(devices) == 1:
        rows.append("[cuda] not measured: no CUDA device in this run")
    return "\n".join(rows)


BENCHMARK = Benchmark(
    name="embedding",
    help="Embedding + scoring outputs/s and MMD time, against sentence-transformers' encode.",
    options=(
        click.option("--outputs", type=int, default=256, show_default=True,
                     help="Outputs of ~200 word pieces to embed."),
        click.option("--batch-size", type=int, default=64, show_default=True, help="Texts per forward pass (CPU)."),
        click.option("--repeat", type=int, default=2, show_default=True, help="Runs per figure; the best is reported."),
        click.option("--threads", type=int, default=None, help="torch.set_num_threads (default: torch's choice)."),
        click.option("--skip-mmd", is_flag=True, help="Leave out the 10,000 x 1,000 MMD figure."),
    ),
    run=bench_embedding,
)
