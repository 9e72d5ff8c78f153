"""Replay files into the settings' store: the pipeline, the sink and the SOC policy, as ``driftwatch replay`` does."""

from __future__ import annotations

from collections.abc import Sequence

from monitor.events import EventDecoder
from monitor.ingest import Ingestor
from monitor.registry import build_pipeline
from monitor.replay import ReplaySummary, replay
from monitor.settings import Settings
from monitor.storage.sink import ClickHouseSink
from monitor.storage.store import Store

__all__ = ["run_replay"]


def run_replay(settings: Settings, paths: Sequence[str], *, detectors: bool = True,
               progress: bool = False) -> tuple[ReplaySummary, str]:
    """Replay ``paths`` into the settings' store; return the summary and where data lives."""
    decoder = EventDecoder(settings.ingest.limits)
    pipeline = build_pipeline(settings, detectors=detectors)
    with Store(settings.store.dsn) as store:
        store.ensure_schema()
        sink = ClickHouseSink(store, store_text=settings.store.text, flush_rows=settings.store.flush_rows)
        summary = replay(paths, Ingestor(decoder, pipeline), sink,
                         batch_size=settings.ingest.batch_size, progress=progress)
        if detectors:
            from monitor.policy.engine import engine_from_settings

            outcome = engine_from_settings(settings).handle(store, summary.alerts, notify_ids=summary.fresh_ids)
            summary.incidents, summary.decisions = len(outcome.incidents), outcome.decisions
        return summary, store.describe()
