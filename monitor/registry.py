"""Which stages a pipeline runs, built from settings in one place."""

from __future__ import annotations

from monitor.errors import ConfigError
from monitor.events import EventDecoder
from monitor.pipeline import Pipeline, Stage
from monitor.settings import Settings
from monitor.stages.drift import DEFAULT_HIGH_VALUE_TOOLS, DriftConfig, DriftStage
from monitor.stages.motifs import motif_stage
from monitor.stages.signatures import signature_stage
from monitor.vector_scoring import vector_stages

__all__ = ["build_pipeline"]


def build_pipeline(settings: Settings, *, detectors: bool = True) -> Pipeline:
    """The pipeline for ``settings``; ``detectors=False`` gives an empty one (benchmarks)."""
    stages: list[Stage] = []
    if detectors:
        # Drift first: it flags refusals and entropy collapse for the stages after it.
        stages.append(build_drift_stage(settings))
        # Vector stages flag odd outputs (embedding_novelty, probe), so they run before later readers.
        stages.extend(vector_stages(settings))
        stages.append(signature_stage(settings))
        # Motif mining reads every earlier stage's flags: keep it last.
        stages.append(motif_stage(settings))
    return Pipeline(stages)


def build_drift_stage(settings: Settings) -> DriftStage:
    """The drift stage configured from ``settings.drift_*``."""
    config = DriftConfig(
        window_events=settings.drift_window_events, window_ms=settings.drift_window_ms,
        evaluate_every=settings.drift_evaluate_every, reference_events=settings.drift_reference_events,
        reference_policy=settings.drift_reference_policy, arl0=settings.drift_arl0,
        fleet_streams=settings.drift_fleet_streams, detectors=settings.drift_detectors,
        divergence_q=settings.drift_divergence_q, per_tenant=settings.drift_per_tenant,
        refusal_flag_rate=settings.drift_refusal_flag_rate,
        entropy_flag_sigmas=settings.drift_entropy_flag_sigmas,
        high_value_tools=settings.drift_high_value_tools or DEFAULT_HIGH_VALUE_TOOLS,
        refusal_phrases=settings.drift_refusal_phrases,
    )
    pinned = None
    if config.reference_policy == "pinned":
        if settings.drift_pinned_reference is None:
            raise ConfigError("drift_reference_policy 'pinned' needs drift_pinned_reference; got none")
        from monitor.stages.drift_reference import load_pinned_reference

        pinned = load_pinned_reference(settings.drift_pinned_reference, EventDecoder(settings.limits),
                                       refusal_phrases=settings.drift_refusal_phrases)
    return DriftStage(config, pinned=pinned)
