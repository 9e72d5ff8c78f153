"""Behaviour drift told apart from input drift, on a hashed text representation of every event.

For each (model_id, model_version) the stage represents every event twice,
with :mod:`detectors.text_hash` (no model, a few microseconds per event):

* the **input** by its hashed byte 4-grams (what is asked: topic and form);
* the **output** by the hashed n-grams of its *shape* (letters, digits and
  capitals folded, punctuation and layout kept: how the model answers), or,
  with ``representation="distilled"``, by a static embedding distilled from
  MiniLM (:mod:`monitor.static_model`, passed in as ``encoder``) followed by
  the same format cues.

The first ``reference_events`` events are the reference of both. After it,

* **input drift**: every ``input_every`` events the last ``input_window``
  inputs are scored against the reference inputs (MMD² and energy distance,
  :class:`detectors.embedding.scorer.EmbeddingScorer`, each against its
  cached null), and each input's k-NN novelty is counted over the same
  window. Either test rejecting marks the key *input-shifted*, and every
  event while shifted is flagged ``input_shift`` for later stages. An
  excursion that lasts ``input_sustain`` tests in a row raises one
  ``input_drift`` alert (``low``: what users ask changed, nobody is paged);
  a shorter one is a wobble of the short window (at ``alpha`` per test and a
  test at every event, a stable stream crosses by chance a few times per
  thousand events), so it flags its events but tells nobody;
* **behaviour drift**: every ``output_every`` events the last
  ``output_window`` outputs are scored against the reference outputs the
  same way, at ``output_alpha``. Output rejections in a row make an
  excursion; a single rejection is as likely a wobble of the window as a
  change, while a changed model keeps being rejected. The excursion pages
  (one ``high`` ``behaviour`` alert) once ``sustain`` tests in a row have
  rejected the outputs *and* found the inputs unmoved (the same kind of
  questions, answered differently: a swapped or updated model). Inputs
  have moved when they are shifted now (the short input window) or are not
  shown consistent with the reference's over the last ``output_window`` or
  ``inputs_long_window`` events (a slow drift, or a mix of populations,
  that the short window cannot see); "consistent" is a loose level,
  ``inputs_alpha`` (0.3), so a page needs the inputs shown alike, not
  merely not shown different. An excursion whose inputs have moved at its
  ``sustain``-th test is one ``low`` alert with ``explained_by:
  input_drift``; it still pages later if its inputs come back while its
  answers stay moved.

Tests are decided event by event in arrival order, on the whole batch at
once: a vector does not depend on its batch (:meth:`RffMmd.features` runs
on fixed-size blocks) and the windows hold the random features in fixed
point, so a window's sum after any event is an exact integer whatever the
batch boundaries. The same events therefore raise the same alerts in any
batching, and the snapshot holds the reference and the windows exactly.
"""

from __future__ import annotations

import base64
import logging
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from detectors.rff_mmd import RffMmd
from detectors.text_hash import CUES, hash_texts, shape_texts
from monitor.alerts import Alert, Findings, Severity
from monitor.errors import ConfigError, SnapshotError
from monitor.pipeline import KeyBatch, StreamKey

__all__ = ["FLAG", "SNAPSHOT_VERSION", "BehaviourConfig", "BehaviourStage", "represent"]

logger = logging.getLogger(__name__)

#: v6: the short input window's excursion length (``input_sustain``) is kept;
#: v5: the inputs' window spans ``inputs_long_window`` events and the excursion (its rejections, its
#: unmoved-input tests, its page) is kept;
#: v4 named the output representation; v3 snapshots are all "shape".
SNAPSHOT_VERSION = "behaviour.v6"
_OLDER_VERSIONS = ("behaviour.v5", "behaviour.v4", "behaviour.v3")
#: Fixed-point scale of the windows' random features: integer sums are exact in any batching.
_SCALE = float(2**32)
FLAG = "input_shift"
_EVIDENCE_EVENTS = 5
_OUTPUT_REPRESENTATIONS = {"shape": "text_shape_ngrams", "distilled": "static_embedding_minilm"}


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
    #: False alarms per input test (the short input window, at every event).
    alpha: float = 0.001
    #: Input tests in a row that must reject before an ``input_drift`` alert is raised (the flag is set
    #: from the first).
    input_sustain: int = 20
    #: False alarms per output test (every ``output_every`` events).
    output_alpha: float = 0.0003
    #: Output tests in a row, ``output_every`` events apart, that must reject (and, for a page, find the
    #: inputs unmoved) before a behaviour alert is raised. Three, not two: on the benign streams of
    #: ``driftwatch evaluate benign`` (seeds 0-9) two gave 8 high incidents per million events and three
    #: give 1, at the cost of 4 of the 50 swaps of ``evaluate swaps`` seeds 0-9 (42 found against 46; see
    #: docs/swaps.md, fourteenth session).
    sustain: int = 3
    #: The inputs of the last ``output_window`` and of the last ``inputs_long_window`` events are unmoved
    #: when both are consistent with the reference's at this level; far looser than ``alpha`` on purpose:
    #: a page needs the inputs shown alike.
    inputs_alpha: float = 0.3
    inputs_long_window: int = 300
    #: Random Fourier features of the RBF kernel (:mod:`detectors.rff_mmd`).
    features: int = 256
    draws: int = 500
    seed: int = 0
    #: Outputs as hashed shape n-grams, or as a distilled static embedding of ``output_dim`` dimensions.
    representation: Literal["shape", "distilled"] = "shape"

    def __post_init__(self) -> None:
        longest = max(self.output_window, self.input_window, self.inputs_long_window)
        if longest >= self.reference_events:
            raise ConfigError("behaviour windows must be shorter than reference_events (their null is drawn "
                              f"from its subsets); got a window of {longest} for {self.reference_events}")
        if self.inputs_long_window < self.output_window:
            raise ConfigError(f"behaviour inputs_long_window must be at least output_window "
                              f"({self.output_window}); got {self.inputs_long_window}")
        if self.input_sustain < 1:
            raise ConfigError(f"behaviour input_sustain must be at least 1 test; got {self.input_sustain}")
        if self.sustain < 1:
            raise ConfigError(f"behaviour sustain must be at least 1 test; got {self.sustain}")


#: Texts to unit vectors, one row per text that depends on that text only (the distilled representation).
Encoder = Callable[[Sequence[str]], np.ndarray]


def represent(inputs: list[str], outputs: list[str], config: BehaviourConfig,
              encoder: Encoder | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(input vectors, output vectors) of a batch, float32; each row depends on its own event only."""
    x = hash_texts(inputs, dim=config.input_dim, ngrams=(4,), max_bytes=config.input_bytes)
    shapes = shape_texts(outputs, max_bytes=config.output_bytes)
    if config.representation == "distilled":
        if encoder is None:
            raise ConfigError("behaviour representation 'distilled' needs an encoder; got none")
        y = hash_texts(shapes, dim=2, ngrams=(), max_bytes=config.output_bytes)  # the cues alone
        vectors = encoder(outputs)
        if vectors.shape != (len(outputs), config.output_dim):
            raise ConfigError(f"behaviour encoder must give ({len(outputs)}, {config.output_dim}) vectors; "
                              f"got {vectors.shape}")
        y = np.concatenate([vectors.astype(np.float32), y[:, 2:]], axis=1)
    else:
        y = hash_texts(shapes, dim=config.output_dim, ngrams=(3, 5), max_bytes=config.output_bytes)
    # The length cue of the whole answer, not of the head that is hashed: a model that answers at
    # twice the length is another model even when its first paragraph reads the same.
    y[:, config.output_dim] = np.log1p(np.fromiter((len(t.encode("utf-8", "replace")) for t in outputs),
                                                   dtype=np.float64, count=len(outputs))) / 8.0
    return x, y


@dataclass
class _Window:
    """The last ``size`` feature rows of one side, in fixed point (see :data:`_SCALE`).

    Rows are kept column-major: a running sum down the rows then reads each feature's column
    contiguously, about three times faster than numpy's cumulative sum over the rows of a row-major
    array (0.46 against 1.38 ms for 556 rows of 256 features on this machine).
    """

    size: int
    rows: np.ndarray  # (<= size, D) int64

    def extend(self, new: np.ndarray, spans: Sequence[int] = (), *, at: np.ndarray
               ) -> list[tuple[np.ndarray, np.ndarray]]:
        """Append ``new`` rows; for the window and each shorter span, the sum of its last rows after each test.

        Returns ``(sums, counts)`` per span (the window's own ``size`` first, then ``spans``): int64
        sums, one row per new row where the mask ``at`` is true (the tests), and how
        many rows each sum holds (fewer while the window fills). Integer sums are exact, so the sum
        after an event is the same whatever the batch boundaries, and whichever way it is summed.
        """
        joined = np.empty((len(self.rows) + len(new), new.shape[1]), dtype=np.int64, order="F")
        joined[:len(self.rows)] = self.rows
        joined[len(self.rows):] = new
        ends = (np.arange(len(self.rows), len(joined)) + 1)[at]
        starts = [np.maximum(ends - span, 0) for span in (self.size, *spans)]
        if not len(ends):
            out = [(np.zeros((0, joined.shape[1]), dtype=np.int64), ends - begin) for begin in starts]
        elif 4 * len(ends) >= len(new):  # most rows are tested: one running sum down all of them
            running = np.zeros((len(joined) + 1, joined.shape[1]), dtype=np.int64, order="F")
            np.cumsum(joined, axis=0, out=running[1:])
            out = [(running[ends] - running[begin], ends - begin) for begin in starts]
        else:  # a test every so many rows: the running sum at the tests' ends and starts only
            marks = np.unique(np.concatenate([[0, len(joined)], ends, *starts]))
            running = np.zeros((len(marks), joined.shape[1]), dtype=np.int64)
            np.cumsum(np.add.reduceat(joined, marks[:-1], axis=0), axis=0, out=running[1:])
            at_end = running[np.searchsorted(marks, ends)]
            out = [(at_end - running[np.searchsorted(marks, begin)], ends - begin) for begin in starts]
        self.rows = joined[-self.size:].copy(order="F")  # a view would keep the whole batch alive (MiBs)
        return out


@dataclass
class _KeyState:
    seen: int = 0
    ref_x: list[np.ndarray] = field(default_factory=list)
    ref_y: list[np.ndarray] = field(default_factory=list)
    win_x: _Window | None = None
    win_y: _Window | None = None
    #: The inputs of the last ``inputs_long_window`` events (and, within it, of the output window's):
    #: was the window asked something else than the reference?
    win_xo: _Window | None = None
    #: Consecutive output rejections so far (the current excursion's length in tests), how many of the
    #: last of them found the inputs unmoved, and whether the excursion has paged.
    rejections: int = 0
    unmoved: int = 0
    paged: bool = False
    ids: deque[str] = field(default_factory=lambda: deque(maxlen=_EVIDENCE_EVENTS))
    #: Consecutive input rejections so far (the short window's current excursion, in tests).
    shift_run: int = 0
    behaving: bool = False
    scorers: tuple[RffMmd, RffMmd] | None = None

    @property
    def shifted(self) -> bool:
        """The short input window rejected at its last test."""
        return self.shift_run > 0


def _pack(array: np.ndarray, dtype: str = "<f4") -> str:
    return base64.b64encode(np.ascontiguousarray(array, dtype=dtype).tobytes()).decode("ascii")


def _unpack(text: str, dimension: int, dtype: str = "<f4") -> np.ndarray:
    if not text:
        return np.zeros((0, dimension), dtype=dtype)
    return np.frombuffer(base64.b64decode(text), dtype=dtype).reshape(-1, dimension)


def _fixed(features: np.ndarray) -> np.ndarray:
    return np.rint(features.astype(np.float64) * _SCALE).astype(np.int64)


class BehaviourStage:
    """Input drift (``input_drift``, low) and behaviour drift (``behaviour``, high unless inputs moved)."""

    name = "behaviour"

    def __init__(self, config: BehaviourConfig | None = None, encoder: Encoder | None = None) -> None:
        self.config = config or BehaviourConfig()
        if self.config.representation == "distilled" and encoder is None:
            raise ConfigError("behaviour representation 'distilled' needs an encoder (monitor.static_model); got none")
        self._encoder = encoder
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
        events = batch.events
        x, y = represent([e.input for e in events], [e.output for e in events], config, self._encoder)
        first = min(len(events), config.reference_events - len(state.ref_x))  # events still filling the reference
        # Copies: rows of the batch's arrays would keep the whole first batch alive with the reference.
        state.ref_x.extend(x[:first].copy())
        state.ref_y.extend(y[:first].copy())
        for event in events[:first]:
            state.ids.append(event.id)
        state.seen += first
        if first == len(events):
            return findings
        scorers = self._scorers(state)
        if state.win_x is None or state.win_y is None or state.win_xo is None:
            empty = np.zeros((0, config.features), dtype=np.int64)
            state.win_x, state.win_y = _Window(config.input_window, empty), _Window(config.output_window, empty)
            state.win_xo = _Window(config.inputs_long_window, empty)
        after = state.seen - config.reference_events + np.arange(1, len(events) - first + 1)
        input_tests = (after >= config.input_window) & (after % config.input_every == 0)
        output_tests = (after >= config.output_window) & (after % config.output_every == 0)
        # Each window's sums at its own tests only.
        phi_x = _fixed(scorers[0].features(x[first:]))
        (sums_x, _), = state.win_x.extend(phi_x, at=input_tests)
        (sums_xl, counts_xl), (sums_xo, _) = state.win_xo.extend(phi_x, (config.output_window,), at=output_tests)
        (sums_y, _), = state.win_y.extend(_fixed(scorers[1].features(y[first:])), at=output_tests)
        mmd_x = np.full(len(after), np.nan)
        mmd_y = np.full(len(after), np.nan)
        if input_tests.any():
            mmd_x[input_tests] = scorers[0].mmd2(sums_x / (_SCALE * config.input_window))
        mmd_xo = np.full(len(after), np.nan)
        mmd_xl = np.full(len(after), np.nan)
        long_counts = np.zeros(len(after), dtype=np.int64)
        if output_tests.any():
            mmd_y[output_tests] = scorers[1].mmd2(sums_y / (_SCALE * config.output_window))
            mmd_xo[output_tests] = scorers[0].mmd2(sums_xo / (_SCALE * config.output_window))
            mmd_xl[output_tests] = scorers[0].mmd2(sums_xl / (_SCALE * counts_xl[:, None]))
            long_counts[output_tests] = counts_xl
        for offset, event in enumerate(events[first:]):
            position = first + offset
            state.seen += 1
            state.ids.append(event.id)
            if input_tests[offset]:
                self._input_test(batch.key, state, event, float(mmd_x[offset]), findings)
            if state.shifted:
                batch.flag(position, FLAG)
            if output_tests[offset]:
                inputs = ((float(mmd_xo[offset]), config.output_window),
                          (float(mmd_xl[offset]), int(long_counts[offset])))
                self._output_test(batch.key, state, event, float(mmd_y[offset]), inputs, findings)
        return findings

    def snapshot(self, key: StreamKey) -> dict[str, Any] | None:
        state = self._states.get(key)
        if state is None:
            return None
        windows = {name: _pack(window.rows, "<i8") if window is not None else ""
                   for name, window in (("win_x", state.win_x), ("win_y", state.win_y), ("win_xo", state.win_xo))}
        return {"format": SNAPSHOT_VERSION, "representation": self.config.representation, "seen": state.seen,
                "ref_x": _pack(np.stack(state.ref_x)) if state.ref_x else "",
                "ref_y": _pack(np.stack(state.ref_y)) if state.ref_y else "",
                **windows, "started": state.win_x is not None,
                "ids": list(state.ids), "shift_run": state.shift_run, "behaving": state.behaving,
                "rejections": state.rejections, "unmoved": state.unmoved, "paged": state.paged}

    def restore(self, key: StreamKey, state: Any) -> None:
        if state is None:
            self._states.pop(key, None)
            return
        if not isinstance(state, dict) or state.get("format") not in (SNAPSHOT_VERSION, *_OLDER_VERSIONS):
            got = state.get("format") if isinstance(state, dict) else type(state).__name__
            raise SnapshotError(f"behaviour snapshot format must be {SNAPSHOT_VERSION!r}; got {got!r}")
        config = self.config
        representation = state.get("representation", "shape")  # before v4, only "shape" existed
        if representation != config.representation:
            raise SnapshotError(f"behaviour snapshot holds {representation!r} vectors; this stage represents "
                                f"outputs as {config.representation!r}")
        try:
            restored = _KeyState(seen=int(state["seen"]),
                                 ref_x=list(_unpack(state["ref_x"], config.input_dim + len(CUES))),
                                 ref_y=list(_unpack(state["ref_y"], config.output_dim + len(CUES))),
                                 behaving=bool(state["behaving"]),
                                 # Before v6 a flag said "shifted", and an input excursion was alerted at its
                                 # first rejection.
                                 shift_run=int(state["shift_run"]) if "shift_run" in state
                                 else config.input_sustain if state["shifted"] else 0,
                                 # Before v5 an excursion was alerted at its first rejection.
                                 rejections=int(state.get("rejections", config.sustain if state["behaving"] else 0)),
                                 unmoved=int(state.get("unmoved", 0)),
                                 paged=bool(state.get("paged", state["behaving"])))
            if state["started"]:
                # Before v5 the inputs' window held the output window's events only: the longer span
                # fills again from the next events.
                for name, size in (("win_x", config.input_window), ("win_y", config.output_window),
                                   ("win_xo", config.inputs_long_window)):
                    rows = _unpack(state[name], config.features, "<i8").astype(np.int64)
                    setattr(restored, name, _Window(size, rows))
            restored.ids.extend(str(i) for i in state["ids"])
        except (KeyError, TypeError, ValueError) as error:
            raise SnapshotError(f"behaviour snapshot is not valid: {error}") from None
        self._states[key] = restored

    def forget(self, key: StreamKey) -> None:
        self._states.pop(key, None)

    # --- internals ----------------------------------------------------------------
    def _scorers(self, state: _KeyState) -> tuple[RffMmd, RffMmd]:
        if state.scorers is None:
            config = self.config
            state.scorers = tuple(  # type: ignore[assignment]
                RffMmd(np.stack(ref).astype(np.float64), features=config.features, alpha=alpha,
                       draws=config.draws, seed=config.seed)
                for ref, alpha in ((state.ref_x, config.alpha), (state.ref_y, config.output_alpha)))
        assert state.scorers is not None
        return state.scorers

    def _input_test(self, key: StreamKey, state: _KeyState, event: Any, mmd2: float, findings: Findings) -> None:
        assert state.scorers is not None
        config = self.config
        scorer, window = state.scorers[0], config.input_window
        drift = mmd2 > scorer.threshold(window)
        state.shift_run = state.shift_run + 1 if drift else 0
        if state.shift_run != config.input_sustain:
            return
        findings.alerts.append(self._alert(
            key, state, event, detector="input_drift", metric="input_text", severity="low",
            score=mmd2, threshold=scorer.threshold(window),
            evidence={"test": "mmd2_rff", "representation": "text_ngrams", "mmd2": mmd2,
                      "mmd2_threshold": scorer.threshold(window), "p_value": scorer.p_value(mmd2, window),
                      "alpha": config.alpha, "window_events": window, "sustained_tests": state.shift_run,
                      # The excursion's first rejected event, counted as ``detection_index`` is.
                      "shift_index": state.seen - state.shift_run + 1}))

    def _output_test(self, key: StreamKey, state: _KeyState, event: Any, mmd2: float,
                     inputs: Sequence[tuple[float, int]], findings: Findings) -> None:
        """One output test; ``inputs`` is (MMD², events) of the inputs over the output window and the long one."""
        assert state.scorers is not None
        config = self.config
        scorer, window = state.scorers[1], config.output_window
        drift = mmd2 > scorer.threshold(window)
        state.behaving = drift
        if not drift:
            state.rejections, state.unmoved, state.paged = 0, 0, False
            return
        # The inputs have moved when they are shifted now (the short input window) or either horizon is not
        # shown consistent with the reference's: a slow drift or a mix of populations the short window
        # cannot see. Answers that moved with them are explained by what was asked.
        horizons = [{"events": events, "mmd2": value, "p_value": state.scorers[0].p_value(value, events)}
                    for value, events in inputs]
        inputs_moved = any(h["p_value"] < config.inputs_alpha for h in horizons)
        explained = state.shifted or inputs_moved
        state.rejections += 1
        state.unmoved = 0 if explained else state.unmoved + 1
        if state.paged or state.rejections < config.sustain:
            return
        page = state.unmoved >= config.sustain
        if not page and state.rejections > config.sustain:
            return  # this excursion's low alert is out; it pages once its inputs are shown unmoved
        state.paged = page
        evidence: dict[str, Any] = {
            "test": "mmd2_rff", "representation": _OUTPUT_REPRESENTATIONS[config.representation],
            "mmd2": mmd2, "mmd2_threshold": scorer.threshold(window), "p_value": scorer.p_value(mmd2, window),
            "alpha": config.output_alpha, "window_events": window, "sustained_tests": state.rejections,
            "unmoved_input_tests": state.unmoved, "input_shifted": not page,
            "window_inputs": {**horizons[0], "alpha": config.inputs_alpha, "moved": inputs_moved,
                              "horizons": horizons}}
        if not page:
            evidence["explained_by"] = "input_drift"
        elif state.rejections > config.sustain:
            evidence["escalated"] = True  # raised low (explained by the inputs), whose inputs have since come back
        findings.alerts.append(self._alert(key, state, event, detector="behaviour", metric="output_text",
                                           severity="high" if page else "low", score=mmd2,
                                           threshold=scorer.threshold(window), evidence=evidence))

    def _alert(self, key: StreamKey, state: _KeyState, event: Any, *, detector: str, metric: str,
               severity: Severity, score: float, threshold: float, evidence: dict[str, Any]) -> Alert:
        logger.info("%s alert model=%s version=%s severity=%s event=%d", detector, key[0], key[1], severity,
                    state.seen)
        evidence = {"metric": metric, **evidence, "detection_index": state.seen, "event_ids": list(state.ids)}
        return Alert.create(ts_ms=event.ts_ms, model_id=key[0], model_version=key[1], tenant_id="",
                            detector=detector, metric=metric, severity=severity, score=float(score),
                            threshold=float(threshold), window_start_ms=event.ts_ms, window_end_ms=event.ts_ms,
                            discriminator=f"{detector}:{state.seen}", evidence=evidence)
