"""Evaluation of the change-point detectors on synthetic streams with known change points.

Stream types, each ``pre`` values before the change and ``post`` after:

* ``mean_step``: N(0, 1), then N(1, 1);
* ``ramp``: N(0, 1), then a mean rising by 1 sigma per 250 values (to at most 2);
* ``variance``: N(0, 1), then N(0, 2^2);
* ``burst``: a 0/1 stream of rare events at 0.1%, then a burst at 0.5%, 1%, 2% or 5%
  (replications cycle through the four rates).

For every detector of :data:`detectors.changepoint.DETECTORS` (calibrated,
default constructors) and river's ADWIN, PageHinkley and KSWIN at their
defaults (``river:*``), on the same streams: the mean detection delay (first
alarm at or after the change), missed detections (no alarm within ``post``)
and false alarms per 10,000 events (alarms before the change). A separate
long N(0, 1) stream measures the false-alarm rate on stationary data, the
figure the ARL0 calibration promises (1 per ARL0 events).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from detectors.changepoint import DETECTORS

__all__ = ["STREAM_TYPES", "Contender", "Score", "alarm_indices", "contenders", "evaluate", "format_scores",
           "make_stream"]

STREAM_TYPES = ("mean_step", "ramp", "variance", "burst")
BURST_RATES = (0.005, 0.01, 0.02, 0.05)
_BASE_RATE = 0.001


@dataclass(frozen=True)
class Contender:
    """A named detector factory; ``slow`` ones run on fewer streams.

    Examples
    --------
    >>> [c.name for c in contenders(["cusum"])]
    ['cusum', 'river:adwin', 'river:page_hinkley', 'river:kswin']
    """

    name: str
    make: Callable[[], Any]
    slow: bool = False


def contenders(names: Sequence[str] | None = None) -> list[Contender]:
    """Ours (calibrated) and river's at their defaults, on the same footing."""
    from river import drift

    chosen = sorted(DETECTORS) if names is None else list(names)
    unknown = [n for n in chosen if n not in DETECTORS]
    if unknown:
        raise ValueError(f"unknown detectors {unknown}; expected among {', '.join(sorted(DETECTORS))}")
    ours = [Contender(name, DETECTORS[name], slow=name == "kswin") for name in chosen]
    # KSWIN's seed only fixes its random subsample: set so that runs repeat.
    river = [Contender("river:adwin", drift.ADWIN), Contender("river:page_hinkley", drift.PageHinkley),
             Contender("river:kswin", lambda: drift.KSWIN(seed=0), slow=True)]
    return ours + river


def make_stream(kind: str, rng: np.random.Generator, *, pre: int, post: int, rep: int = 0) -> np.ndarray:
    """One stream of ``kind`` with its change at index ``pre``."""
    if kind == "mean_step":
        return np.concatenate([rng.normal(0, 1, pre), rng.normal(1, 1, post)])
    if kind == "ramp":
        drift = np.minimum(np.arange(1, post + 1) / 250.0, 2.0)
        return np.concatenate([rng.normal(0, 1, pre), rng.normal(0, 1, post) + drift])
    if kind == "variance":
        return np.concatenate([rng.normal(0, 1, pre), rng.normal(0, 2, post)])
    if kind == "burst":
        rate = BURST_RATES[rep % len(BURST_RATES)]
        return np.concatenate([rng.random(pre) < _BASE_RATE, rng.random(post) < rate]).astype(np.float64)
    raise ValueError(f"stream kind must be one of {', '.join(STREAM_TYPES)}; got {kind!r}")


def alarm_indices(detector: Any, values: np.ndarray) -> list[int]:
    """Indices at which ``detector`` alarmed over ``values``."""
    batch = getattr(detector, "update_many", None)
    if batch is not None:
        return [d.detected_at for d in batch(values)]
    found = []
    update = detector.update
    for index, x in enumerate(values.tolist()):
        update(x)
        if detector.drift_detected:
            found.append(index)
    return found


@dataclass
class Score:
    """What one detector did on one stream type.

    Examples
    --------
    >>> score = Score(delays=[10, 20], missed=1, streams=3, false_alarms=1, pre_events=20_000)
    >>> score.mean_delay, score.false_per_10k
    (15.0, 0.5)
    """

    delays: list[int] = field(default_factory=list)
    missed: int = 0
    streams: int = 0
    false_alarms: int = 0
    pre_events: int = 0

    @property
    def mean_delay(self) -> float:
        return float(np.mean(self.delays)) if self.delays else math.nan

    @property
    def false_per_10k(self) -> float:
        return 1e4 * self.false_alarms / self.pre_events if self.pre_events else math.nan


def evaluate(*, reps: int = 8, slow_reps: int = 3, pre: int = 2000, post: int = 1000,
             stationary_events: int = 100_000, slow_stationary_events: int = 10_000, seed: int = 0,
             names: Sequence[str] | None = None) -> dict[str, dict[str, Score]]:
    """Scores per detector per stream type (plus ``stationary``)."""
    results: dict[str, dict[str, Score]] = {}
    for contender in contenders(names):
        scores = results[contender.name] = {}
        count = slow_reps if contender.slow else reps
        for type_index, kind in enumerate(STREAM_TYPES):
            score = scores[kind] = Score()
            for rep in range(count):
                values = make_stream(kind, np.random.default_rng([seed, type_index, rep]), pre=pre, post=post,
                                     rep=rep)
                found = alarm_indices(contender.make(), values)
                score.streams += 1
                score.pre_events += pre
                score.false_alarms += sum(1 for i in found if i < pre)
                after = [i - pre for i in found if i >= pre]
                if after:
                    score.delays.append(after[0])
                else:
                    score.missed += 1
        length = slow_stationary_events if contender.slow else stationary_events
        stationary = scores["stationary"] = Score(streams=1, pre_events=length)
        values = np.random.default_rng([seed, 99]).normal(0, 1, length)
        stationary.false_alarms = len(alarm_indices(contender.make(), values))
    return results


def format_scores(results: dict[str, dict[str, Score]]) -> str:
    """One table: delay / missed / false alarms per 10k, per detector and stream type."""
    kinds = (*STREAM_TYPES, "stationary")
    header = ["detector"] + [f"{k} delay/missed/FA10k" for k in STREAM_TYPES] + ["stationary FA10k (events)"]
    rows = [header]
    for name, scores in results.items():
        cells = [name]
        for kind in kinds[:-1]:
            s = scores[kind]
            cells.append(f"{s.mean_delay:6.1f} / {s.missed}/{s.streams} / {s.false_per_10k:5.2f}")
        s = scores["stationary"]
        cells.append(f"{s.false_per_10k:5.2f} ({s.pre_events:,})")
        rows.append(cells)
    widths = [max(len(r[i]) for r in rows) for i in range(len(header))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows)
