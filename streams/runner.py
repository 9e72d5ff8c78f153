"""Run the worker in this process until it is stopped (SIGTERM / Ctrl-C)."""

from __future__ import annotations

import gc
import logging
from collections.abc import Sequence

import faust

from monitor.settings import Settings
from streams.app import create_app
from streams.worker import AlertObserver

logger = logging.getLogger(__name__)

__all__ = ["GC_THRESHOLDS", "run_worker"]

#: CPython's defaults are (700, 10, 10).
GC_THRESHOLDS = (50_000, 20, 100)


def run_worker(settings: Settings, *, observers: Sequence[AlertObserver] = (), loglevel: str = "warning",
               detectors: bool = True) -> None:
    """Start a Faust worker for ``settings`` and block until it stops (``detectors=False``: store only)."""
    service = create_app(settings, observers=observers, detectors=detectors)
    # The detectors allocate many short-lived objects beside a large, long-lived heap (Faust, the
    # confusables table, motif state): with CPython's default thresholds the collector scans that
    # heap over and over. Start-up objects are frozen out of collection, and collections come less
    # often; measured in the README (Streaming figures).
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)
    logger.info("worker starting app_id=%s brokers=%s input=%s store=%s", settings.kafka.app_id,
                settings.kafka.bootstrap, settings.kafka.topic_input, service.store.describe())
    worker = faust.Worker(service.app, loglevel=loglevel, quiet=True, redirect_stdouts=False)
    try:
        worker.execute_from_commandline()
    finally:
        service.close()
