"""Which stages a pipeline runs, built from settings in one place."""

from __future__ import annotations

from monitor.pipeline import Pipeline, Stage
from monitor.settings import Settings
from monitor.stages.motifs import motif_stage
from monitor.stages.signatures import signature_stage

__all__ = ["build_pipeline"]


def build_pipeline(settings: Settings, *, detectors: bool = True) -> Pipeline:
    """The pipeline for ``settings``; ``detectors=False`` gives an empty one (benchmarks)."""
    stages: list[Stage] = []
    if detectors:
        stages.append(signature_stage(settings))
        # Motif mining reads every earlier stage's flags: keep it last.
        stages.append(motif_stage(settings))
    return Pipeline(stages)
