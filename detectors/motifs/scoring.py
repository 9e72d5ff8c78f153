"""Is an n-gram over-represented among anomalous events? Lift, Fisher, Benjamini–Hochberg.

For an n-gram seen in ``support`` of the window's ``events``, of which
``anomalous_support`` are anomalous, out of ``anomalous`` anomalous events in
all: the lift is ``(anomalous_support / support) / (anomalous / events)``,
and the one-sided Fisher exact test (Fisher 1922) asks how likely so many
anomalous events among ``support`` draws without replacement would be by
chance: the hypergeometric upper tail ``P(X >= anomalous_support)``. Many
n-grams are tested at once, so p-values are adjusted by the
Benjamini–Hochberg step-up procedure (Benjamini and Hochberg 1995, JRSS B
57(1)) over ``tests`` hypotheses.

Examples
--------
>>> import numpy as np
>>> p = fisher_upper(np.array([20, 2]), np.array([25, 400]), anomalous=100, events=10_000)
>>> bool(p[0] < 1e-20), bool(p[1] > 0.5)
(True, True)
>>> benjamini_hochberg(np.array([0.01, 0.04, 0.03]), tests=3).round(3).tolist()
[0.03, 0.04, 0.04]
"""

from __future__ import annotations

import numpy as np
from scipy.stats import hypergeom

__all__ = ["benjamini_hochberg", "fisher_upper", "lift"]


def lift(anomalous_support: np.ndarray, support: np.ndarray, *, anomalous: int, events: int) -> np.ndarray:
    """How many times likelier an event holding the n-gram is anomalous than any event."""
    base = anomalous / events
    return (anomalous_support / np.maximum(support, 1)) / base


def fisher_upper(anomalous_support: np.ndarray, support: np.ndarray, *, anomalous: int, events: int) -> np.ndarray:
    """One-sided Fisher exact p-values: P(X >= anomalous_support), X ~ Hypergeom(events, anomalous, support)."""
    return np.asarray(hypergeom.sf(anomalous_support - 1, events, anomalous, support), dtype=float)


def benjamini_hochberg(p_values: np.ndarray, *, tests: int) -> np.ndarray:
    """BH-adjusted q-values of ``p_values``, as if ``tests`` hypotheses were tested in all.

    Hypotheses not in ``p_values`` (not enough support to be tested) are
    taken to rank after these, which can only make the q-values larger.
    """
    count = len(p_values)
    if count == 0:
        return np.zeros(0)
    tests = max(tests, count)
    order = np.argsort(p_values, kind="stable")
    ranked = p_values[order] * tests / np.arange(1, count + 1)
    adjusted = np.minimum.accumulate(ranked[::-1])[::-1]
    out = np.empty(count)
    out[order] = np.minimum(adjusted, 1.0)
    return out
