"""Behaviour drift told apart from input drift, on a hashed text representation of every event.

For each (model_id, model_version) the stage represents every event twice,
with :mod:`detectors.text_hash` (no model, a few microseconds per event):

* the **input** by its hashed byte 4-grams (what is asked: topic and form);
* the **output** by the hashed n-grams of its *shape* (letters, digits and
  capitals folded, punctuation and layout kept: how the model answers).

The first ``reference_events`` events are the reference of both. After it,

* **input drift**: every ``input_every`` events the last ``input_window``
  inputs are scored against the reference inputs (MMD² and energy distance,
  :class:`detectors.embedding.scorer.EmbeddingScorer`, each against its
  cached null), and each input's k-NN novelty is counted over the same
  window. Either test rejecting marks the key *input-shifted*; the first
  event of an excursion raises one ``input_drift`` alert (``low``: what users
  ask changed, nobody is paged) and every event while shifted is flagged
  ``input_shift`` for later stages;
* **behaviour drift**: every ``output_every`` events the last
  ``output_window`` outputs are scored against the reference outputs the
  same way. A rejection raises one ``behaviour`` alert per excursion:
  ``high`` when the inputs have not shifted (the same kind of questions,
  answered differently: a swapped or updated model), ``low`` with
  ``explained_by: input_drift`` when they have.

Everything is decided event by event in arrival order, and a vector does not
depend on its batch, so the same events raise the same alerts whatever the
batch boundaries; the snapshot holds the reference and the windows exactly.
"""

from __future__ import annotations

import base64
import logging
from collections import deque
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from detectors.rff_mmd import RffMmd
from detectors.text_hash import hash_texts, shape_texts
from monitor.alerts import Alert, Findings, Severity
from monitor.errors import ConfigError
from monitor.pipeline import KeyBatch, StreamKey

__all__ = ["FLAG", "SNAPSHOT_VERSION", "BehaviourConfig", "BehaviourStage", "represent"]

logger = logging.getLogger(__name__)

SNAPSHOT_VERSION = "behaviour.v1"
FLAG = "input_shift"
_EVIDENCE_EVENTS = 5


@dataclass(frozen=True)
class BehaviourConfig:
    """The behaviour stage's sizes and tests (defaults measured on ``driftwatch evaluate swaps``)."""

    reference_events: int = 400
    output_window: int = 200
    output_every: int = 25
    input_window: int = 30
    input_every: int = 1
    input_dim: int = 128
    output_dim: int = 256
    input_bytes: int = 256
    output_bytes: int = 512
    alpha: float = 0.001
    #: Random Fourier features of the RBF kernel (:mod:`detectors.rff_mmd`).
    features: int = 256
    draws: int = 500
    seed: int = 0

    def __post_init__(self) -> None:
        if self.output_window > self.reference_events or self.input_window > self.reference_events:
            raise ConfigError("behaviour windows must not exceed reference_events; got "
                              f"{self.output_window}, {self.input_window} > {self.reference_events}")


def represent(inputs: list[str], outputs: list[str], config: BehaviourConfig) -> tuple[np.ndarray, np.ndarray]:
    """(input vectors, output vectors) of a batch, float32; each row depends on its own event only."""
    x = hash_texts(inputs, dim=config.input_dim, ngrams=(4,), max_bytes=config.input_bytes)
    y = hash_texts(shape_texts(outputs, max_bytes=config.output_bytes), dim=config.output_dim, ngrams=(3, 5),
                   max_bytes=config.output_bytes)
    return x, y


@dataclass
class _KeyState:
    seen: int = 0
    ref_x: list[np.ndarray] = field(default_factory=list)
    ref_y: list[np.ndarray] = field(default_factory=list)
    win_x: deque[np.ndarray] = field(default_factory=deque)
    win_y: deque[np.ndarray] = field(default_factory=deque)
    ids: deque[str] = field(default_factory=lambda: deque(maxlen=_EVIDENCE_EVENTS))
    sum_x: np.ndarray | None = None  # running sums of the windows' features
    sum_y: np.ndarray | None = None
    shifted: bool = False
    behaving: bool = False
    scorers: tuple[RffMmd, RffMmd] | None = None


def _pack(array: np.ndarray, dtype: str = "<f4") -> str:
    return base64.b64encode(np.ascontiguousarray(array, dtype=dtype).tobytes()).decode("ascii")


def _unpack(text: str, dimension: int, dtype: str = "<f4") -> list[np.ndarray]:
    if not text:
        return []
    return list(np.frombuffer(base64.b64decode(text), dtype=dtype).reshape(-1, dimension).astype(np.float64))


class BehaviourStage:
    """Input drift (``input_drift``, low) and behaviour drift (``behaviour``, high unless inputs moved)."""

    name = "behaviour"

    def __init__(self, config: BehaviourConfig | None = None) -> None:
        self.config = config or BehaviourConfig()
        self._states: dict[StreamKey, _KeyState] = {}

    # --- the Stage protocol --------------------------------------------------
    def process(self, batch: KeyBatch) -> Findings:
        findings = Findings()
        if not batch.events:
            return findings
        return self._process(batch, findings)

    def _process(self, batch: KeyBatch, findings: Findings) -> Findings:
        config = self.config
        state = self._states.setdefault(batch.key, _KeyState())
        x, y = represent([e.input for e in batch.events], [e.output for e in batch.events], config)
        fx: np.ndarray | None = None
        fy: np.ndarray | None = None
        for position, event in enumerate(batch.events):
            state.seen += 1
            state.ids.append(event.id)
            if len(state.ref_x) < config.reference_events:
                state.ref_x.append(x[position])
                state.ref_y.append(y[position])
                continue
            scorers = self._scorers(state)
            if fx is None or fy is None:  # per row against fixed random features: batching does not matter
                fx, fy = scorers[0].features(x), scorers[1].features(y)
            self._push(state, fx[position], fy[position])
            after = state.seen - config.reference_events
            if after >= config.input_window and after % config.input_every == 0:
                self._input_test(batch.key, state, event, findings)
            if state.shifted:
                batch.flag(position, FLAG)
            if after >= config.output_window and after % config.output_every == 0:
                self._output_test(batch.key, state, event, findings)
        return findings

    def snapshot(self, key: StreamKey) -> dict[str, Any] | None:
        state = self._states.get(key)
        if state is None:
            return None
        return {"format": SNAPSHOT_VERSION, "seen": state.seen,
                "ref_x": _pack(np.stack(state.ref_x)) if state.ref_x else "",
                "ref_y": _pack(np.stack(state.ref_y)) if state.ref_y else "",
                "win_x": _pack(np.stack(state.win_x), "<f8") if state.win_x else "",
                "win_y": _pack(np.stack(state.win_y), "<f8") if state.win_y else "",
                "sum_x": _pack(state.sum_x, "<f8") if state.sum_x is not None else "",
                "sum_y": _pack(state.sum_y, "<f8") if state.sum_y is not None else "",
                "ids": list(state.ids), "shifted": state.shifted, "behaving": state.behaving}

    def restore(self, key: StreamKey, state: Any) -> None:
        if state is None:
            self._states.pop(key, None)
            return
        if not isinstance(state, dict) or state.get("format") != SNAPSHOT_VERSION:
            got = state.get("format") if isinstance(state, dict) else type(state).__name__
            raise ConfigError(f"behaviour snapshot format must be {SNAPSHOT_VERSION!r}; got {got!r}")
        config = self.config
        dx, dy = config.input_dim + 4, config.output_dim + 4
        restored = _KeyState(seen=int(state["seen"]), ref_x=_unpack(state["ref_x"], dx),
                             ref_y=_unpack(state["ref_y"], dy),
                             win_x=deque(_unpack(state["win_x"], config.features, "<f8")),
                             win_y=deque(_unpack(state["win_y"], config.features, "<f8")),
                             shifted=bool(state["shifted"]), behaving=bool(state["behaving"]))
        for name in ("sum_x", "sum_y"):
            rows = _unpack(state[name], config.features, "<f8")
            setattr(restored, name, rows[0] if rows else None)
        restored.ids.extend(str(i) for i in state["ids"])
        self._states[key] = restored

    def forget(self, key: StreamKey) -> None:
        self._states.pop(key, None)

    # --- internals ----------------------------------------------------------------
    def _scorers(self, state: _KeyState) -> tuple[RffMmd, RffMmd]:
        if state.scorers is None:
            config = self.config
            state.scorers = tuple(  # type: ignore[assignment]
                RffMmd(np.stack(ref), features=config.features, alpha=config.alpha, draws=config.draws,
                       seed=config.seed) for ref in (state.ref_x, state.ref_y))
        assert state.scorers is not None
        return state.scorers

    def _push(self, state: _KeyState, fx: np.ndarray, fy: np.ndarray) -> None:
        config = self.config
        state.sum_x = fx.copy() if state.sum_x is None else state.sum_x + fx
        state.win_x.append(fx)
        if len(state.win_x) > config.input_window:
            state.sum_x -= state.win_x.popleft()
        state.sum_y = fy.copy() if state.sum_y is None else state.sum_y + fy
        state.win_y.append(fy)
        if len(state.win_y) > config.output_window:
            state.sum_y -= state.win_y.popleft()

    def _input_test(self, key: StreamKey, state: _KeyState, event: Any, findings: Findings) -> None:
        assert state.scorers is not None
        assert state.sum_x is not None
        score = state.scorers[0].test_mean(state.sum_x / len(state.win_x), len(state.win_x))
        if score.drift and not state.shifted:
            findings.alerts.append(self._alert(
                key, state, event, detector="input_drift", metric="input_text", severity="low",
                score=score.mmd2, threshold=score.threshold,
                evidence={"test": "mmd2_rff", "representation": "text_ngrams", "mmd2": score.mmd2,
                          "mmd2_threshold": score.threshold, "p_value": score.p_value,
                          "window_events": len(state.win_x)}))
        state.shifted = score.drift

    def _output_test(self, key: StreamKey, state: _KeyState, event: Any, findings: Findings) -> None:
        assert state.scorers is not None
        assert state.sum_y is not None
        score = state.scorers[1].test_mean(state.sum_y / len(state.win_y), len(state.win_y))
        if score.drift and not state.behaving:
            explained = state.shifted
            severity: Severity = "low" if explained else "high"
            evidence: dict[str, Any] = {
                "test": "mmd2_rff", "representation": "text_shape_ngrams", "mmd2": score.mmd2,
                "mmd2_threshold": score.threshold, "p_value": score.p_value, "window_events": len(state.win_y),
                "input_shifted": explained}
            if explained:
                evidence["explained_by"] = "input_drift"
            findings.alerts.append(self._alert(key, state, event, detector="behaviour", metric="output_text",
                                               severity=severity, score=score.mmd2,
                                               threshold=score.threshold, evidence=evidence))
        state.behaving = score.drift

    def _alert(self, key: StreamKey, state: _KeyState, event: Any, *, detector: str, metric: str,
               severity: Severity, score: float, threshold: float, evidence: dict[str, Any]) -> Alert:
        logger.info("%s alert model=%s version=%s severity=%s event=%d", detector, key[0], key[1], severity,
                    state.seen)
        evidence = {"metric": metric, **evidence, "detection_index": state.seen, "event_ids": list(state.ids)}
        return Alert.create(ts_ms=event.ts_ms, model_id=key[0], model_version=key[1], tenant_id="",
                            detector=detector, metric=metric, severity=severity, score=float(score),
                            threshold=float(threshold), window_start_ms=event.ts_ms, window_end_ms=event.ts_ms,
                            discriminator=f"{detector}:{state.seen}", evidence=evidence)
