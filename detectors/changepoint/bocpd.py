"""Bayesian online change-point detection, truncated (Adams & MacKay 2007, arXiv:0710.3742).

The posterior over the *run length* r (updates since the last change) is
updated per value with a constant hazard H and a Normal-Gamma model of the
standardised input (unknown mean and variance, so variance changes show too;
the predictive is a Student t). Run lengths are truncated at
``max_run_length``: the two longest hypotheses are merged into the last bin,
keeping the statistics of the more probable one, so memory and time per
update are fixed.

The posterior starts with all its mass on "a long run", whose statistics are
the warm-up's, so the warm-up is the reference. The alarm statistic is the
posterior log-odds that the run started within the last ``window`` updates,
excluding r = 0 (whose mass is always H under a constant hazard); its
threshold is calibrated by simulation on bootstrap paths of the reference
(see :mod:`detectors.changepoint.calibration`). The estimated onset is the
update index minus the most probable run length among the recent ones: the
alarm asserts a change within the window, and with a small hazard it can fire
while the long run still holds the single largest posterior mass.

Two defaults set the delay at a calibrated false-alarm rate (the README has
the delays measured with ``driftwatch evaluate`` before and after them):

* The hazard is small, 1 / 10,000 (the default ARL0). The threshold, not the
  hazard, sets the false-alarm rate; a larger hazard only keeps spare mass on
  short runs, which is noise on stationary data. As the hazard goes to 0 the
  odds become a windowed Shiryaev–Roberts statistic (a sum over recent
  change times of each run's likelihood ratio against the long run), which is
  asymptotically optimal for delay under an ARL0 constraint (Pollak 1985,
  Ann. Stat. 13:206).
* A new run's prior is centred on the reference's scale: after standardising,
  the Gamma prior on its precision has mean 1 and shape ``prior_alpha``
  (empirical Bayes: the warm-up says what the usual variance is). The vague
  shape of 1 made a fresh run's predictive a Student t with 2 degrees of
  freedom, slow to gain on the long run after a mean step; a variance change
  still shows, a little later.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from detectors.changepoint.base import WarmupDetector
from detectors.changepoint.calibration import gumbel_threshold

__all__ = ["BOCPD"]

_LOG_PI = math.log(math.pi)


class BOCPD(WarmupDetector):
    """Truncated Bayesian online change-point detection with a calibrated alarm.

    Parameters
    ----------
    hazard
        Prior probability of a change at each update (1 / expected run length).
    prior_alpha
        Shape of the Gamma prior on a new run's precision, whose rate is the same, so its
        mean is the reference's precision and its coefficient of variation 1 / sqrt(prior_alpha).
    max_run_length
        Run-length hypotheses kept; memory is three floats per hypothesis.
    window
        A run younger than this counts as "a recent change" for the alarm statistic.
    calibration_paths, calibration_length
        Size of the bootstrap simulation that sets the threshold.
    **kwargs
        ``warmup``, ``arl0``, ``min_scale``, ``seed``: see :class:`~detectors.changepoint.base.WarmupDetector`.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(2)
    >>> stream = np.concatenate([rng.normal(0, 1, 800), rng.normal(2, 1, 200)])
    >>> detector = BOCPD(calibration_paths=48)
    >>> alarms = [i for i, x in enumerate(stream) if (detector.update(x), detector.drift_detected)[1]]
    >>> 800 <= alarms[0] < 840, 790 <= detector.detection.change_point <= alarms[0]
    (True, True)
    """

    format = "bocpd.v1"

    def __init__(self, *, hazard: float = 1e-4, prior_alpha: float = 20.0, max_run_length: int = 256,
                 window: int = 128, calibration_paths: int = 48, calibration_length: int = 500,
                 **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if not 0 < hazard < 1:
            raise ValueError(f"hazard must be in (0, 1); got {hazard!r}")
        if not prior_alpha > 0:
            raise ValueError(f"prior_alpha must be > 0; got {prior_alpha!r}")
        if not 2 <= window < max_run_length:
            raise ValueError(f"need 2 <= window < max_run_length; got window={window}, "
                             f"max_run_length={max_run_length}")
        if calibration_paths < 20 or calibration_length < 100:
            raise ValueError("calibration needs >= 20 paths of >= 100 steps; "
                             f"got {calibration_paths} x {calibration_length}")
        self.hazard = float(hazard)
        self.prior_alpha = float(prior_alpha)
        # mu, kappa, alpha, beta of the Normal-Gamma prior on standardised data.
        self._prior = (0.0, 1.0, self.prior_alpha, self.prior_alpha)
        self.max_run_length = int(max_run_length)
        self.window = int(window)
        self.calibration_paths = int(calibration_paths)
        self.calibration_length = int(calibration_length)
        # kappa and alpha of run length r are fixed by r (r updates of the prior), except in the
        # merged last bin: tables for all, the last bin's own values kept apart.
        runs = np.arange(self.max_run_length, dtype=np.float64)
        self._kappa = self._prior[1] + runs
        self._alpha = self._prior[2] + runs / 2
        self._norm = np.array([math.lgamma(a + 0.5) - math.lgamma(a) for a in self._alpha]) - 0.5 * _LOG_PI
        self._posterior: tuple[np.ndarray, ...] = ()
        # Per-run-length factors of the single-path step, precomputed (the last entry is patched
        # each update from the merged bin): 2 (kappa + 1) / kappa, 1 / (kappa + 1), kappa / (2 (kappa + 1)).
        kappa = self._kappa
        self._work = (2.0 * (kappa + 1.0) / kappa, 1.0 / (kappa + 1.0), kappa / (2.0 * (kappa + 1.0)),
                      self._alpha + 0.5, self._norm.copy())

    def _initial(self, reference_z: np.ndarray, paths: int = 0) -> tuple[np.ndarray, ...]:
        """All mass on a long run whose statistics are the reference's (Normal-Gamma update)."""
        size = self.max_run_length
        prob = np.zeros(size)
        prob[-1] = 1.0
        mu = np.full(size, self._prior[0])
        beta = np.full(size, self._prior[3])
        count = reference_z.size
        mean = float(reference_z.mean())
        mu0, kappa0, alpha0, beta0 = self._prior
        mu[-1] = (kappa0 * mu0 + count * mean) / (kappa0 + count)
        beta[-1] = (beta0 + 0.5 * float(((reference_z - mean) ** 2).sum())
                    + kappa0 * count * (mean - mu0) ** 2 / (2 * (kappa0 + count)))
        tail = np.array([kappa0 + count, alpha0 + count / 2])
        if paths == 0:
            return prob, mu, beta, tail
        return tuple(np.repeat(v[None, :], paths, axis=0) for v in (prob, mu, beta, tail))

    def _calibrate(self, reference_z: np.ndarray) -> None:
        paths = self._calibration_paths(self.calibration_paths, self.calibration_length)
        state = self._initial(reference_z, self.calibration_paths)
        maxima = np.full(self.calibration_paths, -np.inf)
        for t in range(self.calibration_length):
            state = self._advance(state, paths[:, t:t + 1])
            np.maximum(maxima, self._log_odds(state[0]), out=maxima)
        self.threshold = gumbel_threshold(maxima, length=self.calibration_length, arl0=self.arl0)
        self._posterior = self._initial(reference_z)

    def _advance(self, state: tuple[np.ndarray, ...], x: Any) -> tuple[np.ndarray, ...]:
        """One Adams–MacKay step over the last axis (leading axes are independent paths).

        The run-length probabilities are renormalised every step, so they
        neither underflow nor need logs.
        """
        from scipy.special import gammaln  # on first use: scipy.special is slow to import

        prob, mu, beta, tail = state
        tail_kappa, tail_alpha = tail[..., 0], tail[..., 1]
        kappa = np.broadcast_to(self._kappa, mu.shape).copy()
        kappa[..., -1] = tail_kappa
        power = np.broadcast_to(self._alpha + 0.5, mu.shape).copy()
        power[..., -1] = tail_alpha + 0.5
        norm = np.broadcast_to(self._norm, mu.shape).copy()
        norm[..., -1] = gammaln(tail_alpha + 0.5) - gammaln(tail_alpha) - 0.5 * _LOG_PI
        kappa1 = kappa + 1.0
        spread = 2.0 * beta * kappa1 / kappa  # Student t: nu * sigma^2 with nu = 2 alpha
        deviation = (x - mu) ** 2
        log_predictive = norm - 0.5 * np.log(spread) - power * np.log1p(deviation / spread)
        log_predictive -= log_predictive.max(axis=-1, keepdims=True)
        joint = prob * np.exp(log_predictive)
        growth = joint * (1.0 - self.hazard)
        new_prob = np.empty_like(prob)
        new_prob[..., 0] = self.hazard * joint.sum(axis=-1)
        new_prob[..., 1:-1] = growth[..., :-2]
        new_prob[..., -1] = growth[..., -2] + growth[..., -1]
        new_prob /= new_prob.sum(axis=-1, keepdims=True)
        keep_last = growth[..., -1] >= growth[..., -2]
        new_mu = np.empty_like(mu)
        new_beta = np.empty_like(beta)
        for new, prior, values in ((new_mu, self._prior[0], mu + (x - mu) / kappa1),
                                   (new_beta, self._prior[3], beta + kappa * deviation / (2.0 * kappa1))):
            new[..., 0] = prior
            new[..., 1:-1] = values[..., :-2]
            new[..., -1] = np.where(keep_last, values[..., -1], values[..., -2])
        new_tail = np.empty_like(tail)
        new_tail[..., 0] = np.where(keep_last, tail_kappa, self._kappa[-2]) + 1.0
        new_tail[..., 1] = np.where(keep_last, tail_alpha, self._alpha[-2]) + 0.5
        return new_prob, new_mu, new_beta, new_tail

    def _log_odds(self, prob: np.ndarray) -> Any:
        recent = prob[..., 1:self.window].sum(axis=-1)
        older = prob[..., self.window:].sum(axis=-1)
        return np.log(np.maximum(recent, 1e-300)) - np.log(np.maximum(older, 1e-300))

    def _step(self, z: float, index: int) -> bool:
        # The same arithmetic as _advance, specialised to one path and done in place:
        # per-update cost is what the fleet pays, calibration runs once.
        prob, mu, beta, tail = self._posterior
        tail_kappa, tail_alpha = float(tail[0]), float(tail[1])
        spread_factor, inverse, half_weight, power, norm = self._work
        spread_factor[-1] = 2.0 * (tail_kappa + 1.0) / tail_kappa
        inverse[-1] = 1.0 / (tail_kappa + 1.0)
        half_weight[-1] = tail_kappa / (2.0 * (tail_kappa + 1.0))
        power[-1] = tail_alpha + 0.5
        norm[-1] = math.lgamma(tail_alpha + 0.5) - math.lgamma(tail_alpha) - 0.5 * _LOG_PI
        spread = beta * spread_factor
        shift = z - mu
        deviation = shift * shift
        log_predictive = norm - 0.5 * np.log(spread)
        log_predictive -= power * np.log1p(deviation / spread)
        log_predictive -= log_predictive.max()
        joint = prob * np.exp(log_predictive)
        change = self.hazard * float(joint.sum())
        joint *= 1.0 - self.hazard
        keep_last = joint[-1] >= joint[-2]
        prob[1:-1] = joint[:-2]
        prob[-1] = joint[-2] + joint[-1]
        prob[0] = change
        prob /= prob.sum()
        shift *= inverse
        shift += mu
        deviation *= half_weight
        deviation += beta
        last = -1 if keep_last else -2
        mu[-1] = shift[last]
        mu[1:-1] = shift[:-2]
        mu[0] = self._prior[0]
        beta[-1] = deviation[last]
        beta[1:-1] = deviation[:-2]
        beta[0] = self._prior[3]
        tail[0] = (tail_kappa if keep_last else self._kappa[-2]) + 1.0
        tail[1] = (tail_alpha if keep_last else self._alpha[-2]) + 0.5
        recent = float(prob[1:self.window].sum())
        older = float(prob[self.window:].sum())
        statistic = math.log(max(recent, 1e-300)) - math.log(max(older, 1e-300))
        if statistic <= self.threshold:
            return False
        run = int(np.argmax(prob[1:self.window])) + 1
        self._statistic = statistic
        self.change_point = index - run + 1
        # The posterior mean of the most probable run is the estimate after the change.
        self._after_z = float(mu[run])
        return True

    def _params(self) -> dict[str, Any]:
        return {"hazard": self.hazard, "prior_alpha": self.prior_alpha, "max_run_length": self.max_run_length,
                "window": self.window, "calibration_paths": self.calibration_paths,
                "calibration_length": self.calibration_length}

    def _state(self) -> dict[str, Any]:
        if not self._posterior:
            return {"posterior": None}
        return {"posterior": [v.tolist() for v in self._posterior]}

    def _load(self, state: dict[str, Any]) -> None:
        rows = state["posterior"]
        if rows is None:
            self._posterior = ()
            return
        prob, mu, beta, tail = (np.asarray(v, dtype=np.float64) for v in rows)
        if not prob.shape == mu.shape == beta.shape == (self.max_run_length,) or tail.shape != (2,):
            raise ValueError(f"BOCPD posterior must hold 3 x {self.max_run_length} values and 2 more; "
                             f"got shapes {prob.shape}, {mu.shape}, {beta.shape}, {tail.shape}")
        self._posterior = (prob, mu, beta, tail)
