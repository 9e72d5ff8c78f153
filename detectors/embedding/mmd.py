"""Unbiased MMD² with an RBF kernel, from kernel sums.

For a reference R of n vectors and a batch Y of m vectors,

    MMD²_u = Σ_{i≠j} k(r_i, r_j) / n(n-1) + Σ_{i≠j} k(y_i, y_j) / m(m-1)
             - 2 Σ_{i,j} k(r_i, y_j) / nm,

the unbiased estimator of Gretton et al., "A Kernel Two-Sample Test",
JMLR 13 (2012), eq. 3. With k(x, x) = 1 for the RBF kernel, the sums
without diagonal are the full sums minus n (or m).

Examples
--------
>>> mmd2_from_sums(ref_sum=10.0, n=4, batch_sum=10.0, m=4, cross_sum=8.0)
0.0
"""

from __future__ import annotations

__all__ = ["mmd2_from_sums"]


def mmd2_from_sums(*, ref_sum: float, n: int, batch_sum: float, m: int, cross_sum: float) -> float:
    """MMD²_u from full kernel sums (diagonals included, each k(x, x) = 1)."""
    if n < 2 or m < 2:
        raise ValueError(f"MMD² needs at least 2 vectors on each side; got n={n}, m={m}")
    within_ref = (ref_sum - n) / (n * (n - 1))
    within_batch = (batch_sum - m) / (m * (m - 1))
    return within_ref + within_batch - 2.0 * cross_sum / (n * m)
