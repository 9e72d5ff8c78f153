"""Multiple-testing control across metrics.

Twenty metrics each tested at level α give about 20α false alarms per
window; Benjamini & Hochberg (1995, J. R. Stat. Soc. B 57:289) keep the
expected share of false discoveries at ``q`` instead, and under the global
null (nothing changed) that is also the chance of any alarm.

Examples
--------
>>> reject, adjusted = benjamini_hochberg([0.001, 0.02, 0.04, 0.5], q=0.05)
>>> reject.tolist()
[True, True, False, False]
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

__all__ = ["benjamini_hochberg"]


def benjamini_hochberg(p_values: Sequence[float] | np.ndarray, *, q: float = 0.05) -> tuple[np.ndarray, np.ndarray]:
    """Which hypotheses to reject at false-discovery rate ``q``, and the adjusted p-values.

    NaN p-values (a test that could not run) are never rejected and do not
    count towards the number of tests.
    """
    if not 0 < q < 1:
        raise ValueError(f"q must be in (0, 1); got {q!r}")
    p = np.asarray(p_values, dtype=np.float64).ravel()
    if ((p < 0) | (p > 1)).any():
        raise ValueError(f"p-values must be in [0, 1]; got min {np.nanmin(p)}, max {np.nanmax(p)}")
    adjusted = np.full(p.size, np.nan)
    valid = np.flatnonzero(~np.isnan(p))
    m = valid.size
    if m == 0:
        return np.zeros(p.size, dtype=bool), adjusted
    order = valid[np.argsort(p[valid], kind="stable")]
    scaled = p[order] * m / np.arange(1, m + 1)
    # The step-up rule: adjusted p_(i) = min over j >= i of p_(j) m / j.
    adjusted[order] = np.minimum(np.minimum.accumulate(scaled[::-1])[::-1], 1.0)
    reject = np.zeros(p.size, dtype=bool)
    reject[valid] = adjusted[valid] <= q
    return reject, adjusted
