"""The probe stage: a linear probe on events' ``activations`` (white-box, research tier).

Weights file: a NumPy ``.npz`` archive with ``w``, the weight vector of
shape (d,) (or (1, d)), and ``b``, the bias (a scalar or a 1-element array),
where d is the length of the events' ``activations``. For example::

    numpy.savez("probe.npz", w=weights.astype("float32"), b=np.float32(-1.5))

Per (model_id, model_version), each event with activations gets
p = sigmoid(w · a + b). An event with p above ``probe_threshold`` is flagged
``probe``. The first ``probe_reference_size`` scores are the reference;
each later window of ``probe_window`` scores writes its mean and crossing
fraction to ``window_metrics`` and raises a ``probe`` alert when the mean
crosses the threshold (``probe:threshold``) or the score distribution has
shifted against the reference (``probe:shift``, two-sample KS test,
p < ``probe_alpha``). Activations of the wrong length are counted and skipped.

State (format ``probe.v1``): at most reference_size + window floats per key.
"""

from __future__ import annotations

import logging
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from detectors.probe import LinearProbe, score_shift
from monitor.alerts import Alert, Findings, MetricRow, Severity
from monitor.errors import ConfigError, SnapshotError
from monitor.pipeline import KeyBatch, StreamKey
from monitor.settings.stages import ProbeConfig

logger = logging.getLogger(__name__)

__all__ = ["SNAPSHOT_VERSION", "ProbeConfig", "ProbeStage", "load_probe"]

SNAPSHOT_VERSION = "probe.v1"
DETECTOR = "probe"
_EVIDENCE_EVENTS = 10


def load_probe(path: str | Path) -> LinearProbe:
    """Read a probe from an ``.npz`` file holding ``w`` (d,) and ``b`` (scalar)."""
    path = Path(path)
    try:
        with np.load(path, allow_pickle=False) as archive:
            missing = sorted({"w", "b"} - set(archive.files))
            if missing:
                raise ConfigError(f"probe file {path} lacks {', '.join(missing)}; expected arrays w (d,) and b ()")
            weights, bias = archive["w"], np.asarray(archive["b"]).reshape(-1)
    except OSError as exc:
        raise ConfigError(f"cannot read probe file {path}: {exc}") from exc
    except (ValueError, zipfile.BadZipFile) as exc:
        raise ConfigError(f"probe file {path} is not a .npz archive: {exc}") from exc
    if bias.size != 1:
        raise ConfigError(f"probe file {path}: b must be a scalar; got shape {bias.shape}")
    try:
        return LinearProbe(weights, float(bias[0]))
    except ValueError as exc:
        raise ConfigError(f"probe file {path}: {exc}") from exc


@dataclass
class _KeyState:
    reference: list[float] = field(default_factory=list)
    window: list[float] = field(default_factory=list)
    window_ids: list[str] = field(default_factory=list)
    window_start_ms: int = 0
    windows: int = 0
    rejected: int = 0


class ProbeStage:
    """Linear-probe scores per stream key; see the module docstring.

    Examples
    --------
    >>> from monitor.events import Event
    >>> stage = ProbeStage(LinearProbe(np.array([1.0, 0.0]), 0.0), ProbeConfig(window=8, reference_size=8))
    >>> events = [Event(ts=1_700_000_000_000 + i, model_id="m", model_version="1", input="q",
    ...                 output="a", activations=[5.0 if i >= 8 else -5.0, 0.0]) for i in range(16)]
    >>> [a.metric for a in stage.process(KeyBatch(("m", "1"), events)).alerts]
    ['probe:threshold', 'probe:shift']
    """

    name = "probe"

    def __init__(self, probe: LinearProbe, config: ProbeConfig | None = None) -> None:
        self.probe = probe
        self.config = config = config or ProbeConfig()
        self.threshold = config.threshold
        self.window = config.window
        self.reference_size = config.reference_size
        self.alpha = config.alpha
        self._states: dict[StreamKey, _KeyState] = {}

    def process(self, batch: KeyBatch) -> Findings:
        findings = Findings()
        state = self._states.setdefault(batch.key, _KeyState())
        indices = [i for i, e in enumerate(batch.events)
                   if e.activations is not None and len(e.activations) == self.probe.dimension]
        state.rejected += sum(1 for e in batch.events if e.activations is not None) - len(indices)
        if not indices:
            return findings
        scores = self.probe.score(np.array([batch.events[i].activations for i in indices]))
        for index, score in zip(indices, scores.tolist(), strict=True):
            if not np.isfinite(score):
                state.rejected += 1
                continue
            event = batch.events[index]
            if score > self.threshold:
                batch.flag(index, DETECTOR)
            if len(state.reference) < self.reference_size:
                state.reference.append(score)
                continue
            if not state.window:
                state.window_start_ms = event.ts_ms
            state.window.append(score)
            state.window_ids.append(event.id)
            if len(state.window) == self.window:
                self._close_window(batch.key, state, event.ts_ms, findings)
        return findings

    def _close_window(self, key: StreamKey, state: _KeyState, end_ms: int, findings: Findings) -> None:
        scores = np.asarray(state.window)
        mean, crossing = float(scores.mean()), float((scores > self.threshold).mean())
        statistic, p_value = score_shift(np.asarray(state.reference), scores)
        start_ms = state.window_start_ms
        for metric, value, extra in (("mean_score", mean, {"threshold": self.threshold}),
                                     ("crossing_fraction", crossing, {}),
                                     ("ks_statistic", statistic, {"p_value": p_value})):
            findings.metrics.append(MetricRow(model_id=key[0], model_version=key[1], detector=DETECTOR,
                                              metric=metric, window_start_ms=start_ms, window_end_ms=end_ms,
                                              value=value, count=len(scores), extra=extra))
        ranked = np.argsort(-scores, kind="stable")[:_EVIDENCE_EVENTS]
        evidence = {"event_ids": [state.window_ids[i] for i in ranked], "mean_score": mean,
                    "crossing_fraction": crossing, "ks_statistic": statistic, "p_value": p_value,
                    "window": state.windows}
        fired: list[tuple[str, float, float, Severity]] = []
        if mean > self.threshold:
            fired.append(("probe:threshold", mean, self.threshold, "high"))
        if p_value < self.alpha:
            fired.append(("probe:shift", statistic, self.alpha, "medium"))
        for metric, value, threshold, severity in fired:
            findings.alerts.append(Alert.create(
                ts_ms=end_ms, model_id=key[0], model_version=key[1], detector=DETECTOR, metric=metric,
                severity=severity, score=value, threshold=threshold, window_start_ms=start_ms,
                window_end_ms=end_ms, discriminator=f"window:{state.windows}", evidence=evidence))
        state.windows += 1
        state.window, state.window_ids = [], []

    def snapshot(self, key: StreamKey) -> dict[str, Any] | None:
        state = self._states.get(key)
        if state is None:
            return None
        return {"format": SNAPSHOT_VERSION, "reference": list(state.reference), "window": list(state.window),
                "window_ids": list(state.window_ids), "window_start_ms": state.window_start_ms,
                "windows": state.windows, "rejected": state.rejected}

    def forget(self, key: StreamKey) -> None:
        self._states.pop(key, None)

    def restore(self, key: StreamKey, state: Any) -> None:
        if state is None:
            return
        if not isinstance(state, dict) or state.get("format") != SNAPSHOT_VERSION:
            got = state.get("format") if isinstance(state, dict) else type(state).__name__
            raise SnapshotError(f"probe snapshot format must be {SNAPSHOT_VERSION!r}; got {got!r}")
        self._states[key] = _KeyState(
            reference=[float(v) for v in state["reference"]][: self.reference_size],
            window=[float(v) for v in state["window"]][: self.window],
            window_ids=[str(v) for v in state["window_ids"]][: self.window],
            window_start_ms=int(state["window_start_ms"]), windows=int(state["windows"]),
            rejected=int(state["rejected"]))
