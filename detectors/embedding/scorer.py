"""Score a batch of embeddings against a reference: the four drift measures at once.

One (m × n) matrix product between the batch and the reference gives the
squared distances (for the RBF kernel and the energy distance) and the
cosine similarities (for per-output novelty); the centroid shift is a mean.
Thresholds for MMD², energy and centroid shift come from a subsampling null
(:mod:`.null`) computed once per batch size and cached; the novelty
threshold is calibrated once, leave-one-out, on the reference.

Drift is declared when MMD² or the energy distance exceeds its null
threshold, each tested at ``alpha / 2`` (Bonferroni), so the false-alarm
rate per batch stays at most ``alpha``. Two tests, because with the median
bandwidth MMD² is weak against a small cluster of identical outputs (the
typical backdoor target), where energy distance is strong; MMD² is the
stronger of the two against broad shifts. Centroid shift is reported with
its own null threshold as context.

Examples
--------
>>> import numpy as np
>>> rng = np.random.default_rng(0)
>>> scorer = EmbeddingScorer(rng.normal(size=(400, 8)), device="cpu", draws=100, seed=1)
>>> scorer.score(rng.normal(size=(40, 8))).drift
False
>>> scorer.score(rng.normal(loc=1.0, size=(40, 8))).drift
True
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from detectors.embedding.energy import energy_from_sums
from detectors.embedding.mmd import mmd2_from_sums
from detectors.embedding.novelty import calibrate_novelty, knn_novelty
from detectors.embedding.null import NullDistribution
from detectors.embedding.reference import Reference

__all__ = ["BatchScore", "EmbeddingScorer"]

_CACHED_SIZES = 8
_ROW_BLOCK = 1024


@dataclass(frozen=True)
class BatchScore:
    """Scores of one batch; ``novelty`` and ``novel`` are per vector."""

    size: int
    mmd2: float
    mmd2_threshold: float
    p_value: float  # of MMD², against the null draws
    energy: float
    energy_threshold: float
    centroid_shift: float
    centroid_threshold: float
    novelty: np.ndarray
    novelty_threshold: float

    @property
    def drift(self) -> bool:
        """MMD² or energy distance above its threshold (each at alpha / 2)."""
        return self.mmd2 > self.mmd2_threshold or self.energy > self.energy_threshold

    @property
    def novel(self) -> np.ndarray:
        """Per vector: is its novelty above the calibrated threshold?"""
        return self.novelty > self.novelty_threshold


class EmbeddingScorer:
    """Unbiased MMD², energy distance, k-NN novelty and centroid shift against a reference.

    Parameters
    ----------
    reference
        (n, d) reference embeddings; kept on ``device`` as float32.
    device
        Torch device for the reference and all scoring (``"cpu"``, ``"cuda"``).
    alpha
        False-alarm rate per batch, split evenly between the MMD² and energy tests.
    draws
        Null draws per batch size; the threshold's resolution is about 1 / draws.
    k
        Neighbours for the novelty score.
    novelty_quantile
        Reference quantile of novelty above which a vector counts as novel.
    seed
        Seeds the bandwidth sample, the null draws and the novelty calibration.
    """

    def __init__(self, reference: np.ndarray, *, device: str = "cpu", alpha: float = 0.01,
                 draws: int = 500, k: int = 10, novelty_quantile: float = 0.99, seed: int = 0) -> None:
        if not 0.0 < alpha < 1.0:
            raise ValueError(f"alpha must be in (0, 1); got {alpha!r}")
        if k < 1:
            raise ValueError(f"k must be >= 1; got {k!r}")
        self.alpha = alpha
        self.draws = draws
        self.k = k
        self.seed = seed
        self.reference = Reference.build(reference, device=device, seed=seed)
        self.novelty_threshold = calibrate_novelty(
            self.reference.vectors, self.reference.norms, k=k, quantile=novelty_quantile,
            rng=np.random.default_rng([seed, 1]))
        self._nulls: dict[int, NullDistribution] = {}

    def null(self, m: int) -> NullDistribution:
        """The cached null for batches of ``m`` (drawn on first use)."""
        null = self._nulls.get(m)
        if null is None:
            if len(self._nulls) >= _CACHED_SIZES:  # bounded: evict the oldest size
                del self._nulls[next(iter(self._nulls))]
            null = NullDistribution.draw(self.reference, m=m, draws=self.draws,
                                         rng=np.random.default_rng([self.seed, 2, m]))
            self._nulls[m] = null
        return null

    def novelty(self, vectors: np.ndarray) -> np.ndarray:
        """Per-vector novelty (mean cosine distance to the k nearest reference vectors)."""
        import torch

        ref = self.reference
        array = self._check(vectors)
        with torch.inference_mode():
            y = torch.from_numpy(array).to(ref.device)
            out = []
            for start in range(0, len(array), _ROW_BLOCK):
                rows = y[start:start + _ROW_BLOCK]
                similarity = (rows @ ref.vectors.T) / (
                    torch.linalg.vector_norm(rows, dim=1).clamp_min(1e-12)[:, None] * ref.norms[None, :])
                out.append(knn_novelty(similarity, self.k))
            return torch.cat(out).cpu().numpy().astype(np.float64)

    def _check(self, batch: np.ndarray) -> np.ndarray:
        array = np.ascontiguousarray(batch, dtype=np.float32)
        if array.ndim != 2 or array.shape[1] != self.reference.dimension or array.shape[0] < 1:
            raise ValueError(f"batch must have shape (m, {self.reference.dimension}); got {array.shape}")
        return array

    def score(self, batch: np.ndarray) -> BatchScore:
        """Score ``batch`` (m, d) against the reference; m >= 2."""
        import torch

        ref = self.reference
        array = self._check(batch)
        m, n = array.shape[0], ref.size
        null = self.null(m)
        with torch.inference_mode():
            y = torch.from_numpy(array).to(ref.device)
            y_sq = (y * y).sum(dim=1)
            kernel_cross = distance_cross = 0.0
            novelty = torch.empty(m, device=ref.device)
            for start in range(0, m, _ROW_BLOCK):  # bounds the m × n temporaries
                rows = slice(start, start + _ROW_BLOCK)
                gram = y[rows] @ ref.vectors.T
                d2 = (y_sq[rows, None] + ref.sq_norms[None, :] - 2.0 * gram).clamp_min_(0.0)
                kernel_cross += float(torch.exp(-ref.gamma * d2).sum(dim=1).sum(dtype=torch.float64))
                distance_cross += float(d2.sqrt_().sum(dim=1).sum(dtype=torch.float64))
                gram /= y_sq[rows].sqrt().clamp_min(1e-12)[:, None] * ref.norms[None, :]
                novelty[rows] = knn_novelty(gram, self.k)
            d2_yy = (y_sq[:, None] + y_sq[None, :] - 2.0 * (y @ y.T)).clamp_min_(0.0)
            kernel_yy = float(torch.exp(-ref.gamma * d2_yy).sum(dim=1).sum(dtype=torch.float64))
            distance_yy = float(d2_yy.sqrt_().sum(dim=1).sum(dtype=torch.float64))
            centroid = float(torch.linalg.vector_norm(y.mean(dim=0) - ref.mean))
            novelty_values = novelty.cpu().numpy().astype(np.float64)
        half = self.alpha / 2.0
        mmd2 = mmd2_from_sums(ref_sum=ref.kernel_sum, n=n, batch_sum=kernel_yy, m=m, cross_sum=kernel_cross)
        energy = energy_from_sums(ref_sum=ref.distance_sum, n=n, batch_sum=distance_yy, m=m,
                                  cross_sum=distance_cross)
        return BatchScore(
            size=m, mmd2=mmd2, mmd2_threshold=null.threshold("mmd2", half),
            p_value=null.p_value("mmd2", mmd2), energy=energy,
            energy_threshold=null.threshold("energy", half), centroid_shift=centroid,
            centroid_threshold=null.threshold("centroid", self.alpha), novelty=novelty_values,
            novelty_threshold=self.novelty_threshold)
