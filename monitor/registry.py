"""Which stages a pipeline runs, built from settings in one place."""

from __future__ import annotations

from monitor.pipeline import Pipeline, Stage
from monitor.settings import Settings
from monitor.stages.signatures import SignatureStage, default_signatures, load_signatures
from monitor.vector_scoring import vector_stages

__all__ = ["build_pipeline"]


def build_pipeline(settings: Settings, *, detectors: bool = True) -> Pipeline:
    """The pipeline for ``settings``; ``detectors=False`` gives an empty one (benchmarks)."""
    stages: list[Stage] = []
    if detectors:
        # Vector stages flag odd outputs (embedding_novelty, probe), so they run before later readers.
        stages.extend(vector_stages(settings))
        signatures = load_signatures(settings.signatures) if settings.signatures else default_signatures()
        stages.append(SignatureStage(signatures))
    return Pipeline(stages)
