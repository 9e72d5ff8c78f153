"""Silent model swaps and input-mix shifts on real answers (``../shared/data/alpaca_eval``).

Two kinds of stream, each under one unchanged model label and version, one
event per second:

* **swap**, for each pair of :data:`SWAP_PAIRS`: the first model's 805 answers
  in random order, then the second model's 805 in random order; the switch
  is at event 805;
* **input mix**, for each of the ten models: the model's answers to the
  conversational sources (``helpful_base``, ``koala``, ``oasst``, ``vicuna``)
  in random order, then those to ``selfinstruct``; the model never changes,
  only what users ask.

Every stream runs through the default pipeline
(:func:`monitor.registry.build_pipeline` on default settings) and the SOC
policy's rollback rules (:meth:`monitor.policy.engine.SocEngine.evaluate`,
in memory). Severities are the policy's (what would page: distribution-only
evidence graded by its effect size), each alert counted once whatever its
revisions. For a swap: the delay of the first ``high`` alert at or after
the switch and the alerts of any kind (``info`` included) before it. For an
input mix: the ``high`` alerts, the rollback decisions and the
``input_drift`` alerts.

:func:`swap_power` asks what any stream of a pair can show, whatever its
order: the behaviour stage's output test on its own, a reference of the
first model's answers against a window of the second's (its power per test)
or of the first's held-out answers (its false rejections per test), over
many random draws, at the stage's sizes and level and at a loose level.
"""

from __future__ import annotations

import gzip
import json
import statistics
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from monitor.alerts import Alert, severity_rank

if TYPE_CHECKING:
    from monitor.stages.behaviour import BehaviourConfig

__all__ = ["CONVERSATIONAL", "LOOSE_ALPHA", "SWAP_PAIRS", "PairPower", "StreamResult", "SwapEvaluation",
           "default_data_dir", "evaluate_swaps", "format_power", "format_swaps", "input_mix_stream", "load_answers",
           "run_stream", "swap_power", "swap_stream"]

SWAP_PAIRS: tuple[tuple[str, str], ...] = (
    ("gpt-3.5-turbo-0301", "gpt-3.5-turbo-0613"),
    ("gpt-4o-2024-05-13", "gpt-4o-mini-2024-07-18"),
    ("Meta-Llama-3-8B-Instruct", "Llama-3-Instruct-8B-SimPO"),
    ("Mistral-7B-Instruct-v0.2", "Mistral-7B-Instruct-v0.3"),
    ("Mixtral-8x7B-Instruct-v0.1", "Mixtral-8x7B-Instruct-v0.1_concise"),
)
CONVERSATIONAL = frozenset({"helpful_base", "koala", "oasst", "vicuna"})
_BASE_MS = 1_700_000_000_000
_STEP_MS = 1000
_HIGH = severity_rank("high")
#: The loose level :func:`swap_power` also reports, for comparison (far looser than any level that may page).
LOOSE_ALPHA = 0.01


def default_data_dir() -> Path:
    """``../shared/data/alpaca_eval`` next to the repository."""
    return Path(__file__).resolve().parents[2] / "shared" / "data" / "alpaca_eval"


def load_answers(data_dir: Path, model: str) -> list[dict[str, Any]]:
    """The 805 records of ``model`` (instruction, output, dataset)."""
    with gzip.open(data_dir / f"{model}.json.gz", "rt", encoding="utf-8") as handle:
        records: list[dict[str, Any]] = json.load(handle)
    return records


def stream_events(records: Sequence[dict[str, Any]], label: str) -> list[dict[str, Any]]:
    """JSON-ready events of ``records`` (alpaca_eval answers) in order under one model label, a second apart."""
    return [{"ts": _BASE_MS + i * _STEP_MS, "model_id": label, "model_version": "1",
             "event_id": f"{label}-{i}", "input": r["instruction"], "output": r["output"] or ""}
            for i, r in enumerate(records)]


def swap_stream(first: Sequence[dict[str, Any]], second: Sequence[dict[str, Any]],
                seed: int = 0) -> tuple[list[dict[str, Any]], int]:
    """Events of ``first`` shuffled then ``second`` shuffled; and the switch index."""
    rng = np.random.default_rng(seed)
    a = [first[i] for i in rng.permutation(len(first))]
    b = [second[i] for i in rng.permutation(len(second))]
    return stream_events(a + b, "assistant"), len(a)


def input_mix_stream(records: Sequence[dict[str, Any]], seed: int = 0) -> tuple[list[dict[str, Any]], int]:
    """Conversational answers shuffled, then selfinstruct answers shuffled; and the shift index."""
    rng = np.random.default_rng(seed)
    order = [records[i] for i in rng.permutation(len(records))]
    conversational = [r for r in order if r["dataset"] in CONVERSATIONAL]
    tasks = [r for r in order if r["dataset"] not in CONVERSATIONAL]
    return stream_events(conversational + tasks, "assistant"), len(conversational)


@dataclass
class StreamResult:
    """What the default pipeline and the policy made of one stream with a change at ``change``."""

    name: str
    kind: str  # "swap" or "input_mix"
    change: int
    events: int
    alerts: list[tuple[int, str, str, str]] = field(default_factory=list)  # (index, severity, detector, metric)
    decisions: list[int] = field(default_factory=list)  # event index of each rollback decision
    seconds: float = 0.0

    @property
    def before(self) -> int:
        """Alerts of any kind before the change."""
        return sum(1 for a in self.alerts if a[0] < self.change)

    @property
    def delay(self) -> int | None:
        """Events from the change to the first high (or worse) alert that is not input drift; None: none."""
        after = [a[0] - self.change for a in self.alerts
                 if a[0] >= self.change and severity_rank(a[1]) >= _HIGH and a[2] != "input_drift"]
        return min(after) if after else None

    @property
    def high(self) -> int:
        return sum(1 for a in self.alerts if severity_rank(a[1]) >= _HIGH)

    @property
    def input_drift(self) -> int:
        return sum(1 for a in self.alerts if a[2] == "input_drift")

    def by_detector(self) -> str:
        counts = Counter(f"{a[2]}/{a[3]}:{a[1]}" for a in self.alerts)
        return ", ".join(f"{k} {v}" for k, v in sorted(counts.items()))


@dataclass
class SwapEvaluation:
    swaps: list[StreamResult]
    mixes: list[StreamResult]

    @property
    def median_delay(self) -> float | None:
        delays = [r.delay for r in self.swaps]
        if not delays or any(d is None for d in delays):
            return None
        return float(statistics.median(d for d in delays if d is not None))


def run_stream(events: Sequence[dict[str, Any]], change: int, *, name: str, kind: str,
               batch_size: int = 256, settings: Any = None) -> StreamResult:
    """Events through the default pipeline and the policy's rollback rules."""
    import time

    from monitor.events import EventDecoder
    from monitor.policy.engine import engine_from_settings
    from monitor.registry import build_pipeline
    from monitor.settings import load_settings

    # The store's signature table is not read: the evaluation has no store.
    if settings is None:
        settings = load_settings(signature_table=False, drift_acknowledgements=False)
    decoder = EventDecoder(settings.ingest.limits)
    pipeline = build_pipeline(settings)
    engine = engine_from_settings(settings)
    result = StreamResult(name=name, kind=kind, change=change, events=len(events))
    started = time.perf_counter()
    alerts: list[Alert] = []
    for start in range(0, len(events), batch_size):
        decoded = [decoder.decode(json.dumps(e).encode()) for e in events[start:start + batch_size]]
        found = pipeline.process(decoded).alerts
        alerts.extend(found)
        for decision in engine.evaluate(found).decisions:
            result.decisions.append((decision.ts_ms - _BASE_MS) // _STEP_MS)
    result.seconds = time.perf_counter() - started
    # Each alert once (its first revision), at the severity the policy pages it with (effect-size grading).
    first = list({a.alert_id: a for a in reversed(alerts)}.values())
    result.alerts = sorted(((a.ts_ms - _BASE_MS) // _STEP_MS, engine.triage.severity_for(a), a.detector, a.metric)
                           for a in first)
    return result


def evaluate_swaps(data_dir: Path | None = None, *, seed: int = 0, batch_size: int = 256,
                   pairs: Sequence[tuple[str, str]] = SWAP_PAIRS, mixes: bool = True,
                   representation: str | None = None) -> SwapEvaluation:
    """Every swap pair and every model's input-mix stream through the default pipeline.

    ``representation`` overrides the behaviour stage's output representation (``shape``, ``distilled``).
    """
    from monitor.settings import load_settings

    data_dir = data_dir if data_dir is not None else default_data_dir()
    settings = load_settings(signature_table=False, drift_acknowledgements=False,
                             behaviour_representation=representation)
    cache: dict[str, list[dict[str, Any]]] = {}

    def answers(model: str) -> list[dict[str, Any]]:
        if model not in cache:
            cache[model] = load_answers(data_dir, model)
        return cache[model]

    swaps = []
    for first, second in pairs:
        events, change = swap_stream(answers(first), answers(second), seed=seed)
        swaps.append(run_stream(events, change, name=f"{first} -> {second}", kind="swap",
                                batch_size=batch_size, settings=settings))
    mix_results = []
    if mixes:
        models = sorted({m for pair in pairs for m in pair})
        for model in models:
            events, change = input_mix_stream(answers(model), seed=seed)
            mix_results.append(run_stream(events, change, name=model, kind="input_mix", batch_size=batch_size,
                                          settings=settings))
    return SwapEvaluation(swaps, mix_results)


def format_swaps(evaluation: SwapEvaluation, *, details: bool = False) -> str:
    """Two tables: swaps (delay, alerts before) and input mixes (high, rollbacks, input_drift)."""
    rows: list[tuple[str, ...]] = [("swap", "delay (events)", "alerts before switch", "alerts after")]
    for r in evaluation.swaps:
        rows.append((r.name, "missed" if r.delay is None else str(r.delay), str(r.before),
                     str(len(r.alerts) - r.before)))
    median = evaluation.median_delay
    lines = [_table(rows), f"median delay: {'n/a (a swap missed)' if median is None else f'{median:.0f}'}"]
    if evaluation.mixes:
        rows = [("input mix", "shift at", "high alerts", "rollback decisions", "input_drift alerts", "all alerts")]
        for r in evaluation.mixes:
            rows.append((r.name, str(r.change), str(r.high), str(len(r.decisions)), str(r.input_drift),
                         str(len(r.alerts))))
        lines += ["", _table(rows)]
    if details:
        lines.append("")
        for r in (*evaluation.swaps, *evaluation.mixes):
            lines.append(f"{r.kind} {r.name}: {r.by_detector() or 'no alerts'}  ({r.events / r.seconds:,.0f} ev/s)")
    return "\n".join(lines)


@dataclass(frozen=True)
class PairPower:
    """The output test's rejection rates for one pair at the stage's window, over ``draws`` random draws."""

    name: str
    window: int
    draws: int
    alpha: float
    #: Share of windows of the second model's answers rejected at ``alpha`` (power per test), and at
    #: :data:`LOOSE_ALPHA`.
    power: float
    power_loose: float
    #: Share of windows of the first model's held-out answers rejected (false rejections per test).
    false_rate: float
    false_rate_loose: float


def swap_power(data_dir: Path | None = None, *, pairs: Sequence[tuple[str, str]] = SWAP_PAIRS, draws: int = 200,
               seed: int = 0, config: BehaviourConfig | None = None,
               progress: Callable[[str], None] | None = None) -> list[PairPower]:
    """The behaviour stage's output test on each pair's answers, whatever the stream's order.

    Each draw takes a random reference of ``config.reference_events`` of the first model's answers
    (the stage's reference) and builds the stage's scorer on it; then a random window of
    ``config.output_window`` of the second model's answers (is the swap seen?) and one of the first
    model's answers left out of the reference (is a model seen changing when it has not?). A stream
    gives a test every ``output_every`` events, and a page needs ``sustain`` rejections in a row, so a
    power per test far under one is a swap a stream finds late or never. Only the stage's window is
    measured: the null's finite-population factor (see :mod:`detectors.rff_mmd`) is built for windows
    well under the reference's size.
    """
    from detectors.rff_mmd import RffMmd
    from monitor.stages.behaviour import BehaviourConfig, represent

    config = config if config is not None else BehaviourConfig()
    if config.representation != "shape":
        raise ValueError(f"swap_power represents outputs as the stage's default 'shape' only; got "
                         f"{config.representation!r}")
    if draws < 1:
        raise ValueError(f"draws must be >= 1; got {draws!r}")
    data_dir = data_dir if data_dir is not None else default_data_dir()
    rng = np.random.default_rng([seed, 21])
    results = []
    for first, second in pairs:
        a, b = (represent([r["instruction"] for r in records], [r["output"] or "" for r in records], config)[1]
                for records in (load_answers(data_dir, first), load_answers(data_dir, second)))
        n_ref, w = config.reference_events, config.output_window
        held_out = len(a) - n_ref
        if min(held_out, len(b)) < w:
            raise ValueError(f"{first} -> {second}: {len(a)} and {len(b)} answers cannot give a {n_ref}-answer "
                             f"reference and {w}-answer windows of each model")
        rejected = np.zeros(4)  # power, power loose, false, false loose
        for _ in range(draws):
            order = rng.permutation(len(a))
            scorer = RffMmd(a[order[:n_ref]].astype(np.float64), features=config.features, alpha=config.output_alpha,
                            draws=config.draws, seed=config.seed)
            for column, rows in ((0, b[rng.choice(len(b), size=w, replace=False)]),
                                 (2, a[order[n_ref:]][rng.choice(held_out, size=w, replace=False)])):
                score = scorer.test(scorer.features(rows))
                rejected[column] += score.drift
                rejected[column + 1] += score.p_value < LOOSE_ALPHA
        power, loose, false, false_loose = (rejected / draws).tolist()
        results.append(PairPower(f"{first} -> {second}", w, draws, config.output_alpha, power, loose, false,
                                 false_loose))
        if progress is not None:
            progress(f"{first} -> {second}: {draws} draws")
    return results


def format_power(results: Sequence[PairPower]) -> str:
    """One row per pair: the output test's power and false rejections per test, at its window."""
    if not results:
        return "no pairs"
    alpha = results[0].alpha
    rows: list[tuple[str, ...]] = [("swap", "window", f"power at {alpha:g}", f"at {LOOSE_ALPHA:g}",
                                    f"false at {alpha:g}", f"at {LOOSE_ALPHA:g}")]
    for r in results:
        rows.append((r.name, str(r.window), f"{r.power:.3f}", f"{r.power_loose:.3f}", f"{r.false_rate:.3f}",
                     f"{r.false_rate_loose:.3f}"))
    return _table(rows) + f"\n(per output test, {results[0].draws} draws of a reference and a window each)"


def _table(rows: Sequence[Sequence[str]]) -> str:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in rows)
