"""The stream benchmark's ceiling: Faust's stream API alone, nothing of ours between take and commit.

Run by ``driftwatch bench stream`` (:mod:`driftwatch.bench.stream`) in a
child process: ``python -c "from streams.baseline import run_faust_only; run_faust_only()"``.
It lives here because only :mod:`streams` imports Faust.
"""

from __future__ import annotations

from typing import Any

import faust

from monitor.settings import load_settings
from streams.app import faust_app

__all__ = ["run_faust_only"]


def run_faust_only() -> None:
    """The ceiling baseline: Faust's stream API alone, nothing of ours between take and commit.

    The worker's Faust app (:func:`streams.app.faust_app`, same
    ``DRIFTWATCH_*`` settings): batches taken with ``noack_take``, every event
    acknowledged at once, offsets committed after every batch. No decoding,
    detection, sink or changelog.
    """
    settings = load_settings()
    app = faust_app(settings)
    source = app.topic(settings.kafka.topic_input, key_serializer="raw", value_serializer="raw",
                       partitions=settings.kafka.topic_partitions)

    @app.agent(source, name="faust-only.take")
    async def take(stream: Any) -> None:
        async for events in stream.noack_take(settings.ingest.batch_size, within=settings.kafka.stream_within_s):
            for event in events:
                event.ack()
            # After every batch (a round trip per batch), so the measured end is not a timer's tick.
            await app.commit({settings.kafka.topic_input})

    faust.Worker(app, loglevel="warning", quiet=True, redirect_stdouts=False).execute_from_commandline()
