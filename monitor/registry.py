"""Every pipeline stage in one ordered registry: how it is built, what it flags and reads, what it alerts.

:data:`STAGES` is the pipeline in order. Each :class:`StageSpec` names its
stage, its factory (settings in, a stage or ``None`` when the settings turn it
off), the flags it writes on :attr:`monitor.pipeline.KeyBatch.flags`, the
flags it reads, and the detector names of its alerts with their family.
:func:`check_order` refuses a stage that reads a flag only a later stage
writes; it runs when this module is imported. Detector families
(:mod:`monitor.policy.families`) and the dashboards' detector names read
:data:`DETECTOR_FAMILIES`, so a new detector has a family from the day its
stage is registered.

Examples
--------
>>> [spec.name for spec in STAGES]
['behaviour', 'drift', 'embedding', 'probe', 'signatures', 'motifs']
>>> DETECTOR_FAMILIES["canary"], DETECTOR_FAMILIES["changepoint"]
('signature', 'distribution')
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType

from monitor.errors import ConfigError
from monitor.events import EventDecoder
from monitor.pipeline import Pipeline, Stage
from monitor.settings import Settings
from monitor.threads import limit_math_threads

__all__ = ["ANY_FLAG", "DETECTOR_FAMILIES", "STAGES", "StageSpec", "build_pipeline", "check_order"]

#: In :attr:`StageSpec.reads`: every flag any other stage writes (motif mining reads them all).
ANY_FLAG = "*"


@dataclass(frozen=True)
class StageSpec:
    """One pipeline stage as the registry knows it."""

    name: str
    build: Callable[[Settings], Stage | None]
    writes: frozenset[str]
    reads: frozenset[str]
    #: Detector name of its alerts -> family (see :mod:`monitor.policy.families`).
    detectors: Mapping[str, str]


def _behaviour(settings: Settings) -> Stage:
    from monitor.stages.behaviour import BehaviourConfig, BehaviourStage

    if settings.behaviour.representation == "shape":
        return BehaviourStage()
    from monitor.static_model import load_static_encoder  # builds it the first time (~20 s)

    encoder = load_static_encoder(settings)
    return BehaviourStage(BehaviourConfig(representation="distilled", output_dim=encoder.dimension),
                          encoder=encoder.encode)


def _drift(settings: Settings) -> Stage:
    from monitor.stages.drift import DriftStage

    config = settings.drift
    pinned = None
    if config.reference_policy == "pinned":
        if config.pinned_reference is None:
            raise ConfigError("drift_reference_policy 'pinned' needs drift_pinned_reference; got none")
        from monitor.stages.drift_reference import load_pinned_reference

        pinned = load_pinned_reference(config.pinned_reference, EventDecoder(settings.ingest.limits),
                                       refusal_phrases=config.refusal_phrases)
    # The only store I/O the drift stage does, and only through this source: off (evaluations, the
    # gate, the bench, DRIFTWATCH_DRIFT_ACKNOWLEDGEMENTS=0), nothing is polled; on, a failing poll
    # warns once and keeps the last set (monitor.accepted_changes), so a store that is down or not
    # migrated yet delays acknowledgements and breaks nothing.
    accepted = None
    if config.acknowledgements:
        from monitor.storage.accepted import TableAccepted

        accepted = TableAccepted(settings.store.dsn)
    return DriftStage(config, pinned=pinned, accepted=accepted)


def _embedding(settings: Settings) -> Stage | None:
    config = settings.embedding
    if config.mode == "off":
        return None
    from monitor.stages.embedding import EmbeddingStage

    embedder = None
    if config.mode == "model":
        from detectors.embedding.encoder import embed

        embedder = functools.partial(embed, device=config.torch_device(), batch_size=config.batch_size,
                                     model=config.model, quantize=config.quantize, max_length=config.max_tokens)
    return EmbeddingStage(config, embedder)


def _probe(settings: Settings) -> Stage | None:
    if settings.probe.weights is None:
        return None
    from monitor.stages.probe import ProbeStage, load_probe

    return ProbeStage(load_probe(settings.probe.weights), settings.probe)


def _signatures(settings: Settings) -> Stage:
    from monitor.canary_keys import resolve_canary_key
    from monitor.signature_registry import SignatureRegistry
    from monitor.stages.signatures import SignatureStage

    config = settings.signatures
    registry = SignatureRegistry.from_files(config.file, dsn=settings.store.dsn if config.table else None)
    return SignatureStage(registry, canary_key=resolve_canary_key(settings), reload_seconds=config.reload_s)


def _motifs(settings: Settings) -> Stage:
    from monitor.stages.motifs import MotifStage

    return MotifStage(settings.motif)


def _spec(name: str, build: Callable[[Settings], Stage | None], *, writes: Sequence[str] = (),
          reads: Sequence[str] = (), detectors: Mapping[str, str]) -> StageSpec:
    return StageSpec(name, build, frozenset(writes), frozenset(reads), MappingProxyType(dict(detectors)))


# The order is the pipeline's: a stage sees the flags of the stages before it.
STAGES: tuple[StageSpec, ...] = (
    _spec("behaviour", _behaviour, writes=("input_shift",),
          detectors={"input_drift": "input", "behaviour": "behaviour"}),
    _spec("drift", _drift, writes=("refusal", "entropy_collapse", "high_value_tool", "confidence_lock"),
          reads=("input_shift",),
          detectors={"divergence": "distribution", "changepoint": "distribution"}),
    _spec("embedding", _embedding, writes=("embedding_novelty",), detectors={"embedding": "embedding"}),
    _spec("probe", _probe, writes=("probe",), detectors={"probe": "probe"}),
    _spec("signatures", _signatures, writes=("trigger", "canary"),
          detectors={"trigger": "signature", "canary": "signature"}),
    _spec("motifs", _motifs, writes=("payload_burst",), reads=(ANY_FLAG,), detectors={"motif": "motif"}),
)


def check_order(stages: Sequence[StageSpec]) -> None:
    """Refuse names or detectors used twice, and a stage that reads a flag only a later stage writes."""
    names = [spec.name for spec in stages]
    detectors = [d for spec in stages for d in spec.detectors]
    if len(set(names)) != len(names) or len(set(detectors)) != len(detectors):
        raise ConfigError(f"stage names and detector names must be unique; got {names} and {detectors}")
    for position, spec in enumerate(stages):
        earlier = {flag for before in stages[:position] for flag in before.writes}
        later = {flag for after in stages[position + 1:] for flag in after.writes} - earlier
        reads = later if ANY_FLAG in spec.reads else spec.reads & later
        if reads:
            raise ConfigError(f"stage {spec.name!r} reads {', '.join(sorted(reads))}, written only by a later "
                              "stage; move it after them in STAGES")


check_order(STAGES)

#: Every detector name the pipeline's alerts carry -> its family.
DETECTOR_FAMILIES: Mapping[str, str] = MappingProxyType(
    {detector: family for spec in STAGES for detector, family in spec.detectors.items()})


def build_pipeline(settings: Settings, *, detectors: bool = True) -> Pipeline:
    """The pipeline for ``settings``, stages in :data:`STAGES` order; ``detectors=False`` gives an empty one.

    Caps the numeric libraries at ``settings.ingest.math_threads`` threads (:mod:`monitor.threads`).
    """
    stages: list[Stage] = []
    if detectors:
        limit_math_threads(settings.ingest.math_threads)
        for spec in STAGES:
            stage = spec.build(settings)
            if stage is not None:
                stages.append(stage)
    return Pipeline(stages)
