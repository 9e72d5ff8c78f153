"""The null distribution of the batch statistics, by subsampling the reference.

Under "no drift" a batch of m vectors is just another draw from the
reference's distribution. So a null draw takes m reference vectors B at
random (without replacement) and scores them against the rest, C = R \\ B,
exactly as a live batch is scored against R. Thanks to the per-row sums of
:class:`~.reference.Reference`, a draw needs only the m × m block of B:

    Σ k(C, C) = Σ k(R, R) - 2 Σ_{i∈B} rowsum_i + Σ k(B, B)
    Σ k(B, C) = Σ_{i∈B} rowsum_i - Σ k(B, B)

and the same for distances. The draws (MMD², energy distance and centroid
shift at once) depend only on the reference and m, so they are computed
once per (reference, batch size) and cached by the scorer. Since C holds
n - m vectors rather than n, the null is slightly wider than the live
statistic's: the test errs on the side of fewer alarms.

This is the permutation test of Gretton et al. (JMLR 2012, section 5)
conditioned on the reference alone, so it needs no batch to be built.

Examples
--------
>>> import numpy as np
>>> from detectors.embedding.reference import Reference
>>> ref = Reference.build(np.random.default_rng(0).normal(size=(200, 4)), device="cpu")
>>> null = NullDistribution.draw(ref, m=20, draws=50, rng=np.random.default_rng(1))
>>> null.mmd2.shape, bool(null.threshold("mmd2", 0.05) > np.median(null.mmd2))
((50,), True)
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from detectors.embedding.energy import energy_from_sums
from detectors.embedding.mmd import mmd2_from_sums
from detectors.embedding.reference import Reference

__all__ = ["NullDistribution"]


@dataclass(frozen=True)
class NullDistribution:
    """Null draws of MMD², energy distance and centroid shift for batches of m."""

    m: int
    mmd2: np.ndarray
    energy: np.ndarray
    centroid: np.ndarray

    @classmethod
    def draw(cls, reference: Reference, *, m: int, draws: int, rng: np.random.Generator) -> NullDistribution:
        import torch

        n = reference.size
        if m < 2 or n - m < 2:
            raise ValueError(f"null draws need 2 <= m <= n - 2; got m={m}, n={n}")
        if draws < 1:
            raise ValueError(f"draws must be >= 1; got {draws!r}")
        kernel_total, distance_total = reference.kernel_sum, reference.distance_sum
        total = reference.vectors.sum(dim=0, dtype=torch.float64)
        rest = n - m
        index = np.stack([rng.choice(n, size=m, replace=False) for _ in range(draws)])
        # Draws go through in chunks of about 8M kernel entries: one batched product per chunk.
        chunk = max(1, (8 << 20) // (m * m))
        sums = np.empty((5, draws))
        with torch.inference_mode():
            for start in range(0, draws, chunk):
                rows = torch.from_numpy(index[start:start + chunk]).to(reference.device)
                batch, sq = reference.vectors[rows], reference.sq_norms[rows]
                d2 = (sq[:, :, None] + sq[:, None, :] - 2.0 * torch.bmm(batch, batch.transpose(1, 2)))
                d2 = d2.clamp_min_(0.0)
                part = slice(start, start + len(rows))
                kernel = torch.exp(-reference.gamma * d2)
                sums[0, part] = kernel.sum(dim=2).sum(dim=1, dtype=torch.float64).cpu().numpy()
                sums[1, part] = d2.sqrt_().sum(dim=2).sum(dim=1, dtype=torch.float64).cpu().numpy()
                sums[2, part] = reference.kernel_row_sums[rows].sum(dim=1).cpu().numpy()
                sums[3, part] = reference.distance_row_sums[rows].sum(dim=1).cpu().numpy()
                batch_sum = batch.sum(dim=1, dtype=torch.float64)
                shift = batch_sum / m - (total[None, :] - batch_sum) / rest
                sums[4, part] = torch.linalg.vector_norm(shift, dim=1).cpu().numpy()
        kernel_bb, distance_bb, kernel_rows, distance_rows, centroid = sums
        out = np.empty((3, draws))
        for draw in range(draws):
            out[0, draw] = mmd2_from_sums(
                ref_sum=kernel_total - 2.0 * kernel_rows[draw] + kernel_bb[draw], n=rest,
                batch_sum=kernel_bb[draw], m=m, cross_sum=kernel_rows[draw] - kernel_bb[draw])
            out[1, draw] = energy_from_sums(
                ref_sum=distance_total - 2.0 * distance_rows[draw] + distance_bb[draw], n=rest,
                batch_sum=distance_bb[draw], m=m, cross_sum=distance_rows[draw] - distance_bb[draw])
        out[2] = centroid
        return cls(m=m, mmd2=out[0], energy=out[1], centroid=out[2])

    def threshold(self, statistic: str, alpha: float) -> float:
        """The (1 - alpha) quantile of one statistic's draws."""
        if not 0.0 < alpha < 1.0:
            raise ValueError(f"alpha must be in (0, 1); got {alpha!r}")
        return float(np.quantile(self._values(statistic), 1.0 - alpha))

    def p_value(self, statistic: str, value: float) -> float:
        """(1 + #draws >= value) / (1 + #draws): never 0, as a permutation p-value."""
        values = self._values(statistic)
        return float((1 + np.count_nonzero(values >= value)) / (1 + values.size))

    def _values(self, statistic: str) -> np.ndarray:
        if statistic not in ("mmd2", "energy", "centroid"):
            raise ValueError(f"statistic must be mmd2, energy or centroid; got {statistic!r}")
        values: np.ndarray = getattr(self, statistic)
        return values
