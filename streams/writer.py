"""The sink write: on one dedicated thread, one write in flight, then the messages it makes.

The sink retries a failing ClickHouse with backoff on the writer thread while
the event loop keeps the Kafka session alive. A publish the broker refuses or
loses (alerts, dead letters, rollback decisions) is retried the same way, with
the same backoff, inside the write in flight: every failure is logged (at
CRITICAL when rollback decisions are among the messages) and counted
(``publish_failures``, sampled into ``service_metrics``), and until the
publish succeeds no checkpoint is written, so no event behind those messages
is acknowledged and the agent stops taking events. Messages are published at
least once: a retry sends the whole outbox again (alert ids are the dedup key). A new write first waits for the
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
from monitor.storage.rows import Backoff
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
        The worker's running counts; ``alerts_published`` and ``publish_failures`` are added to here.
    retry
        Backoff between publish attempts (``attempts=None``: until it succeeds or the worker stops).
    topic_rollback
        Rollback decisions' topic: a failed publish carrying any is logged at CRITICAL.
    """

    def __init__(self, sink: ClickHouseSink, publish: Publish, topic_alerts: str, *,
                 observers: list[AlertObserver], counts: dict[str, int], retry: Backoff | None = None,
                 topic_rollback: str | None = None) -> None:
        self.sink = sink
        self.publish = publish
        self.topic_alerts = topic_alerts
        self.topic_rollback = topic_rollback
        self.retry = retry or Backoff()
        counts.setdefault("publish_failures", 0)
        self.observers = observers
        self.counts = counts
        # Messages waiting for the next write (dead letters, and those of a write that failed).
        self.outbox: list[Message] = []
        # The messages of the publish in flight (being retried, perhaps), until the broker has them.
        self.publishing: list[Message] = []
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
                await self._publish(outbox)
        except BaseException:
            self.publishing = []
            self.outbox[:0] = outbox  # the stored alerts' messages go out with the next write
            raise
        self.counts["alerts_published"] += len(fresh)
        if fresh:
            logger.info("alerts published count=%d topic=%s", len(fresh), self.topic_alerts)

    async def _publish(self, outbox: list[Message]) -> None:
        """Publish ``outbox``, retrying with backoff (see the module docstring); raise once attempts run out."""
        failures = 0
        self.publishing = outbox
        while True:
            try:
                await self.publish(outbox)
                self.publishing = []
                return
            except Exception as exc:
                failures += 1
                self.counts["publish_failures"] += 1
                decisions = sum(1 for topic, _, _ in outbox if topic == self.topic_rollback)
                log = logger.critical if decisions else logger.error
                log("publish failed messages=%d rollback_decisions=%d attempt=%d error=%r; retrying, nothing "
                    "behind them is acknowledged meanwhile", len(outbox), decisions, failures, exc)
                if self.retry.attempts is not None and failures >= self.retry.attempts:
                    raise
                await asyncio.sleep(self.retry.delay(failures))

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
