"""The change-point detectors on synthetic metric series that wander without changing, and with one real step.

Series types, each with a marginal standard deviation of about 1 (``sigma``):

* ``ar1_0.5``, ``ar1_0.9``: an AR(1) ``x[t] = phi x[t-1] + e[t]``, its innovations scaled so
  ``x`` has variance 1;
* ``seasonal``: ``sin(2 pi t / 200) + N(0, 0.5^2)``;
* ``random_walk``: a mean that moves by ``N(0, 0.02^2)`` per point, plus ``N(0, 1)`` noise
  (sigma is the noise's).

*Stable* series (no step, ``stable_length`` points each) measure false alarms per 10,000
monitored updates (after the first warm-up). *Step* series (``length`` points) add ``3 sigma``
from one index drawn in the middle part onwards and score change-point F1 with a 5-point
margin as TCPDBench does (van den Burg & Williams 2020, *An Evaluation of Change Point
Detection Algorithms*, arXiv:2003.06222; :func:`f_measure`): the start index counts as a change
point of both the annotation and the prediction. An online detector's predicted change points
are the onsets it estimates (``Detection.change_point``, what an alert reports as onset).

Detectors are built as the drift stage builds them (:class:`monitor.stages.drift_stream.StreamState`
on the default drift settings, the detector alone on its metric: warm-up = ``reference_events``,
ARL0 = ``StreamConfig.stream_arl0``). Beside them two baselines: *no change* (only the start) and
offline binary segmentation (``ruptures.Binseg``, model ``l2``, ``jump=1``) with the BIC-like
penalty ``2 log(n) sigma_hat^2``, ``sigma_hat^2`` the series' long-run variance under an AR(1)
fit, ``var(x) (1 + r) / (1 - r)`` with ``r`` its lag-1 autocorrelation. The plain noise variance
(the MAD of first differences) makes the penalty far too small under autocorrelation: binary
segmentation then splits every wander (F1 0.03 on ``ar1_0.9``, 0.09 on ``seasonal``), a baseline
too weak to compare with.

Examples
--------
>>> f_measure({1: [10, 20], 2: [11, 20], 3: [10], 4: [0, 5]}, [10, 20])
1.0
>>> round(f_measure({1: [], 2: [10], 3: [50]}, [10]), 4), f_measure({1: [], 2: [10], 3: [50]}, [])
(0.9091, 0.8)
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from detectors.changepoint import DETECTORS, ChangePointDetector, Detection
from detectors.changepoint.onset import HISTORY, locate_onset

__all__ = ["SERIES_TYPES", "STEP_SIGMAS", "SeriesScore", "binseg_change_points", "build_detector",
           "evaluate_series", "f_measure", "format_series", "make_series", "stage_arl0", "text_table",
           "true_positives"]

SERIES_TYPES = ("ar1_0.5", "ar1_0.9", "seasonal", "random_walk")
STEP_SIGMAS = 3.0
MARGIN = 5
_PERIOD = 200
_SEASONAL_NOISE = 0.5
_WALK_STEP = 0.02
#: The metric whose detector is taken from the stage's stream state (all four are built alike today).
_METRIC = "output_entropy"


def true_positives(truth: Iterable[int], predicted: Iterable[int], margin: int = MARGIN) -> set[int]:
    """True change points matched by a prediction within ``margin``, each prediction used once (TCPDBench)."""
    left = set(predicted)
    found = set()
    for tau in sorted(set(truth)):
        close = sorted((abs(tau - x), x) for x in left if abs(tau - x) <= margin)
        if close:
            found.add(tau)
            left.remove(close[0][1])
    return found


def f_measure(annotations: Mapping[Any, Iterable[int]], predictions: Iterable[int], margin: int = MARGIN,
              alpha: float = 0.5) -> float:
    """TCPDBench's F-measure: precision against all annotators' points, recall averaged per annotator.

    0 is added to every annotation and to the prediction; ``alpha = 0.5`` is F1.
    """
    sets = [set(points) | {0} for points in annotations.values()]
    if not sets:
        raise ValueError("annotations must hold at least one annotator")
    predicted = set(predictions) | {0}
    precision = len(true_positives(set().union(*sets), predicted, margin)) / len(predicted)
    recall = sum(len(true_positives(points, predicted, margin)) / len(points) for points in sets) / len(sets)
    return precision * recall / (alpha * recall + (1 - alpha) * precision)


def make_series(kind: str, rng: np.random.Generator, length: int) -> np.ndarray:
    """A stable series of ``kind`` (no step), marginal standard deviation about 1."""
    if kind.startswith("ar1_") and kind in SERIES_TYPES:
        phi = float(kind[4:])
        from scipy.signal import lfilter

        noise = rng.normal(0.0, math.sqrt(1.0 - phi * phi), length)
        start = rng.normal()  # a stationary start: no burn-in transient for the warm-up to see
        values, _ = lfilter([1.0], [1.0, -phi], noise, zi=[phi * start])
        return np.asarray(values, dtype=np.float64)
    if kind == "seasonal":
        t = np.arange(length)
        return np.sin(2 * np.pi * t / _PERIOD + rng.uniform(0, 2 * np.pi)) + rng.normal(0, _SEASONAL_NOISE, length)
    if kind == "random_walk":
        return np.cumsum(rng.normal(0.0, _WALK_STEP, length)) + rng.normal(0.0, 1.0, length)
    raise ValueError(f"series kind must be one of {', '.join(SERIES_TYPES)}; got {kind!r}")


def _sigma(kind: str) -> float:
    return math.sqrt(0.5 + _SEASONAL_NOISE**2) if kind == "seasonal" else 1.0


def _stage_config(name: str) -> Any:
    from monitor.settings import load_settings
    from monitor.stages.drift import stream_config

    if name not in DETECTORS:
        raise ValueError(f"unknown detector {name!r}; expected among {', '.join(sorted(DETECTORS))}")
    return dataclasses.replace(stream_config(load_settings(signature_table=False).drift), detectors=(name,))


def build_detector(name: str) -> ChangePointDetector:
    """``name`` as the drift stage builds it on default settings, as the stage's only detector."""
    from monitor.stages.drift_stream import StreamState

    detector: ChangePointDetector = StreamState(_stage_config(name)).detectors[_METRIC][name]
    return detector


def stage_arl0(name: str) -> tuple[int, float]:
    """The warm-up and ARL0 the drift stage gives ``name`` on default settings, as its only detector."""
    config = _stage_config(name)
    return int(config.reference_events), float(config.stream_arl0)


def binseg_change_points(values: np.ndarray) -> list[int]:
    """Offline binary segmentation (ruptures, l2, BIC-like penalty, long-run variance): new segments' starts."""
    import ruptures

    centred = values - values.mean()
    power = float(centred @ centred)
    r = min(float(centred[1:] @ centred[:-1]) / power, 0.99) if power > 0 else 0.0
    long_run = float(values.var()) * (1.0 + r) / (1.0 - r)
    penalty = 2.0 * math.log(values.size) * max(long_run, 1e-12)
    ends = ruptures.Binseg(model="l2", min_size=2, jump=1).fit(values).predict(pen=penalty)
    return [int(b) for b in ends if b < values.size]


@dataclass
class SeriesScore:
    """One contender on one series type: false alarms on stable series, F1 and delay on step series.

    Examples
    --------
    >>> score = SeriesScore("cusum", "ar1_0.9", false_alarms=3, updates=20_000, f1=[0.5, 1.0])
    >>> score.false_per_10k, score.mean_f1
    (1.5, 0.75)
    """

    contender: str
    series: str
    false_alarms: int = 0
    updates: int = 0
    f1: list[float] = field(default_factory=list)
    delays: list[int] = field(default_factory=list)
    missed: int = 0

    @property
    def false_per_10k(self) -> float:
        return 1e4 * self.false_alarms / self.updates if self.updates else math.nan

    @property
    def mean_f1(self) -> float:
        return float(np.mean(self.f1)) if self.f1 else math.nan

    @property
    def mean_delay(self) -> float:
        return float(np.mean(self.delays)) if self.delays else math.nan

    def to_json(self) -> dict[str, Any]:
        return {"contender": self.contender, "series": self.series, "false_alarms": self.false_alarms,
                "updates": self.updates, "false_per_10k": _finite(self.false_per_10k), "f1": _finite(self.mean_f1),
                "series_scored": len(self.f1), "mean_delay": _finite(self.mean_delay), "missed": self.missed}


def _finite(value: float) -> float | None:
    return round(value, 4) if math.isfinite(value) else None


def evaluate_series(*, reps: int = 10, length: int = 2000, stable_length: int = 10_000, seed: int = 0,
                    names: Sequence[str] | None = None, slow_share: float = 0.2) -> list[SeriesScore]:
    """Every detector of ``names`` (default all) and both baselines on every series type.

    ``reps`` step series and ``reps`` stable series per type; KSWIN (a KS test per update) runs on
    ``slow_share`` of them (at least one).
    """
    chosen = sorted(DETECTORS) if names is None else list(names)
    warmup = stage_arl0(chosen[0])[0] if chosen else 0
    if length < warmup + 4 * MARGIN or stable_length <= warmup:
        raise ValueError(f"series must be longer than the detectors' warm-up of {warmup}; "
                         f"got length={length}, stable_length={stable_length}")
    scores: list[SeriesScore] = []
    for type_index, kind in enumerate(SERIES_TYPES):
        steps = []
        for rep in range(reps):
            rng = np.random.default_rng([seed, type_index, rep, 1])
            # The step lands after the warm-up, with room to find it before the series ends.
            at = int(rng.integers(warmup + (length - warmup) // 4, length - (length - warmup) // 4))
            values = make_series(kind, rng, length)
            values[at:] += STEP_SIGMAS * _sigma(kind)
            steps.append((at, values))
        none = SeriesScore("no change", kind, f1=[f_measure({1: [at]}, []) for at, _ in steps])
        binseg = SeriesScore("binseg", kind, f1=[f_measure({1: [at]}, binseg_change_points(v)) for at, v in steps])
        scores += [none, binseg]
        for name in chosen:
            count = max(1, round(reps * slow_share)) if name == "kswin" else reps
            score = SeriesScore(name, kind)
            for rep in range(count):
                values = make_series(kind, np.random.default_rng([seed, type_index, rep, 0]), stable_length)
                detector = build_detector(name)
                score.false_alarms += len(detector.update_exact(values))
                score.updates += stable_length - warmup
            for at, values in steps[:count]:
                found = build_detector(name).update_exact(values)
                score.f1.append(f_measure({1: [at]}, located_onsets(values, found)))
                after = [d.detected_at - at for d in found if d.detected_at >= at]
                if after:
                    score.delays.append(after[0])
                else:
                    score.missed += 1
            scores.append(score)
    return scores


def located_onsets(values: np.ndarray, found: Sequence[Detection]) -> list[int]:
    """Each alarm's onset as the drift stage reports it, from the values since the previous alarm, at most
    :data:`HISTORY` of them, up to the alarm (:func:`detectors.changepoint.onset.locate_onset`)."""
    onsets, previous = [], -1
    for detection in found:
        start = max(previous + 1, detection.detected_at - HISTORY + 1)
        onsets.append(start + locate_onset(values[start:detection.detected_at + 1],
                                           coarse=detection.change_point - start, whitening=detection.whitening,
                                           mean=detection.before))
        previous = detection.detected_at
    return onsets


def format_series(scores: Sequence[SeriesScore]) -> str:
    """Per series type and detector: false alarms on stable series, F1 and delay on step series, baselines."""
    baselines = {(s.series, s.contender): s.mean_f1 for s in scores if s.contender in ("no change", "binseg")}
    rows: list[tuple[str, ...]] = [("series", "detector", "FA/10k stable (updates)", "F1 step", "delay",
                                    "missed", "F1 no change", "F1 binseg")]
    for s in scores:
        if s.contender in ("no change", "binseg"):
            continue
        rows.append((s.series, s.contender, f"{s.false_per_10k:.2f} ({s.updates:,})",
                     f"{s.mean_f1:.3f} ({len(s.f1)})", f"{s.mean_delay:.1f}", f"{s.missed}/{len(s.f1)}",
                     f"{baselines[(s.series, 'no change')]:.3f}", f"{baselines[(s.series, 'binseg')]:.3f}"))
    note = (f"F1: TCPDBench's, margin {MARGIN}, start counted, on series with a {STEP_SIGMAS:g} sigma step "
            f"(series scored); delay: events from the step to the first alarm after it")
    return text_table(rows) + "\n" + note


def text_table(rows: Sequence[Sequence[str]]) -> str:
    """Left-aligned columns, two spaces apart.

    >>> print(text_table([("a", "bb"), ("ccc", "d")]))
    a    bb
    ccc  d
    """
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in rows)
