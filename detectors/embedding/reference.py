"""A reference sample on the torch device, with the sums every test reuses.

Scoring a batch Y of m vectors against a reference R of n vectors needs
within-reference kernel and distance sums. They cost O(n²), so they are
computed once here, in blocks, and kept as per-row sums (n floats each):
the per-batch cost is then one (m × n) matrix product. Per-row sums are
also what make the subsampling null cheap (see :mod:`.mmd`).

Memory: the reference itself (n × d float32) plus four n-vectors; for
10,000 × 384 that is 14.8 MiB.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["Reference", "pairwise_sq_distances"]

_BLOCK = 2048
_BANDWIDTH_SAMPLE = 1000


def pairwise_sq_distances(x: Any, y: Any, x_sq: Any, y_sq: Any) -> Any:
    """Squared Euclidean distances from one matrix product, clamped at 0."""
    return (x_sq[:, None] + y_sq[None, :] - 2.0 * (x @ y.T)).clamp_min_(0.0)


@dataclass
class Reference:
    """A reference sample with its kernel and distance row sums.

    Build it with :meth:`Reference.build`.

    Attributes
    ----------
    vectors
        (n, d) float32 tensor on the scoring device.
    sq_norms, norms
        Per-row squared norms and norms.
    gamma
        RBF kernel parameter, ``k(x, y) = exp(-gamma ||x - y||²)``, with
        ``gamma = 1 / (2 median ||x - x'||²)``: the median heuristic
        (Gretton et al., JMLR 2012, section 8).
    kernel_row_sums, distance_row_sums
        Σ_j k(r_i, r_j) and Σ_j ||r_i - r_j|| over the whole reference
        (diagonal included: k = 1, distance = 0).
    mean
        The reference centroid, (d,).

    Examples
    --------
    >>> import numpy as np
    >>> ref = Reference.build(np.random.default_rng(0).normal(size=(50, 8)), device="cpu")
    >>> ref.size, ref.dimension, ref.kernel_row_sums.shape[0]
    (50, 8, 50)
    """

    vectors: Any
    sq_norms: Any
    norms: Any
    gamma: float
    kernel_row_sums: Any
    distance_row_sums: Any
    mean: Any

    @property
    def size(self) -> int:
        return int(self.vectors.shape[0])

    @property
    def dimension(self) -> int:
        return int(self.vectors.shape[1])

    @property
    def device(self) -> Any:
        return self.vectors.device

    @property
    def kernel_sum(self) -> float:
        return float(self.kernel_row_sums.sum())

    @property
    def distance_sum(self) -> float:
        return float(self.distance_row_sums.sum())

    def nbytes(self) -> int:
        """Bytes held on the device."""
        tensors = (self.vectors, self.sq_norms, self.norms, self.kernel_row_sums,
                   self.distance_row_sums, self.mean)
        return sum(t.element_size() * t.nelement() for t in tensors)

    @classmethod
    def build(cls, vectors: np.ndarray, *, device: str = "cpu", seed: int = 0) -> Reference:
        """Move ``vectors`` to ``device`` and compute the sums (O(n²) once, in blocks)."""
        import torch

        array = np.asarray(vectors, dtype=np.float32)
        if array.ndim != 2 or array.shape[0] < 2 or array.shape[1] < 1:
            raise ValueError(f"reference must be a 2-d array of at least 2 rows; got shape {array.shape}")
        if not np.isfinite(array).all():
            raise ValueError("reference holds NaN or infinite values")
        with torch.inference_mode():
            ref = torch.from_numpy(np.ascontiguousarray(array)).to(device)
            sq = (ref * ref).sum(dim=1)
            gamma = _median_gamma(ref, sq, np.random.default_rng(seed))
            kernel_rows = torch.empty(ref.shape[0], dtype=torch.float64, device=ref.device)
            distance_rows = torch.empty_like(kernel_rows)
            for start in range(0, ref.shape[0], _BLOCK):
                block = slice(start, start + _BLOCK)
                d2 = pairwise_sq_distances(ref[block], ref, sq[block], sq)
                kernel_rows[block] = torch.exp(-gamma * d2).sum(dim=1).double()
                distance_rows[block] = d2.sqrt_().sum(dim=1).double()
            return cls(vectors=ref, sq_norms=sq, norms=sq.sqrt().clamp_min(1e-12), gamma=gamma,
                       kernel_row_sums=kernel_rows, distance_row_sums=distance_rows,
                       mean=ref.mean(dim=0))


def _median_gamma(ref: Any, sq: Any, rng: np.random.Generator) -> float:
    """1 / (2 · median squared distance) over (a sample of) the reference's pairs."""
    import torch

    n = ref.shape[0]
    if n > _BANDWIDTH_SAMPLE:
        index = torch.from_numpy(rng.choice(n, size=_BANDWIDTH_SAMPLE, replace=False)).to(ref.device)
        ref, sq = ref[index], sq[index]
    d2 = pairwise_sq_distances(ref, ref, sq, sq)
    upper = torch.triu_indices(d2.shape[0], d2.shape[0], offset=1, device=d2.device)
    values = d2[upper[0], upper[1]]
    positive = values[values > 0]
    # All points equal (or nearly): any bandwidth gives a zero statistic; avoid dividing by 0.
    median = float(positive.median()) if positive.numel() else 1.0
    return 1.0 / (2.0 * median)
