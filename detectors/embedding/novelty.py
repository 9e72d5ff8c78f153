"""Per-output novelty: mean cosine distance to the k nearest reference vectors.

A k-nearest-neighbour distance is the classic distance-based outlier score
(Ramaswamy, Rastogi and Shim, SIGMOD 2000); averaging over k neighbours
(Angiulli and Pizzuti, PKDD 2002) makes it robust to one near-duplicate.
The threshold is calibrated leave-one-out on the reference itself: the
``quantile`` of the reference points' own novelty against the rest.

Examples
--------
>>> import torch
>>> similarity = torch.tensor([[1.0, 0.0, 0.5], [0.0, 0.0, 0.1]])
>>> knn_novelty(similarity, k=2).tolist()
[0.25, 0.949999988079071]
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["calibrate_novelty", "knn_novelty"]

_QUERIES = 2000


def knn_novelty(similarity: Any, k: int) -> Any:
    """1 - mean of each row's ``k`` largest cosine similarities, (m,) tensor."""
    k = min(k, similarity.shape[1])
    return 1.0 - similarity.topk(k, dim=1).values.mean(dim=1)


def calibrate_novelty(vectors: Any, norms: Any, *, k: int, quantile: float,
                      rng: np.random.Generator) -> float:
    """Leave-one-out novelty of (up to 2,000) reference points; its ``quantile``."""
    import torch

    n = vectors.shape[0]
    if n < 2:
        raise ValueError(f"novelty calibration needs at least 2 reference vectors; got {n}")
    if not 0.0 < quantile < 1.0:
        raise ValueError(f"novelty quantile must be in (0, 1); got {quantile!r}")
    chosen = np.sort(rng.choice(n, size=min(n, _QUERIES), replace=False))
    index = torch.from_numpy(chosen).to(vectors.device)
    similarity = (vectors[index] @ vectors.T) / (norms[index][:, None] * norms[None, :])
    similarity[torch.arange(len(chosen), device=vectors.device), index] = -2.0  # leave itself out
    scores = knn_novelty(similarity, min(k, n - 1))
    return float(torch.quantile(scores.double(), quantile))
