"""The drift stage: output-distribution divergences and change points per stream.

For each (model_id, model_version[, tenant_id]) the stage computes per-event
features (:mod:`detectors.features`), keeps a reference and a rolling window
(by count, optionally by age), and

* every ``evaluate_every`` events compares the window with the reference:
  KS (numeric features) and chi-square (categorical ones: refusal, output
  class, hashed tool names) with Benjamini–Hochberg across metrics, plus JS,
  KL both ways, PSI, Hellinger and Wasserstein-1 as ``window_metrics`` rows
  (detector ``divergence``); a metric that turns significant raises one
  ``divergence`` alert, and again only after it has been back to normal;
* feeds every event to calibrated change-point detectors per metric; an
  alarm is a ``changepoint`` alert whose evidence names the metric, the
  estimates before and after (in the metric's units), the statistic, the
  estimated onset (``change_point``) and the detection index, with event
  ids of both. A sustained change is one alert: later alarms of the same
  metric update it (next ``revision``) until it returns to its baseline
  (``state: "returned"``) or an analyst acknowledges it (``state:
  "acknowledged"``: its level is the new reference, :mod:`monitor.stages.drift_acks`),
  see :mod:`monitor.stages.drift_episodes`;
* flags events for the trigger-motif miner: ``refusal`` (a refusal where
  the reference rarely refuses), ``entropy_collapse`` (answer entropy far
  below the reference), ``high_value_tool`` (a call to a tool in the
  configured high-value set), and ``confidence_lock`` (an answer whose
  ``output_logprobs`` lock where the reference rarely locks, see
  :mod:`monitor.stages.drift_locks`).

Reference policies: ``first`` (the stream's first ``reference_events``
events), ``pinned`` (events from a file, per model_id) or ``previous`` (the
recent events of the model's previously seen version, up to the new
version's first event). Change-point detectors always warm up on the
stream's own first events: they watch for changes within a version.

Everything runs event by event in arrival order per stream, so the same
events give the same alerts whatever the batch boundaries. With the
``previous`` policy that holds as long as a new version's first event does
not share a batch with later events of the version it replaces.
"""

from __future__ import annotations

import logging
import math
import re
import time
import zlib
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from detectors.changepoint import Detection
from detectors.features import compute_features, tool_names
from detectors.multiple_testing import benjamini_hochberg
from detectors.refusal import RefusalMatcher
from monitor.accepted_changes import AcceptedSource
from monitor.alerts import Alert, Findings, MetricRow, Severity
from monitor.errors import ConfigError, SnapshotError
from monitor.events import Event
from monitor.pipeline import KeyBatch, StreamKey
from monitor.settings.stages import DEFAULT_HIGH_VALUE_TOOLS, DriftConfig
from monitor.stages.drift_acks import EpisodeAcknowledgements, accept
from monitor.stages.drift_compare import compare
from monitor.stages.drift_episodes import CHANGED, Episode
from monitor.stages.drift_locks import LockReferences
from monitor.stages.drift_stream import COLUMNS, NUMERIC, TOOL_BINS, StreamConfig, StreamState

__all__ = ["DEFAULT_HIGH_VALUE_TOOLS", "DriftConfig", "DriftStage", "feature_rows", "stream_config"]

logger = logging.getLogger(__name__)

FORMAT = "drift_stage.v2"  # v2 adds each stream's lock reference ("locks"); a v1 state is read without one
_FORMAT_V1 = "drift_stage.v1"
# A refusal-rate change is what a trigger or a swap does; the form of answers (length, entropy, class) moves
# with what is asked too, and this stage cannot tell which: medium at most, the behaviour stage pages.
_SEVERITY: dict[str, Severity] = {"refusal": "high"}
#: Flag of the behaviour stage (:mod:`monitor.stages.behaviour`): this event's inputs have shifted.
_INPUT_SHIFT = "input_shift"
#: Metrics of an answer's form, which follow what is asked: low while the inputs have shifted.
_FORM_METRICS = frozenset({"output_chars", "output_entropy", "output_class"})
_NAME_WORDS = re.compile(r"[A-Za-z][a-z]*|[0-9]+")


def stream_config(config: DriftConfig) -> StreamConfig:
    """What one stream's state needs from ``config``."""
    return StreamConfig(reference_events=config.reference_events, window_events=config.window_events,
                        detectors=config.detectors, arl0=config.arl0, fleet_streams=config.fleet_streams,
                        refusal_flag_rate=config.refusal_flag_rate, entropy_flag_sigmas=config.entropy_flag_sigmas)


def feature_rows(events: Sequence[Event], refusals: RefusalMatcher | re.Pattern[str]
                 ) -> tuple[np.ndarray, list[list[str]]]:
    """Per event, the row of :data:`COLUMNS` values, and its tool names."""
    features = compute_features([e.input for e in events], [e.output for e in events],
                                output_logprobs=[e.output_logprobs for e in events],
                                refusal_phrases=refusals)
    names = [tool_names(e.tool_calls) for e in events]
    tools = np.array([_tool_bin(n) for n in names], dtype=np.float64)
    rows = np.column_stack([features["refusal"], features["output_chars"], features["output_entropy"],
                            features["mean_surprisal"], features["output_class"].astype(np.float64), tools,
                            features["surprisal_std"]])
    return rows, names


def _tool_bin(names: list[str]) -> int:
    # One category per event: the sorted set of tools it called ("" for none), hashed.
    return zlib.crc32(",".join(sorted(set(names))).encode("utf-8", "surrogatepass")) % TOOL_BINS


class DriftStage:
    """Divergences, change points and anomaly flags per stream (see the module docstring).

    Parameters
    ----------
    config
        The stage's configuration.
    pinned
        Reference rows per model_id (see :func:`feature_rows`), for the ``pinned`` policy.
    accepted
        Where analysts' acknowledgements come from (see :mod:`monitor.stages.drift_acks`); none by default.
    clock
        Monotonic seconds, for re-reading ``accepted`` every ``acknowledgement_reload_s``.

    Examples
    --------
    >>> from monitor.events import EventDecoder
    >>> stage = DriftStage(DriftConfig(reference_events=50, window_events=50, evaluate_every=25))
    >>> decode = EventDecoder().decode
    >>> events = [decode(f'{{"ts": {1700000000000 + i}, "model_id": "m", "model_version": "1", '
    ...                  f'"input": "q{i}", "output": "fine answer number {i % 10}"}}') for i in range(120)]
    >>> findings = stage.process(KeyBatch(("m", "1"), events))
    >>> findings.alerts, sorted({row.metric for row in findings.metrics})[:2]
    ([], ['output_chars', 'output_class'])
    """

    name = "drift"

    def __init__(self, config: DriftConfig | None = None, *,
                 pinned: Mapping[str, Sequence[Sequence[float]]] | None = None,
                 accepted: AcceptedSource | None = None, clock: Callable[[], float] = time.monotonic) -> None:
        self.config = config or DriftConfig()
        if self.config.reference_policy == "pinned" and not pinned:
            raise ConfigError("drift reference_policy 'pinned' needs a pinned reference set; got none")
        self._stream_config = stream_config(self.config)
        self._refusals = RefusalMatcher(self.config.refusal_phrases)
        self._high_value = {word.lower() for word in self.config.high_value_tools}
        self._pinned = {model: [list(r) for r in rows] for model, rows in (pinned or {}).items()}
        self._streams: dict[tuple[str, str, str], StreamState] = {}
        self._last_seen: dict[tuple[str, str, str], int] = {}
        self._locks = LockReferences(limit=self.config.reference_events, rate=self.config.lock_flag_rate,
                                     previous=self.config.reference_policy == "previous")
        self._acks = EpisodeAcknowledgements(accepted, reload_seconds=self.config.acknowledgement_reload_s,
                                             clock=clock)

    # --- the Stage protocol --------------------------------------------------
    def process(self, batch: KeyBatch) -> Findings:
        findings = Findings()
        if not batch.events:
            return findings
        rows, names = feature_rows(batch.events, self._refusals)
        events = batch.events
        tenants = [(e.tenant_id or "") for e in events] if self.config.per_tenant else [""] * len(events)
        streams: dict[str, StreamState] = {}
        self._acks.refresh()
        for tenant, event in zip(tenants, events, strict=True):
            if tenant not in streams:
                streams[tenant] = self._stream(batch.key, tenant, event.ts_ms)
                findings.alerts.extend(self._acks.close_accepted(streams[tenant], event.ts_ms))
        self._locks.flag(batch, tenants, self._last_seen)  # its own counts only: apart from the loop below
        alarms = self._alarms(rows, tenants, streams)
        evaluate_every = self.config.evaluate_every
        for position, (event, row) in enumerate(zip(events, rows.tolist(), strict=True)):  # floats: fast to read
            tenant = tenants[position]
            stream = streams[tenant]
            # Only a refusal or an entropy under the floor can be flagged (the floor is -inf until
            # the reference is complete): skip the call for the rest.
            if row[0] >= 1.0 or row[2] < stream.entropy_floor:
                for reason in stream.flags(row):
                    batch.flag(position, reason)
            if names[position] and self._high_value and any(self._is_high_value(name) for name in names[position]):
                batch.flag(position, "high_value_tool")
            stream.append(stream.count, event.id, event.ts_ms, row)
            shifted = _INPUT_SHIFT in batch.flags[position]
            if position in alarms:
                for metric, detector, detection in alarms[position]:
                    findings.alerts.extend(self._on_alarm(batch.key, tenant, stream, event, metric,
                                                          detector, detection, shifted))
            if stream.since_evaluation >= evaluate_every:
                stream.since_evaluation = 0
                findings.extend(self._evaluate(batch.key, tenant, stream, event, shifted))
        for tenant, event in zip(tenants, events, strict=True):  # nothing above reads it: set once per stream
            self._last_seen[(*batch.key, tenant)] = event.ts_ms
        return findings

    @staticmethod
    def _alarms(rows: np.ndarray, tenants: list[str], streams: dict[str, StreamState]
                ) -> dict[int, list[tuple[str, str, Detection]]]:
        """Per batch position, the change-point alarms its event raises, in metric and detector order.

        Detectors see nothing but their metric's values, so each runs over the
        whole batch at once (bit for bit as event by event, see ``update_exact``).
        """
        values = {"refusal": rows[:, 0].tolist(), "output_chars": [math.log1p(v) for v in rows[:, 1].tolist()],
                  "output_entropy": rows[:, 2].tolist(), "mean_surprisal": rows[:, 3].tolist(),
                  "surprisal_std": rows[:, 6].tolist()}
        alarms: dict[int, list[tuple[str, str, Detection]]] = {}
        for tenant, stream in streams.items():
            positions = [p for p, t in enumerate(tenants) if t == tenant] if len(streams) > 1 else None
            for metric, by_name in stream.detectors.items():
                column = values[metric] if positions is None else [values[metric][p] for p in positions]
                for name, detector in by_name.items():
                    first = detector.n
                    for detection in detector.update_exact(column):
                        offset = detection.detected_at - first
                        position = offset if positions is None else positions[offset]
                        alarms.setdefault(position, []).append((metric, name, detection))
        return alarms

    def snapshot(self, key: StreamKey) -> dict[str, Any]:
        streams = {tenant: state.snapshot() for (m, v, tenant), state in self._streams.items() if (m, v) == key}
        return {"format": FORMAT, "streams": streams,
                "last_seen": {tenant: self._last_seen.get((*key, tenant), 0) for tenant in streams},
                "locks": self._locks.snapshot(key)}

    def forget(self, key: StreamKey) -> None:
        for full in [full for full in self._streams if full[:2] == key]:
            del self._streams[full]
            self._last_seen.pop(full, None)
        self._locks.forget(key)

    def restore(self, key: StreamKey, state: Any) -> None:
        if not isinstance(state, dict) or state.get("format") not in (FORMAT, _FORMAT_V1):
            got = state.get("format") if isinstance(state, dict) else type(state).__name__
            raise SnapshotError(f"drift snapshot format must be {FORMAT!r} (or {_FORMAT_V1!r}); got {got!r}")
        try:
            for tenant, saved in state["streams"].items():
                self._streams[(*key, tenant)] = StreamState.from_snapshot(self._stream_config, saved)
                self._last_seen[(*key, tenant)] = int(state["last_seen"].get(tenant, 0))
            self._locks.restore(key, state.get("locks", {}))  # none in a v1 state: built anew
        except (KeyError, TypeError, ValueError) as exc:
            raise SnapshotError(f"drift snapshot for {key!r} does not fit this configuration: {exc}") from exc

    # --- streams and references ---------------------------------------------
    def _stream(self, key: StreamKey, tenant: str, ts_ms: int) -> StreamState:
        full = (*key, tenant)
        stream = self._streams.get(full)
        if stream is None:
            stream = self._streams[full] = StreamState(self._stream_config, self._reference_for(full, ts_ms))
            logger.info("drift stream started model=%s version=%s tenant=%s policy=%s",
                        key[0], key[1], tenant or "-", self.config.reference_policy)
        return stream

    def _reference_for(self, full: tuple[str, str, str], ts_ms: int) -> list[list[float]] | None:
        model, version, tenant = full
        if self.config.reference_policy == "pinned":
            return self._pinned.get(model)
        if self.config.reference_policy == "previous":
            others = [(seen, k) for k, seen in self._last_seen.items()
                      if k[0] == model and k[2] == tenant and k[1] != version]
            if others:
                previous = self._streams[max(others)[1]]
                rows = [list(r) for r in (*previous.reference.rows(), *previous.window.rows()) if r[0] < ts_ms]
                return rows or None
        return None

    def _is_high_value(self, name: str) -> bool:
        words = {w.lower() for w in _NAME_WORDS.findall(name)}
        return bool(words & self._high_value) or name.lower() in self._high_value

    # --- alerts ---------------------------------------------------------------
    def _on_alarm(self, key: StreamKey, tenant: str, stream: StreamState, event: Event, metric: str,
                  detector: str, detection: Detection, shifted: bool = False) -> list[Alert]:
        """A new episode's alert, the open episode's next revision, or nothing: the accepted level again."""
        level, baseline = _level(metric, detection.after), _level(metric, detection.before)
        episode, accepted = stream.episodes.get(metric), stream.accepted.get(metric)
        if episode is None and accepted is not None and math.isfinite(level) and accepted.covers(level):
            return []  # the regime an analyst accepted, seen again by the detector re-warmed on it
        if episode is None or not math.isfinite(level):
            alert = self._changepoint_alert(key, tenant, stream, event, metric, detector, detection, shifted)
            if not (math.isfinite(level) and math.isfinite(baseline)):
                return [alert]
            # The baseline is the re-warmed detector's mean, also after an acknowledgement (the accepted
            # regime as measured since). The accepted level stays: this episode returns into it.
            stream.episodes[metric] = Episode(alert=alert, baseline=baseline, level=level)
            # Accepted already (a replay of acknowledged alerts): closed where it opened, in any batching.
            return [alert, accept(stream, metric, event.ts_ms)] if self._acks.is_accepted(alert.alert_id) else [alert]
        # An episode open beside an accepted level left that regime (an ack replaces the level): back in it
        # is its return, however far the noisy level of the alarm overshoots.
        update = episode.follow(level=level, ts_ms=event.ts_ms, statistic=_finite(detection.statistic),
                                detection_index=detection.detected_at, change_point=stream.onset(metric, detection),
                                accepted=accepted)
        logger.info("changepoint alert updated model=%s version=%s metric=%s state=%s revision=%d crossings=%d",
                    key[0], key[1], metric, "returned" if episode.closed else "changed", update.revision,
                    episode.crossings)
        if episode.closed:
            del stream.episodes[metric]
        return [update]

    def _changepoint_alert(self, key: StreamKey, tenant: str, stream: StreamState, event: Event,
                           metric: str, detector: str, detection: Detection, shifted: bool = False) -> Alert:
        onset = stream.onset(metric, detection)
        onset_ids, onset_ts = stream.ids_around(onset)
        logger.info("changepoint alert model=%s version=%s metric=%s detector=%s onset=%d detected=%d",
                    key[0], key[1], metric, detector, onset, detection.detected_at)
        return Alert.create(
            ts_ms=event.ts_ms, model_id=key[0], model_version=key[1], tenant_id=tenant,
            detector="changepoint", metric=metric, severity=_severity(metric, shifted),
            score=_finite(detection.statistic) or 0.0, threshold=_finite(detection.threshold) or 0.0,
            window_start_ms=onset_ts if onset_ts is not None else event.ts_ms, window_end_ms=event.ts_ms,
            discriminator=f"{detector}:{detection.detected_at}",
            evidence={"metric": metric, "detector": detector, "before": _finite(_level(metric, detection.before)),
                      "after": _finite(_level(metric, detection.after)), "statistic": _finite(detection.statistic),
                      "threshold": _finite(detection.threshold), "change_point": onset,
                      "detector_change_point": detection.change_point,
                      "detection_index": detection.detected_at, "event_ids": [event.id],
                      "content_hashes": [event.content_hash], "onset_event_ids": onset_ids,
                      "state": CHANGED, "active": True, "crossings": 1, **_explained(shifted, metric),
                      # CUSUM's innovations chart: the statistic and threshold are in innovation units, and the
                      # onset was located under the autoregression the warm-up fitted.
                      **({"chart": "innovations", "autoregression_order": len(detection.whitening)}
                         if detection.whitening else {})},
        )

    def _evaluate(self, key: StreamKey, tenant: str, stream: StreamState, event: Event,
                  shifted: bool = False) -> Findings:
        findings = Findings()
        window_ms = self.config.window_ms or None
        window = stream.window.matrix(max_age_ms=window_ms)  # one copy for every column
        stamps = window[:, 0]
        if stamps.size < min(30, self.config.window_events):
            return findings
        start_ms, end_ms = int(stamps[0]), int(stamps[-1])
        reference = stream.reference.matrix()
        tested: list[tuple[str, float, dict[str, float]]] = []
        for position, metric in enumerate(COLUMNS, start=1):
            result = compare(metric, window[:, position], reference[:, position])
            if result is None:
                continue
            p_value, extra = result
            tested.append((metric, p_value, extra))
            findings.metrics.append(MetricRow(
                model_id=key[0], model_version=key[1], tenant_id=tenant, detector="divergence", metric=metric,
                window_start_ms=start_ms, window_end_ms=end_ms, value=extra["js"], count=int(stamps.size),
                extra=extra))
        if not tested:
            return findings
        reject, adjusted = benjamini_hochberg([p for _, p, _ in tested], q=self.config.divergence_q)
        significant = set()
        for (metric, p_value, extra), rejected, q_value in zip(tested, reject, adjusted, strict=True):
            if not rejected:
                continue
            significant.add(metric)
            if metric in stream.active:
                continue  # still the same excursion: alerted already
            recent = [event_id for _, event_id, _ in list(stream.recent)[-3:]]
            findings.alerts.append(Alert.create(
                ts_ms=event.ts_ms, model_id=key[0], model_version=key[1], tenant_id=tenant,
                detector="divergence", metric=metric, severity=_severity(metric, shifted),
                score=-math.log10(max(float(q_value), 1e-300)), threshold=-math.log10(self.config.divergence_q),
                window_start_ms=start_ms, window_end_ms=end_ms, discriminator=f"{end_ms}:{stream.count}",
                evidence={"metric": metric, "test": "ks" if metric in NUMERIC else "chi_square",
                          "statistic": extra["statistic"], "p_value": p_value, "q_value": float(q_value),
                          "before": extra["reference_mean"], "after": extra["window_mean"],
                          "divergences": {k: extra[k] for k in ("js", "psi", "hellinger", "kl_forward",
                                                                "kl_backward") if k in extra},
                          "window_events": int(stamps.size), "event_ids": recent, **_explained(shifted, metric)},
            ))
            logger.info("divergence alert model=%s version=%s metric=%s q=%.3g", key[0], key[1], metric, q_value)
        stream.active = significant
        return findings


def _severity(metric: str, shifted: bool) -> Severity:
    """The metric's severity; ``low`` for a form metric while the inputs have shifted (it moved with what was
    asked). Refusals and tool calls keep theirs: a refusal flip on new inputs is what a trigger looks like."""
    return "low" if shifted and metric in _FORM_METRICS else _SEVERITY.get(metric, "medium")


def _explained(shifted: bool, metric: str) -> dict[str, Any]:
    return {"input_shifted": True, "explained_by": "input_drift"} if shifted and metric in _FORM_METRICS else {}


def _level(metric: str, value: float) -> float:
    """A detector's level in the metric's own units: output length is watched as ``log1p(chars)``."""
    return math.expm1(value) if metric == "output_chars" and math.isfinite(value) else value


def _finite(value: float) -> float | None:
    """``value``, or None where it is NaN or infinite (JSON has neither)."""
    return value if math.isfinite(value) else None
