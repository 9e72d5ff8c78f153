"""The embedding stage: output embeddings scored against a per-stream reference.

For each (model_id, model_version) the stage

1. takes each event's vector: its own ``embedding`` when it carries one,
   else (``embedding = "model"``) the output text embedded by
   :func:`detectors.embedding.encoder.embed`, for a deterministic sample of
   events (``embedding_sample_rate``, by a hash of the event id);
2. during warm-up (the first ``embedding_warmup`` vectors) keeps a seeded
   reservoir sample (Vitter's algorithm R) of ``embedding_reference_size``
   of them: the reference;
3. then flags every output whose novelty (mean cosine distance to its k
   nearest reference vectors) is above the calibrated quantile
   (``batch.flag(i, "embedding_novelty")``, for trigger-motif mining), and
   scores each full window of ``embedding_window`` vectors: MMD², energy
   distance, centroid shift and the novel fraction go to ``window_metrics``;
   a window whose MMD² or energy distance passes its null threshold raises an
   ``embedding`` alert naming the window's most novel events.

State per key is bounded: reference_size + window vectors of d float32
values, plus counters. :meth:`EmbeddingStage.snapshot` writes them as
base64 float32 with the reservoir's RNG state (format ``embedding.v1``);
the thresholds are not stored, they are recomputed from the reference
with the same seed on restore (a few seconds at most).
"""

from __future__ import annotations

import base64
import functools
import hashlib
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from detectors.embedding.scorer import BatchScore, EmbeddingScorer
from monitor.alerts import Alert, Findings, MetricRow
from monitor.errors import ConfigError, SnapshotError
from monitor.events import Event
from monitor.pipeline import KeyBatch, StreamKey
from monitor.settings.stages import EmbeddingConfig

logger = logging.getLogger(__name__)

__all__ = ["SNAPSHOT_VERSION", "EmbeddingConfig", "EmbeddingStage", "sampled"]

SNAPSHOT_VERSION = "embedding.v1"
DETECTOR = "embedding"
FLAG = "embedding_novelty"
_EVIDENCE_EVENTS = 10

Embedder = Callable[[list[str]], np.ndarray]


def sampled(event_id: str, rate: float) -> bool:
    """Is this event in the model-embedding sample? A hash of its id decides, so replays agree."""
    if rate >= 1.0:
        return True
    digest = hashlib.blake2b(event_id.encode("utf-8", "surrogatepass"), digest_size=8).digest()
    return int.from_bytes(digest, "big") < rate * 2.0**64


def _key_seed(key: StreamKey) -> int:
    return int.from_bytes(hashlib.blake2b("\x1f".join(key).encode(), digest_size=8).digest(), "big")


def _pack(array: np.ndarray) -> str:
    return base64.b64encode(np.ascontiguousarray(array, dtype="<f4").tobytes()).decode("ascii")


def _unpack(text: str, dimension: int) -> np.ndarray:
    return np.frombuffer(base64.b64decode(text), dtype="<f4").reshape(-1, dimension).copy()


@dataclass
class _KeyState:
    """Everything the stage keeps for one stream key; bounded by the config."""

    seed: int
    rng: np.random.Generator
    dimension: int | None = None
    seen: int = 0
    reference: np.ndarray | None = None
    scorer: EmbeddingScorer | None = None
    window: list[np.ndarray] = field(default_factory=list)
    window_ids: list[str] = field(default_factory=list)
    window_start_ms: int = 0
    windows: int = 0
    rejected: int = 0


class EmbeddingStage:
    """Embedding drift per stream key; see the module docstring.

    Parameters
    ----------
    config
        Sizes, rates and the device.
    embedder
        Texts to vectors, used in model mode; default: the bundled MiniLM via
        :func:`~detectors.embedding.encoder.embed` (loaded on first use).

    Examples
    --------
    >>> import numpy as np
    >>> from monitor.pipeline import KeyBatch
    >>> from monitor.events import Event
    >>> stage = EmbeddingStage(EmbeddingConfig(reference_size=40, warmup=40, window=20, null_draws=50))
    >>> rng = np.random.default_rng(0)
    >>> events = [Event(ts=1_700_000_000_000 + i, model_id="m", model_version="1", input="q",
    ...                 output="a", embedding=rng.normal(size=8).tolist()) for i in range(60)]
    >>> findings = stage.process(KeyBatch(("m", "1"), events))
    >>> sorted({row.metric for row in findings.metrics})
    ['centroid_shift', 'energy', 'mmd2', 'novel_fraction']
    """

    name = "embedding"

    def __init__(self, config: EmbeddingConfig, embedder: Embedder | None = None) -> None:
        if config.mode not in ("precomputed", "model"):
            raise ConfigError(f"embedding mode must be precomputed or model; got {config.mode!r}")
        self.config = config
        self._device: str | None = None
        self._embedder = embedder
        self._states: dict[StreamKey, _KeyState] = {}

    @property
    def device(self) -> str:
        """The torch device, resolved on first use (``auto`` may import torch)."""
        if self._device is None:
            self._device = self.config.torch_device()
        return self._device

    @property
    def embedder(self) -> Embedder:
        if self._embedder is None:
            from detectors.embedding.encoder import embed

            self._embedder = functools.partial(embed, device=self.device)
        return self._embedder

    def _state(self, key: StreamKey) -> _KeyState:
        state = self._states.get(key)
        if state is None:
            seed = _key_seed(key)
            state = self._states[key] = _KeyState(seed=seed, rng=np.random.default_rng(seed))
        return state

    def vectors(self, events: Sequence[Event]) -> list[tuple[int, np.ndarray]]:
        """(index, vector) for the events that have or get one, in order."""
        found: list[tuple[int, np.ndarray]] = []
        to_embed: list[int] = []
        for index, event in enumerate(events):
            if event.embedding is not None:
                found.append((index, np.asarray(event.embedding, dtype=np.float32)))
            elif self.config.mode == "model" and sampled(event.id, self.config.sample_rate):
                to_embed.append(index)
        if to_embed:
            vectors = self.embedder([events[i].output for i in to_embed])
            found.extend(zip(to_embed, vectors, strict=True))
            found.sort(key=lambda pair: pair[0])
        return found

    def process(self, batch: KeyBatch) -> Findings:
        findings = Findings()
        state = self._state(batch.key)
        pending: list[tuple[int, np.ndarray]] = []  # scored vectors not yet novelty-checked
        for index, vector in self.vectors(batch.events):
            if not self._accept(state, vector, batch.key):
                continue
            if state.scorer is None:
                self._warm(state, vector, batch.key)
                continue
            pending.append((index, vector))
            event = batch.events[index]
            if not state.window:
                state.window_start_ms = event.ts_ms
            state.window.append(vector)
            state.window_ids.append(event.id)
            if len(state.window) == self.config.window:
                self._flag(batch, state, pending)
                pending = []
                self._close_window(batch, state, state.scorer, event.ts_ms, findings)
        self._flag(batch, state, pending)
        return findings

    def _accept(self, state: _KeyState, vector: np.ndarray, key: StreamKey) -> bool:
        # A bad vector is counted and skipped: it never stops the stream. The first
        # good vector fixes the key's dimension.
        if state.dimension is None and vector.shape[0] > 0 and np.isfinite(vector).all():
            state.dimension = int(vector.shape[0])
        if vector.shape[0] != state.dimension or not np.isfinite(vector).all():
            state.rejected += 1
            if state.rejected in (1, 1000):
                logger.warning("embedding rejected key=%s/%s dimension=%d expected=%s rejected=%d",
                               key[0], key[1], vector.shape[0], state.dimension, state.rejected)
            return False
        return True

    def _warm(self, state: _KeyState, vector: np.ndarray, key: StreamKey) -> None:
        size = self.config.reference_size
        if state.reference is None:
            state.reference = np.empty((size, vector.shape[0]), dtype=np.float32)
        if state.seen < size:
            state.reference[state.seen] = vector
        else:  # Vitter's algorithm R: keep each of the first `seen` vectors with probability size / seen
            slot = int(state.rng.integers(state.seen + 1))
            if slot < size:
                state.reference[slot] = vector
        state.seen += 1
        if state.seen == self.config.warmup:
            self._freeze(state, state.reference, key)

    def _freeze(self, state: _KeyState, reference: np.ndarray, key: StreamKey) -> None:
        c = self.config
        state.scorer = EmbeddingScorer(reference, device=self.device, alpha=c.alpha, draws=c.null_draws,
                                       k=c.novelty_k, novelty_quantile=c.novelty_quantile, seed=state.seed % 2**32)
        state.scorer.null(c.window)  # draw the null now, once per reference
        logger.info("embedding reference frozen key=%s/%s size=%d dimension=%d gamma=%.4g",
                    key[0], key[1], state.scorer.reference.size, state.scorer.reference.dimension,
                    state.scorer.reference.gamma)

    def _flag(self, batch: KeyBatch, state: _KeyState, pending: list[tuple[int, np.ndarray]]) -> None:
        if not pending or state.scorer is None:
            return
        novelty = state.scorer.novelty(np.stack([vector for _, vector in pending]))
        for (index, _), value in zip(pending, novelty, strict=True):
            if value > state.scorer.novelty_threshold:
                batch.flag(index, FLAG)

    def _close_window(self, batch: KeyBatch, state: _KeyState, scorer: EmbeddingScorer, end_ms: int,
                      findings: Findings) -> None:
        score = scorer.score(np.stack(state.window))
        model_id, model_version = batch.key
        start_ms = state.window_start_ms
        for metric, value, extra in self._rows(score):
            findings.metrics.append(MetricRow(
                model_id=model_id, model_version=model_version, detector=DETECTOR, metric=metric,
                window_start_ms=start_ms, window_end_ms=end_ms, value=value, count=score.size, extra=extra))
        if score.drift:
            findings.alerts.append(self._alert(batch.key, state, scorer.reference.size, score, start_ms, end_ms))
        state.windows += 1
        state.window, state.window_ids = [], []

    @staticmethod
    def _rows(score: BatchScore) -> list[tuple[str, float, dict[str, float]]]:
        return [
            ("mmd2", score.mmd2, {"threshold": score.mmd2_threshold, "p_value": score.p_value}),
            ("energy", score.energy, {"threshold": score.energy_threshold}),
            ("centroid_shift", score.centroid_shift, {"threshold": score.centroid_threshold}),
            ("novel_fraction", float(score.novel.mean()), {"novelty_threshold": score.novelty_threshold}),
        ]

    def _alert(self, key: StreamKey, state: _KeyState, reference_size: int, score: BatchScore, start_ms: int,
               end_ms: int) -> Alert:
        by_mmd = score.mmd2 > score.mmd2_threshold
        by_energy = score.energy > score.energy_threshold
        ranked = np.argsort(-score.novelty, kind="stable")[:_EVIDENCE_EVENTS]
        metric, value, threshold = (("mmd2", score.mmd2, score.mmd2_threshold) if by_mmd
                                    else ("energy", score.energy, score.energy_threshold))
        return Alert.create(
            ts_ms=end_ms, model_id=key[0], model_version=key[1], detector=DETECTOR,
            metric=f"embedding:{metric}", severity="high" if by_mmd and by_energy else "medium",
            score=value, threshold=threshold, window_start_ms=start_ms, window_end_ms=end_ms,
            discriminator=f"window:{state.windows}",
            evidence={"event_ids": [state.window_ids[i] for i in ranked],
                      "novelty": [round(float(score.novelty[i]), 4) for i in ranked],
                      "mmd2": score.mmd2, "mmd2_threshold": score.mmd2_threshold, "p_value": score.p_value,
                      "energy": score.energy, "energy_threshold": score.energy_threshold,
                      "centroid_shift": score.centroid_shift, "novel_fraction": float(score.novel.mean()),
                      "window": state.windows, "window_size": score.size,
                      "reference_size": reference_size},
        )

    def snapshot(self, key: StreamKey) -> dict[str, Any] | None:
        state = self._states.get(key)
        if state is None:
            return None
        filled = min(state.seen, self.config.reference_size)
        return {
            "format": SNAPSHOT_VERSION, "dimension": state.dimension, "seen": state.seen,
            "rng": state.rng.bit_generator.state,
            "reference": _pack(state.reference[:filled]) if state.reference is not None else "",
            "window": _pack(np.stack(state.window)) if state.window else "",
            "window_ids": list(state.window_ids), "window_start_ms": state.window_start_ms,
            "windows": state.windows, "rejected": state.rejected,
        }

    def forget(self, key: StreamKey) -> None:
        self._states.pop(key, None)

    def restore(self, key: StreamKey, state: Any) -> None:
        if state is None:
            return
        if not isinstance(state, dict) or state.get("format") != SNAPSHOT_VERSION:
            got = state.get("format") if isinstance(state, dict) else type(state).__name__
            raise SnapshotError(f"embedding snapshot format must be {SNAPSHOT_VERSION!r}; got {got!r}")
        restored = self._state(key)
        restored.rng.bit_generator.state = state["rng"]
        restored.dimension = state["dimension"]
        restored.seen = int(state["seen"])
        restored.windows, restored.rejected = int(state["windows"]), int(state["rejected"])
        restored.window_start_ms = int(state["window_start_ms"])
        restored.window_ids = list(state["window_ids"])
        dimension = restored.dimension or 1
        restored.window = list(_unpack(state["window"], dimension)) if state["window"] else []
        if state["reference"]:
            rows = _unpack(state["reference"], dimension)
            restored.reference = np.empty((self.config.reference_size, dimension), dtype=np.float32)
            restored.reference[: len(rows)] = rows
        if restored.seen >= self.config.warmup and restored.reference is not None:
            self._freeze(restored, restored.reference, key)
