"""Vector scoring (embedding drift, linear probes): the streaming entry point.

The registry (:data:`monitor.registry.STAGES`) builds the embedding and
probe stages. :func:`score_batch` runs one micro-batch through a pipeline and
returns what a streaming agent writes::

    pipeline = build_pipeline(settings)
    async for events in stream.take(512, within=0.5):
        metrics, alerts = score_batch(pipeline, events)
"""

from __future__ import annotations

from collections.abc import Sequence

from monitor.alerts import Alert, MetricRow
from monitor.events import Event
from monitor.pipeline import Pipeline

__all__ = ["score_batch"]


def score_batch(pipeline: Pipeline, events: Sequence[Event]) -> tuple[list[MetricRow], list[Alert]]:
    """Run one micro-batch of validated events; return its window metric rows and alerts."""
    if not events:
        return [], []
    findings = pipeline.process(events)
    return findings.metrics, findings.alerts
