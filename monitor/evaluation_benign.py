"""Benign days: real answers under realistic non-stationarity, with no model change, and who gets paged.

Four kinds of stream, each of one model's real ``alpaca_eval`` answers
(``../shared/data/alpaca_eval``) under one unchanged label and version, with
users (a Zipf law over 2,000 accounts), tenants and timestamps:

* ``input_mix_drift``: the share of one instruction kind (``selfinstruct``)
  rises linearly from 10 % to 70 % over the stream;
* ``heavy_user_burst``: uniform traffic, and from 40 % to 55 % of the stream one
  account sends 85 % of the requests, ten times faster, from a batch of 40
  instructions of one kind;
* ``day_night``: a day population (``helpful_base``, ``selfinstruct``) and a
  night one (``koala``, ``oasst``, ``vicuna``) alternate over four days: the
  day share is ``0.5 + 0.4 cos(2 pi (hour - 14) / 24)`` and traffic is 60 %
  heavier by day than its mean;
* ``prompt_template``: from mid-stream on a fixed prefix and suffix wrap a
  share of the inputs that grows from 0 to 60 %; the answer stays the model's
  own answer to the bare instruction (a template that asks for what the model
  already does).

Instructions are drawn with replacement, so every answer is that model's real
answer to that instruction. Each stream runs through the default pipeline
(:func:`monitor.registry.build_pipeline` on default settings, no signature
table) and the default SOC policy, fed each batch's alerts as the worker's
flush does (:meth:`monitor.policy.engine.SocEngine.evaluate`). Counted per
stream: alerts by the severity the detector gave and by the severity the
policy's triage gives, incidents whose severity is ``high`` or worse (merged
across batches by incident id) and rollback decisions.

Examples
--------
>>> records = [{"instruction": f"q{i}", "output": f"a{i}", "dataset": "koala" if i % 2 else "selfinstruct"}
...            for i in range(20)]
>>> events = build_stream("prompt_template", records, n_events=50, seed=0)
>>> len(events), events[0]["input"] in {r["instruction"] for r in records}
(50, True)
"""

from __future__ import annotations

import bisect
import json
import math
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from monitor.alerts import SEVERITIES, severity_rank
from monitor.evaluation_swaps import SWAP_PAIRS, load_answers

__all__ = ["DAY_KINDS", "KINDS", "NIGHT_KINDS", "TEMPLATE", "BenignEvaluation", "BenignStream", "build_stream",
           "default_plan", "evaluate_benign", "format_benign", "run_benign", "run_benign_stream", "severity_cells"]

KINDS = ("input_mix_drift", "heavy_user_burst", "day_night", "prompt_template")
DAY_KINDS = frozenset({"helpful_base", "selfinstruct"})
NIGHT_KINDS = frozenset({"koala", "oasst", "vicuna"})
TEMPLATE = ("You are a helpful assistant. Answer the request below clearly and accurately.\n\nRequest: ",
            "\n\nKeep the answer well structured.")
START_MS = 1_796_083_200_000  # 2026-12-01T00:00:00Z
_USERS = 2000
_TENANTS = 16
_GAP_MS = 2000.0  # mean time between requests, except day_night (four days over the stream)
_DAY_MS = 86_400_000
_HIGH = severity_rank("high")


class _Traffic:
    """Accounts (Zipf), their tenants and increasing timestamps."""

    def __init__(self, rng: np.random.Generator) -> None:
        self.rng = rng
        weights = 1.0 / np.arange(1, _USERS + 1) ** 1.1
        self.user_p = weights / weights.sum()
        self.tenant_of = rng.integers(_TENANTS, size=_USERS)
        self.ts = START_MS

    def envelope(self, index: int, *, gap_ms: float, user: int | None = None) -> dict[str, Any]:
        # At least 1 ms apart: an alert's timestamp names exactly one event.
        self.ts += max(1, int(self.rng.exponential(gap_ms)))
        if user is None:
            user = int(self.rng.choice(_USERS, p=self.user_p))
        return {"event_id": f"benign-{index:07d}", "ts": self.ts, "model_id": "assistant", "model_version": "1",
                "tenant_id": f"tenant-{int(self.tenant_of[user % _USERS]):02d}", "user_id": f"user-{user:05d}"}


def build_stream(kind: str, records: Sequence[dict[str, Any]], *, n_events: int, seed: int) -> list[dict[str, Any]]:
    """JSON-ready events of one benign stream of ``kind`` over one model's ``records``."""
    if kind not in KINDS:
        raise ValueError(f"stream kind must be one of {', '.join(KINDS)}; got {kind!r}")
    rng = np.random.default_rng(seed)
    traffic = _Traffic(rng)
    usable = [r for r in records if r.get("output")]
    tasks = [r for r in usable if r["dataset"] == "selfinstruct"]
    rest = [r for r in usable if r["dataset"] != "selfinstruct"]
    day = [r for r in usable if r["dataset"] in DAY_KINDS]
    night = [r for r in usable if r["dataset"] in NIGHT_KINDS]
    batch = [tasks[int(i)] for i in rng.choice(len(tasks), size=min(40, len(tasks)), replace=False)]
    heavy_from, heavy_to = int(0.40 * n_events), int(0.55 * n_events)
    day_gap = 4 * _DAY_MS / max(n_events, 1)

    def pick(pool: Sequence[dict[str, Any]]) -> dict[str, Any]:
        return pool[int(rng.integers(len(pool)))]

    events = []
    for i in range(n_events):
        share = i / max(n_events - 1, 1)
        prefix, suffix, user, gap = "", "", None, _GAP_MS
        if kind == "input_mix_drift":
            record = pick(tasks if rng.random() < 0.1 + 0.6 * share else rest)
        elif kind == "heavy_user_burst":
            if heavy_from <= i < heavy_to and rng.random() < 0.85:
                record, user, gap = pick(batch), _USERS, _GAP_MS / 10
            else:
                record = pick(usable)
        elif kind == "day_night":
            hour = (traffic.ts - START_MS) % _DAY_MS / 3_600_000
            wave = math.cos(2 * math.pi * (hour - 14) / 24)
            record = pick(day if rng.random() < 0.5 + 0.4 * wave else night)
            gap = day_gap / (1 + 0.6 * wave)
        else:
            record = pick(usable)
            if share >= 0.5 and rng.random() < 1.2 * (share - 0.5):
                prefix, suffix = TEMPLATE
        event = traffic.envelope(i, gap_ms=gap, user=user)
        event["input"] = prefix + record["instruction"] + suffix
        event["output"] = record["output"]
        events.append(event)
    return events


@dataclass
class BenignStream:
    """What the default pipeline and the default policy made of one benign stream."""

    kind: str
    model: str
    events: int
    detector_severity: Counter[str] = field(default_factory=Counter)
    policy_severity: Counter[str] = field(default_factory=Counter)
    alerts: list[dict[str, Any]] = field(default_factory=list)  # index, detector, metric, both severities
    high_incidents: list[dict[str, Any]] = field(default_factory=list)
    decisions: list[dict[str, Any]] = field(default_factory=list)
    pages: int = 0  # high (or worse) alerts notified: what would wake someone
    held: int = 0  # high alerts held by the paging budget (kept as evidence, not notified)
    seconds: float = 0.0

    @property
    def high_per_100k(self) -> float:
        return 1e5 * len(self.high_incidents) / self.events if self.events else math.nan

    def to_json(self) -> dict[str, Any]:
        return {"kind": self.kind, "model": self.model, "events": self.events,
                "alerts_by_detector_severity": dict(self.detector_severity),
                "alerts_by_policy_severity": dict(self.policy_severity), "high_incidents": self.high_incidents,
                "high_incidents_per_100k": round(self.high_per_100k, 2), "rollback_decisions": self.decisions,
                "high_pages": self.pages, "held_by_budget": self.held,
                "alerts": self.alerts, "seconds": round(self.seconds, 1)}


def run_benign_stream(events: Sequence[dict[str, Any]], *, kind: str, model: str, batch_size: int = 256,
                      settings: Any = None) -> BenignStream:
    """``events`` through the default pipeline and the default policy, batch by batch."""
    from monitor.events import EventDecoder
    from monitor.policy.engine import engine_from_settings
    from monitor.policy.incidents import Incident
    from monitor.registry import build_pipeline
    from monitor.settings import load_settings

    # The store's signature table is not read: the evaluation has no store.
    if settings is None:
        settings = load_settings(signature_table=False, drift_acknowledgements=False)
    decoder = EventDecoder(settings.ingest.limits)
    pipeline = build_pipeline(settings)
    engine = engine_from_settings(settings)
    stamps = [int(e["ts"]) for e in events]

    def position(ts_ms: int) -> int:
        return max(0, bisect.bisect_right(stamps, ts_ms) - 1)

    result = BenignStream(kind=kind, model=model, events=len(events))
    incidents: dict[str, Incident] = {}
    started = time.perf_counter()
    for start in range(0, len(events), batch_size):
        decoded = [decoder.decode(json.dumps(e).encode()) for e in events[start:start + batch_size]]
        found = pipeline.process(decoded).alerts
        outcome = engine.evaluate(found)
        graded = {a.alert_id: a.severity for a in outcome.triage.kept}
        graded.update({a.alert_id: a.severity for a, _ in outcome.triage.suppressed})
        result.pages += sum(1 for a in outcome.triage.notify if severity_rank(a.severity) >= _HIGH)
        result.held += len(outcome.triage.held)
        for alert in found:
            if alert.is_update:
                continue  # a later revision of an alert counted when raised
            policy = graded.get(alert.alert_id, alert.severity)
            result.detector_severity[alert.severity] += 1
            result.policy_severity[policy] += 1
            result.alerts.append({"index": position(alert.ts_ms), "detector": alert.detector, "metric": alert.metric,
                                  "severity": alert.severity, "policy_severity": policy})
        for incident in outcome.incidents:
            known = incidents.get(incident.incident_id)
            incidents[incident.incident_id] = incident if known is None else known.merged(incident)
        result.decisions += [{"index": position(d.ts_ms), "rule": d.rule, "decision": d.decision}
                             for d in outcome.decisions]
    result.seconds = time.perf_counter() - started
    result.high_incidents = [{"index": position(i.first_ts_ms), "family": i.family, "severity": i.severity,
                              "alerts": i.alert_count}
                             for i in sorted(incidents.values(), key=lambda i: i.first_ts_ms)
                             if severity_rank(i.severity) >= _HIGH]
    return result


def default_plan() -> list[tuple[str, str]]:
    """(kind, model) of every stream: each kind on five models, one of each swap pair, all ten covered."""
    return [(kind, pair[(k + p) % 2]) for k, kind in enumerate(KINDS) for p, pair in enumerate(SWAP_PAIRS)]


def run_benign(data_dir: Path, *, n_events: int = 5000, seed: int = 0, plan: Sequence[tuple[str, str]] | None = None,
               progress: Callable[[str], None] | None = None) -> list[BenignStream]:
    """Every (kind, model) stream of ``plan`` (default :func:`default_plan`); ``data_dir`` is ``alpaca_eval/``."""
    cache: dict[str, list[dict[str, Any]]] = {}
    results = []
    chosen = list(plan if plan is not None else default_plan())
    for number, (kind, model) in enumerate(chosen):
        if model not in cache:
            cache[model] = load_answers(data_dir, model)
        events = build_stream(kind, cache[model], n_events=n_events, seed=seed * 1000 + number)
        result = run_benign_stream(events, kind=kind, model=model)
        results.append(result)
        if progress is not None:
            progress(f"[{number + 1}/{len(chosen)}] {kind} {model}: {result.events} events, "
                     f"{len(result.alerts)} alerts, {len(result.high_incidents)} high incidents, "
                     f"{len(result.decisions)} rollbacks ({result.seconds:.0f} s)")
    return results


def severity_cells(counts: Counter[str]) -> str:
    """``info/low/medium/high/critical`` counts, in that order."""
    return "/".join(str(counts.get(s, 0)) for s in SEVERITIES)


@dataclass
class BenignEvaluation:
    """The benign streams, the synthetic series, and how they were built."""

    streams: list[BenignStream]
    series: list[Any]  # monitor.evaluation_series.SeriesScore
    warmup: int
    arl0: dict[str, float]
    seed: int
    seconds: float = 0.0

    @property
    def events(self) -> int:
        return sum(s.events for s in self.streams)

    @property
    def high_incidents(self) -> int:
        return sum(len(s.high_incidents) for s in self.streams)

    @property
    def rollbacks(self) -> int:
        return sum(len(s.decisions) for s in self.streams)

    def to_json(self) -> dict[str, Any]:
        events = self.events
        return {"seed": self.seed, "seconds": round(self.seconds, 1),
                "streams": [s.to_json() for s in self.streams],
                "total": {"events": events, "high_incidents": self.high_incidents,
                          "high_incidents_per_100k": round(1e5 * self.high_incidents / events, 2) if events else None,
                          "rollback_decisions": self.rollbacks,
                          "high_pages": sum(s.pages for s in self.streams),
                          "held_by_budget": sum(s.held for s in self.streams)},
                "series": {"warmup": self.warmup, "arl0": self.arl0, "scores": [s.to_json() for s in self.series]}}


def evaluate_benign(data: Path, *, n_events: int = 5000, seed: int = 0, series_reps: int = 6,
                    series_length: int = 2000, stable_length: int = 10_000, names: Sequence[str] | None = None,
                    plan: Sequence[tuple[str, str]] | None = None,
                    progress: Callable[[str], None] | None = None) -> BenignEvaluation:
    """Both halves: the benign streams of ``data / "alpaca_eval"`` and the synthetic series."""
    from detectors.changepoint import DETECTORS
    from monitor.evaluation_series import evaluate_series, stage_arl0

    started = time.perf_counter()
    streams = run_benign(data / "alpaca_eval", n_events=n_events, seed=seed, plan=plan, progress=progress)
    chosen = sorted(DETECTORS) if names is None else list(names)
    if progress is not None:
        progress(f"synthetic series: {len(chosen)} detectors x 4 series types, {series_reps} series each")
    series = evaluate_series(reps=series_reps, length=series_length, stable_length=stable_length, seed=seed,
                             names=chosen)
    warmup = stage_arl0(chosen[0])[0] if chosen else 0
    return BenignEvaluation(streams, series, warmup, {n: stage_arl0(n)[1] for n in chosen}, seed,
                            time.perf_counter() - started)


def format_benign(evaluation: BenignEvaluation) -> str:
    """The benign streams' table, the totals against the issue's targets, then the series table."""
    from monitor.evaluation_series import format_series, text_table

    rows: list[tuple[str, ...]] = [("stream", "model", "events", "alerts i/l/m/h/c (detector)",
                                    "i/l/m/h/c (policy)", "high incidents", "per 100k", "rollbacks",
                                    "high pages (held)", "high incidents by family")]
    raw: Counter[str] = Counter()
    graded: Counter[str] = Counter()
    families: Counter[str] = Counter()
    for s in evaluation.streams:
        raw.update(s.detector_severity)
        graded.update(s.policy_severity)
        mine = Counter(i["family"] for i in s.high_incidents)
        families.update(mine)
        rows.append((s.kind, s.model, f"{s.events:,}", severity_cells(s.detector_severity),
                     severity_cells(s.policy_severity), str(len(s.high_incidents)), f"{s.high_per_100k:.1f}",
                     str(len(s.decisions)), f"{s.pages} ({s.held})", _families(mine)))
    events, high, rollbacks = evaluation.events, evaluation.high_incidents, evaluation.rollbacks
    per_100k = 1e5 * high / events if events else math.nan
    pages, held = sum(s.pages for s in evaluation.streams), sum(s.held for s in evaluation.streams)
    rows.append(("total", "", f"{events:,}", severity_cells(raw), severity_cells(graded), str(high),
                 f"{per_100k:.1f}", str(rollbacks), f"{pages} ({held})", _families(families)))
    lines = [f"benign streams: real alpaca_eval answers, no model change; default pipeline and SOC policy; "
             f"seed {evaluation.seed}",
             text_table(rows),
             f"targets: <= 1 high incident per 100,000 events: {'met' if per_100k <= 1 else 'NOT met'} "
             f"({per_100k:.1f}); 0 rollback decisions: {'met' if rollbacks == 0 else 'NOT met'} ({rollbacks})"]
    for s in evaluation.streams:
        for decision in s.decisions:
            lines.append(f"  rollback: {s.kind} {s.model} at event {decision['index']}, rule {decision['rule']}")
    values = set(evaluation.arl0.values())
    arl0 = (f"{values.pop():,.0f} each" if len(values) == 1
            else ", ".join(f"{name} {value:,.0f}" for name, value in evaluation.arl0.items()))
    lines += ["", f"synthetic series: detectors as the drift stage builds them (warm-up {evaluation.warmup}, "
              f"ARL0 per detector: {arl0})", format_series(evaluation.series),
              f"({evaluation.seconds:.0f} s)"]
    return "\n".join(lines)


def _families(counts: Counter[str]) -> str:
    return ", ".join(f"{family} {n}" for family, n in sorted(counts.items())) or "-"
