"""What every scalar change-point detector shares: the protocol and the warm-up.

Protocol (:class:`ChangePointDetector`, built through :class:`DetectorFactory`
with ``warmup=`` and ``arl0=``): ``update(x) -> None`` and
``update_exact(xs) -> list[Detection]``; a ``drift_detected`` property true
for exactly the one update that raised the alarm; when it is true,
``change_point`` is the estimated onset as an absolute update index (from 0)
and ``detection`` holds the evidence; ``n`` counts updates; ``snapshot()``
returns a JSON-ready dict with a versioned ``format``; ``restore(state)`` loads it.

:class:`WarmupDetector` adds what makes every detector usable with its
default constructor on unscaled input: the first ``warmup`` finite values are
the reference; their mean and standard deviation standardise everything
after, and the subclass calibrates its threshold on them for ``arl0`` (a 0/1
warm-up is smoothed first, see ``_binary_reference``). After
an alarm the detector starts a new warm-up, so the new regime becomes the
reference. NaN and infinite values count as updates (indices stay aligned
with the stream) but change nothing.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any, ClassVar, NamedTuple, Protocol, runtime_checkable

import numpy as np

from detectors.changepoint.calibration import DEFAULT_ARL0
from detectors.changepoint.resampling import block_length, sieve_paths, stationary_bootstrap

__all__ = ["ChangePointDetector", "Detection", "DetectorFactory", "WarmupDetector", "block_length",
           "stationary_bootstrap"]


class Detection(NamedTuple):
    """One alarm: where it was raised, where the change began, and the evidence.

    Examples
    --------
    >>> Detection(detected_at=120, change_point=104, statistic=9.1, threshold=8.2, before=0.0, after=1.1).change_point
    104
    """

    detected_at: int
    change_point: int
    statistic: float
    threshold: float
    before: float
    after: float
    #: The autoregression ``a_1 .. a_p`` on the standardised values whose innovations raised the alarm; empty
    #: when the values themselves did. It tells where to look for the onset
    #: (:func:`detectors.changepoint.onset.locate_onset`).
    whitening: tuple[float, ...] = ()


@runtime_checkable
class ChangePointDetector(Protocol):
    """What the drift stage and the generic tests use of a detector; every class in ``DETECTORS`` has it.

    ``n`` counts updates so far (NaN and infinite values included); when
    ``drift_detected`` is true, ``detection`` holds that alarm and
    ``change_point`` its onset. ``update_exact`` feeds many values exactly as
    repeated ``update`` would and returns their alarms; ``snapshot`` /
    ``restore`` carry the state as a JSON-ready dict.
    """

    n: int
    change_point: int | None
    detection: Detection | None

    @property
    def drift_detected(self) -> bool: ...

    def update(self, x: float) -> None: ...

    def update_exact(self, xs: Iterable[float]) -> list[Detection]: ...

    def snapshot(self) -> dict[str, Any]: ...

    def restore(self, state: dict[str, Any]) -> None: ...


class DetectorFactory(Protocol):
    """How a detector is built: with no argument, or as the drift stage does, a warm-up length and a target ARL0.

    Both are keywords with defaults; every class in ``DETECTORS`` is one (mypy checks the constructors).
    """

    def __call__(self, *, warmup: int = ..., arl0: float = ...) -> ChangePointDetector: ...


class WarmupDetector:
    """Base class: warm-up, standardisation, calibration, snapshots.

    Subclasses set ``format`` and implement ``_calibrate(reference_z)``,
    ``_step(z, index) -> bool`` (setting ``_statistic``, ``change_point`` and
    ``_after_z`` on an alarm), ``_params()``, ``_state()`` and ``_load(state)``.

    Parameters
    ----------
    warmup
        Finite values taken as the reference before any alarm can be raised.
    arl0
        Target mean number of updates between false alarms on data like the reference.
    min_scale
        Floor on the reference's standard deviation, in input units: a
        0/1 stream whose warm-up saw no 1 would otherwise alarm on the first.
    seed
        Seeds the calibration's bootstrap; the same seed and input give the same alarms.

    Examples
    --------
    >>> from detectors.changepoint import CUSUM
    >>> detector = CUSUM(warmup=50)
    >>> detector.update_many([10.0, 11.0, 12.0] * 20)
    []
    >>> detector.ready, round(detector.mean, 2), detector.snapshot()["format"]
    (True, 10.98, 'cusum.v2')
    """

    format: ClassVar[str] = ""

    def __init__(self, *, warmup: int = 200, arl0: float = DEFAULT_ARL0, min_scale: float = 0.0,
                 seed: int = 0) -> None:
        if warmup < 10:
            raise ValueError(f"warmup must be >= 10; got {warmup!r}")
        if not arl0 > 1:
            raise ValueError(f"arl0 must be > 1; got {arl0!r}")
        if min_scale < 0:
            raise ValueError(f"min_scale must be >= 0; got {min_scale!r}")
        self.warmup = int(warmup)
        self.arl0 = float(arl0)
        self.min_scale = float(min_scale)
        self.seed = int(seed)
        self.n = 0
        self.change_point: int | None = None
        self.detection: Detection | None = None
        self.threshold = math.inf
        self.mean = math.nan
        self.scale = math.nan
        self.calibrations = 0
        self._buffer: list[float] = []
        self._reference: tuple[np.ndarray, bool] = (np.zeros(0), False)
        self._drift = False
        self._statistic = 0.0
        self._after_z = 0.0

    # --- protocol -------------------------------------------------------------
    @property
    def drift_detected(self) -> bool:
        """True for exactly the update that raised an alarm."""
        return self._drift

    @property
    def ready(self) -> bool:
        """Warm-up done: the detector can raise alarms."""
        return not self._buffer and math.isfinite(self.mean)

    def update(self, x: float) -> None:
        """Feed one value."""
        index = self.n
        self.n += 1
        self._drift = False
        if not math.isfinite(x):
            return
        if not math.isfinite(self.mean):
            self._warm(x)
            return
        if self._step((x - self.mean) / self.scale, index):
            self._raise(index)

    def update_many(self, xs: Iterable[float]) -> list[Detection]:
        """Feed many values; return the alarms they raised, in order."""
        found = []
        for x in xs:
            self.update(float(x))
            if self._drift and self.detection is not None:
                found.append(self.detection)
        return found

    def update_exact(self, xs: Iterable[float]) -> list[Detection]:
        """Feed many values exactly as repeated :meth:`update` would, bit for bit; return the alarms.

        :meth:`update_many` may trade the last bits of the running sums for
        speed (CUSUM's does); this may not. Subclasses may replace the loop
        with a faster one that keeps that promise.
        """
        found = []
        for x in xs:
            self.update(x)
            if self._drift and self.detection is not None:
                found.append(self.detection)
        return found

    # --- shared machinery -----------------------------------------------------
    def _warm_many(self, values: np.ndarray) -> int:
        """Feed the warm-up from ``values`` at once; return how many values it took."""
        finite = np.isfinite(values)
        need = self.warmup - len(self._buffer)
        taken_finite = np.cumsum(finite)
        full = np.flatnonzero(taken_finite >= need)
        used = int(full[0]) + 1 if full.size else values.size
        head = values[:used]
        self._buffer.extend(head[finite[:used]].tolist())
        self.n += used
        self._drift = False
        if len(self._buffer) >= self.warmup:
            self._buffer, last = self._buffer[:-1], self._buffer[-1]
            self._warm(last)
        return used

    def _warm(self, x: float) -> None:
        self._buffer.append(x)
        if len(self._buffer) < self.warmup:
            return
        reference = np.asarray(self._buffer, dtype=np.float64)
        self._buffer = []
        binary = bool(np.isin(reference, (0.0, 1.0)).all())
        if binary:
            reference = self._binary_reference(reference)
        self.mean = float(reference.mean())
        self.scale = max(float(reference.std(ddof=1)), self.min_scale, 1e-9 * max(1.0, abs(self.mean)))
        self._reference = (reference, binary)
        self._calibrate((reference - self.mean) / self.scale)
        self._reference = (np.zeros(0), False)  # only the calibration needs it
        self.calibrations += 1

    def _calibration_paths(self, paths: int, length: int, history: int = 0) -> np.ndarray:
        """Bootstrap paths of standardised values, each standardised by its own re-estimated warm-up.

        Each row is ``history + length`` values: the last ``history`` of its warm-up, then ``length``
        monitored ones (a whitening filter needs a few past values to start on).

        Resampling the warm-up alone would pretend its mean and scale are
        the truth; a 200-value warm-up misplaces the mean by about 0.07
        standard deviations, which a CUSUM with k = 0.5 feels strongly.
        Each path therefore draws a warm-up of the same size, estimates mean
        and scale from it as the detector would, and standardises its values
        with them (Gandy & Kvaløy 2013, Scand. J. Stat. 40:647).

        Real metrics are autocorrelated: a run of long answers follows a run
        of long answers. Draws are therefore an AR sieve bootstrap of the
        warm-up (:func:`~detectors.changepoint.resampling.sieve_paths`): an
        autoregression of the order the data choose, driven by residuals
        resampled in blocks, so the simulated paths wander as the stream does,
        warm-up included, and the threshold allows for it. An independent
        warm-up gives order 0 and blocks of one: the plain bootstrap.
        """
        reference, binary = self._reference
        rng = self._rng()
        size = self.warmup + length
        if binary:  # the smoothed 0/1 sample has no order left to keep
            draws = reference[rng.integers(reference.size, size=(paths, size))]
        else:
            draws = sieve_paths(reference, paths, size, rng)
        warm, values = draws[:, :self.warmup], draws[:, self.warmup - history:]
        if binary:
            rate = (warm.sum(axis=1, keepdims=True) + 0.5) / (self.warmup + 1.0)
            mean, spread = rate, np.sqrt(rate * (1.0 - rate))
        else:
            mean, spread = warm.mean(axis=1, keepdims=True), warm.std(axis=1, ddof=1, keepdims=True)
        floor = np.maximum(self.min_scale, 1e-9 * np.maximum(1.0, np.abs(mean)))
        standardised = values - mean
        standardised /= np.maximum(spread, floor)  # in place: one megabytes-large temporary fewer
        return standardised

    def _binary_reference(self, reference: np.ndarray) -> np.ndarray:
        """A 0/1 warm-up as a large sample at its smoothed rate (Jeffreys: (k + 1/2) / (n + 1)).

        A rare-event stream often has no event in its warm-up: its sample
        variance is 0 and the first event would be an infinite z-score.
        The smoothed rate keeps the scale finite and lets the calibration
        simulate events the warm-up did not happen to see.
        """
        rate = (float(reference.sum()) + 0.5) / (reference.size + 1.0)
        size = max(reference.size, math.ceil(20.0 / rate))
        ones = round(rate * size)
        return np.concatenate([np.ones(ones), np.zeros(size - ones)])

    def _rng(self) -> np.random.Generator:
        # One stream of randomness per calibration: restarts stay reproducible.
        return np.random.default_rng([self.seed, self.calibrations])

    def _raise(self, index: int) -> None:
        onset = index if self.change_point is None else self.change_point
        threshold, whitening = self._alarm_chart()
        self.detection = Detection(detected_at=int(index), change_point=int(onset), statistic=float(self._statistic),
                                   threshold=float(threshold), before=float(self.mean),
                                   after=float(self.mean + self._after_z * self.scale), whitening=whitening)
        self._drift = True
        self.mean = math.nan  # the next values are the new reference
        self.scale = math.nan

    def snapshot(self) -> dict[str, Any]:
        """The detector's state as a JSON-ready dict (bounded by ``warmup`` values)."""
        return {
            "format": self.format,
            "params": {"warmup": self.warmup, "arl0": self.arl0, "min_scale": self.min_scale,
                       "seed": self.seed, **self._params()},
            "n": self.n,
            "buffer": list(self._buffer),
            "mean": None if math.isnan(self.mean) else self.mean,
            "scale": None if math.isnan(self.scale) else self.scale,
            "threshold": None if math.isinf(self.threshold) else self.threshold,
            "calibrations": self.calibrations,
            "drift": self._drift,
            "change_point": self.change_point,
            "detection": None if self.detection is None else [*self.detection[:6], list(self.detection.whitening)],
            "state": self._state(),
        }

    def restore(self, state: dict[str, Any]) -> None:
        """Load a :meth:`snapshot`; the parameters must match this instance's."""
        if not isinstance(state, dict) or state.get("format") != self.format:
            got = state.get("format") if isinstance(state, dict) else type(state).__name__
            raise ValueError(f"snapshot format must be {self.format!r}; got {got!r}")
        mine = self.snapshot()["params"]
        if state.get("params") != mine:
            raise ValueError(f"snapshot parameters {state.get('params')!r} differ from this detector's {mine!r}")
        self.n = int(state["n"])
        self._buffer = [float(v) for v in state["buffer"]]
        self.mean = math.nan if state["mean"] is None else float(state["mean"])
        self.scale = math.nan if state["scale"] is None else float(state["scale"])
        self.threshold = math.inf if state["threshold"] is None else float(state["threshold"])
        self.calibrations = int(state["calibrations"])
        self._drift = bool(state["drift"])
        self.change_point = state["change_point"]
        self.detection = None if state["detection"] is None else _detection(state["detection"])
        self._load(state["state"])

    # --- for subclasses ------------------------------------------------------
    def _calibrate(self, reference_z: np.ndarray) -> None:
        raise NotImplementedError

    def _step(self, z: float, index: int) -> bool:
        raise NotImplementedError

    def _alarm_chart(self) -> tuple[float, tuple[float, ...]]:
        """The threshold the alarm being raised crossed and, for an innovations chart, its autoregression.

        A detector with two statistics says which one crossed.
        """
        return self.threshold, ()

    def _params(self) -> dict[str, Any]:
        return {}

    def _state(self) -> dict[str, Any]:
        return {}

    def _load(self, state: dict[str, Any]) -> None:
        return None

    def __repr__(self) -> str:
        params = ", ".join(f"{k}={v!r}" for k, v in self.snapshot()["params"].items())
        return f"{type(self).__name__}({params})"


def _detection(fields: list[Any]) -> Detection:
    """A :class:`Detection` from its snapshot list (six fields before ``whitening`` existed)."""
    if len(fields) > 6:
        return Detection(*fields[:6])._replace(whitening=tuple(float(a) for a in fields[6]))
    return Detection(*fields)
