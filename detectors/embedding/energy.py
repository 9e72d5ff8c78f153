"""Energy distance, from distance sums.

    E = 2 E||X - Y|| - E||X - X'|| - E||Y - Y'||,

Székely and Rizzo, "Energy statistics: a class of statistics based on
distances", J. Stat. Planning and Inference 143 (2013), eq. 2.1; within-sample
means are taken over distinct pairs (the U-statistic form), so E has mean
about zero when both samples come from one distribution.

Examples
--------
>>> round(energy_from_sums(ref_sum=12.0, n=4, batch_sum=12.0, m=4, cross_sum=16.0), 6)
0.0
"""

from __future__ import annotations

__all__ = ["energy_from_sums"]


def energy_from_sums(*, ref_sum: float, n: int, batch_sum: float, m: int, cross_sum: float) -> float:
    """Energy distance from full distance sums (diagonals are zero)."""
    if n < 2 or m < 2:
        raise ValueError(f"energy distance needs at least 2 vectors on each side; got n={n}, m={m}")
    return 2.0 * cross_sum / (n * m) - ref_sum / (n * (n - 1)) - batch_sum / (m * (m - 1))
