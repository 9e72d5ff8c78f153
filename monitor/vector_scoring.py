"""Vector scoring (embedding drift, linear probes): building the stages and the streaming entry point.

:func:`vector_stages` turns settings into the embedding and probe stages
(the registry puts them before the signature stage). :func:`score_batch`
is what a streaming agent calls on each micro-batch::

    pipeline = Pipeline(vector_stages(settings))
    async for events in stream.take(512, within=0.5):
        metrics, alerts = score_batch(pipeline, events)

Examples
--------
>>> from monitor.settings import Settings
>>> [stage.name for stage in vector_stages(Settings(embedding="precomputed"))]
['embedding']
>>> vector_stages(Settings(embedding="off"))
[]
"""

from __future__ import annotations

import functools
from collections.abc import Sequence

from monitor.alerts import Alert, MetricRow
from monitor.events import Event
from monitor.pipeline import Pipeline, Stage
from monitor.settings import Settings
from monitor.stages.embedding import EmbeddingConfig, EmbeddingStage
from monitor.stages.probe import ProbeStage, load_probe

__all__ = ["embedding_config", "score_batch", "vector_pipeline", "vector_stages"]


def embedding_config(settings: Settings) -> EmbeddingConfig:
    """The embedding stage's config; resolves ``auto`` to a device only in model mode (no torch import else)."""
    device = settings.embedding_device
    if device == "auto":
        if settings.embedding == "model":
            from detectors.embedding.encoder import resolve_device

            device = resolve_device("auto")
        else:
            device = "cpu"
    return EmbeddingConfig(
        mode=settings.embedding, reference_size=settings.embedding_reference_size,
        warmup=settings.embedding_warmup, window=settings.embedding_window, alpha=settings.embedding_alpha,
        null_draws=settings.embedding_null_draws, novelty_k=settings.embedding_novelty_k,
        novelty_quantile=settings.embedding_novelty_quantile, sample_rate=settings.embedding_sample_rate,
        device=device)


def vector_stages(settings: Settings) -> list[Stage]:
    """The embedding stage (unless ``embedding="off"``) and the probe stage (when ``probe_weights`` is set)."""
    stages: list[Stage] = []
    if settings.embedding != "off":
        config = embedding_config(settings)
        embedder = None
        if settings.embedding == "model":
            from detectors.embedding.encoder import embed

            embedder = functools.partial(
                embed, device=config.device, batch_size=settings.embedding_batch_size,
                model=settings.embedding_model, quantize=settings.embedding_quantize,
                max_length=settings.embedding_max_tokens)
        stages.append(EmbeddingStage(config, embedder))
    if settings.probe_weights is not None:
        stages.append(ProbeStage(load_probe(settings.probe_weights), threshold=settings.probe_threshold,
                                 window=settings.probe_window, reference_size=settings.probe_reference_size,
                                 alpha=settings.probe_alpha))
    return stages


def vector_pipeline(settings: Settings) -> Pipeline:
    """A pipeline of the vector stages alone, for a worker that runs only these."""
    return Pipeline(vector_stages(settings))


def score_batch(pipeline: Pipeline, events: Sequence[Event]) -> tuple[list[MetricRow], list[Alert]]:
    """Run one micro-batch of validated events; return its window metric rows and alerts."""
    if not events:
        return [], []
    findings = pipeline.process(events)
    return findings.metrics, findings.alerts
