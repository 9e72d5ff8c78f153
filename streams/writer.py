"""The sink write: on one dedicated thread, one write in flight, then the messages it makes.

The sink retries a failing ClickHouse with backoff on the writer thread while
the event loop keeps the Kafka session alive. A new write first waits for the
one in flight; a caller that must not go on before the rows are stored (a
checkpoint, a full buffer, a flush) waits for it as well: that is the
backpressure.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor

from monitor.alerts import Alert
from monitor.storage.sink import ClickHouseSink
from streams.messages import Message, alert_message

logger = logging.getLogger(__name__)

__all__ = ["AlertObserver", "Publish", "SinkWriter"]

AlertObserver = Callable[[Sequence[Alert]], Iterable[Message]]
Publish = Callable[[Sequence[Message]], Awaitable[None]]


class SinkWriter:
    """Writes the sink on the writer thread, then publishes the outbox, new alerts and observers' messages.

    Parameters
    ----------
    sink
        The sink to write (built with ``flush_rows=None``).
    publish
        Sends messages and waits until the broker has them.
    topic_alerts
        Where new alerts are published.
    observers
        Alert observers: given every batch of new alerts, each returns messages to publish.
    counts
        The worker's running counts; ``alerts_published`` is added to here.
    """

    def __init__(self, sink: ClickHouseSink, publish: Publish, topic_alerts: str, *,
                 observers: list[AlertObserver], counts: dict[str, int]) -> None:
        self.sink = sink
        self.publish = publish
        self.topic_alerts = topic_alerts
        self.observers = observers
        self.counts = counts
        # Messages waiting for the next write (dead letters, and those of a write that failed).
        self.outbox: list[Message] = []
        self.last_flush = time.monotonic()
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="clickhouse-writer")
        # The sink write in flight (writer thread, then publishing); see store.
        self._writing: asyncio.Future[None] | None = None

    async def store(self, *, wait: bool = False) -> None:
        """Write the sink on the writer thread, then publish (see :meth:`_write`).

        One write at a time: a new one first waits for the one in flight. With
        ``wait=False`` the next batch is handled while the rows are written;
        a checkpoint, a full buffer and a flush wait for the write.
        """
        await self.written()
        outbox, self.outbox = self.outbox, []
        self.last_flush = time.monotonic()
        self._writing = asyncio.ensure_future(self._write(outbox))
        if wait:
            await self.written()

    async def written(self) -> None:
        """Wait for the write in flight, if any; a failed write raises here, once.

        Shielded: a waiter cancelled (the agent, at shutdown) leaves the write
        running, and a graceful stop waits for the same write.
        """
        writing = self._writing
        if writing is None:
            return
        try:
            await asyncio.shield(writing)
        finally:
            if writing.done() and self._writing is writing:
                self._writing = None

    async def _write(self, outbox: list[Message]) -> None:
        """Write the sink, then publish ``outbox`` (dead letters), new alerts and what observers make of them."""
        try:
            if self.sink.buffered:
                await asyncio.get_running_loop().run_in_executor(self._thread, self.sink.flush)
            fresh = self.sink.drain_new_alerts()
            outbox.extend(alert_message(alert, self.topic_alerts) for alert in fresh)
            outbox.extend(self._observe(fresh))
            if outbox:
                await self.publish(outbox)
        except BaseException:
            self.outbox[:0] = outbox  # the stored alerts' messages go out with the next write
            raise
        self.counts["alerts_published"] += len(fresh)
        if fresh:
            logger.info("alerts published count=%d topic=%s", len(fresh), self.topic_alerts)

    def _observe(self, alerts: Sequence[Alert]) -> list[Message]:
        if not alerts:
            return []
        messages: list[Message] = []
        for observer in self.observers:
            try:
                messages.extend(observer(alerts))
            except Exception:  # an observer's bug must not stop the stream
                logger.exception("alert observer failed observer=%r alerts=%d", observer, len(alerts))
        return messages

    def shutdown(self) -> None:
        """Release the writer thread, cancelling a write not started yet."""
        self._thread.shutdown(wait=True, cancel_futures=True)
