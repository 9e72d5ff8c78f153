"""``driftwatch gate``: run both answer files through the detectors and compare.

Each file holds events (the usual event schema), one per prompt the model
answered; events written for ``driftwatch gate probes`` records carry their
``labels`` (``prompt_id``, ``probe``, ``clean_of``). Events without those
labels are paired by input text, and a probe is recognised by the trigger
signature in its input. Both files go through the same
:func:`monitor.registry.build_pipeline` as production, so every detector that
runs in the stream also runs here; its alerts feed the canary check.

Examples
--------
>>> report = GateReport(checks=[])
>>> report.passed, report.exit_code
(True, 0)
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from detectors.signatures.matcher import SignatureMatcher
from detectors.signatures.signature import Match, Signature
from monitor.errors import EventError, InputFileError
from monitor.events import Event, EventDecoder
from monitor.gate.compare import DEFAULT_COMPARISONS, Check, Comparison, GateRun, Thresholds
from monitor.registry import build_pipeline
from monitor.replay import iter_lines, open_source
from monitor.settings import Settings
from monitor.signature_registry import load_normalizer

__all__ = ["EXIT_FAILED", "GateReport", "load_run", "run_gate", "write_report"]

EXIT_FAILED = 10


@dataclass
class GateReport:
    checks: list[Check]
    counts: dict[str, dict[str, int]] = field(default_factory=dict)

    @property
    def passed(self) -> bool:
        return all(check.passed for check in self.checks)

    @property
    def exit_code(self) -> int:
        return 0 if self.passed else EXIT_FAILED

    def to_text(self) -> str:
        lines = [f"gate: {'PASS' if self.passed else 'FAIL'}"]
        for name, counts in self.counts.items():
            lines.append(f"  {name}: " + ", ".join(f"{k} {v}" for k, v in counts.items()))
        for check in self.checks:
            lines.append(f"  [{'ok' if check.passed else 'FAIL'}] {check.name}: {check.value:.3g} "
                         f"(threshold {check.threshold:g}) - {check.detail}")
        return "\n".join(lines)

    def to_json(self) -> dict[str, Any]:
        return {"passed": self.passed, "counts": self.counts,
                "checks": [{"name": c.name, "value": c.value, "threshold": c.threshold, "passed": c.passed,
                            "detail": c.detail} for c in self.checks]}


def _read_events(path: str, decoder: EventDecoder) -> list[Event]:
    events = []
    with ExitStack() as stack:
        source = open_source(path, stack)
        for number, line, _size in iter_lines(source.stream, decoder.limits.max_record_bytes):
            try:
                events.append(decoder.decode(line))
            except EventError as exc:
                raise InputFileError(f"{path}:{number}: {exc.reason}") from exc
    if not events:
        raise InputFileError(f"{path} holds no events")
    return events


def load_run(name: str, path: str, settings: Settings, signatures: Sequence[Signature]) -> GateRun:
    """Decode ``path``, run the production pipeline over it, and pair probes with clean prompts."""
    events = _read_events(path, EventDecoder(settings.ingest.limits))
    run = GateRun(name)
    pipeline = build_pipeline(settings)
    for start in range(0, len(events), settings.ingest.batch_size):
        run.alerts.extend(pipeline.process(events[start:start + settings.ingest.batch_size]).alerts)
    # The service's own matcher, so a probe is recognised however its trigger is obfuscated.
    matcher = SignatureMatcher([s for s in signatures if s.applies_to in ("input", "both")], load_normalizer())
    unlabelled: list[tuple[Event, Match]] = []
    by_input: dict[str, str] = {}
    for event in events:
        labels = event.labels or {}
        if "prompt_id" in labels:
            if labels.get("probe"):
                run.probes.setdefault(labels["probe"], []).append((labels.get("clean_of", ""), event.output))
            else:
                run.clean[labels["prompt_id"]] = event.output
            continue
        found = matcher.find(event.input, field="input")
        if found:
            unlabelled.append((event, found[0]))
        else:
            key = " ".join(event.input.split())
            run.clean[key] = event.output
            by_input[key] = key
    for event, match in unlabelled:
        # The probe's clean twin is its input with the matched trigger cut out (offsets into the raw text).
        key = " ".join((event.input[:match.start] + event.input[match.end:]).split())
        run.probes.setdefault(match.signature.id, []).append((by_input.get(key, ""), event.output))
    return run


def run_gate(baseline: str, candidate: str, settings: Settings, signatures: Sequence[Signature], *,
             thresholds: Thresholds | None = None,
             comparisons: Sequence[Comparison] = DEFAULT_COMPARISONS) -> GateReport:
    """Compare ``candidate``'s answers with ``baseline``'s; the report says pass or fail and why."""
    limits = thresholds or Thresholds()
    runs = [load_run("baseline", baseline, settings, signatures), load_run("candidate", candidate, settings,
                                                                           signatures)]
    checks = [compare(runs[0], runs[1], limits) for compare in comparisons]
    counts = {}
    for run in runs:
        counts[run.name] = {"clean": len(run.clean), "probes": sum(len(v) for v in run.probes.values())}
        for alert in run.alerts:  # what every production detector raised, for the report
            counts[run.name][f"{alert.detector} alerts"] = counts[run.name].get(f"{alert.detector} alerts", 0) + 1
    return GateReport(checks, counts)


def write_report(report: GateReport, path: str | Path) -> None:
    Path(path).write_text(json.dumps(report.to_json(), indent=2) + "\n", encoding="utf-8")
