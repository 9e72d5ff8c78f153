"""What one streaming worker does with a batch, independent of how Faust wires it.

:class:`StreamWorker` turns a batch of Kafka events into stored rows with the
same :class:`~monitor.ingest.Ingestor` replay uses (decode, validate, run the
pipeline), then decides when to flush the ClickHouse sink and when to
checkpoint. Two clocks:

- every ``flush_interval_s`` (or ``flush_rows``) the sink is flushed and the
  new alerts are published: this is what an analyst waits for;
- every ``checkpoint_interval_s`` the detector state of the models touched is
  written to the changelog-backed table, and only then are the events it
  covers acknowledged and their offsets committed.

A crash therefore replays at most one checkpoint interval of events. They are
stored again (idempotent rows; alerts already stored are not published
again) but not fed to the detectors again: each checkpoint carries, per input
partition, the newest offset its state holds, and the worker never feeds an
event at or below the offset its state (restored or in memory) already
holds. The same fence covers a rebalance, after which Kafka delivers again
every event after the committed offset, including ones this process already
processed.

Writes run on one dedicated thread, one at a time, while the agent handles the
next batch: the sink retries a failing ClickHouse with backoff there while the
event loop keeps the Kafka session alive. The next flush, a checkpoint and a
full buffer wait for the write in flight, so the agent stops taking events:
that is the backpressure, and the buffer stays within ``sink_max_rows``.

The parts live beside this module: :mod:`streams.offsets` (ordering and holes),
:mod:`streams.checkpoints` (the state written and restored, the offset fence),
:mod:`streams.writer` (the writer thread and the write in flight),
:mod:`streams.health` (health samples) and :mod:`streams.messages` (encoding).

Alert observers
    ``observers`` are callables given every batch of NEW alerts after a flush;
    each returns ``(topic, key, value)`` messages to publish (for example a
    rollback policy's decisions for ``driftwatch-rollback``). A failing
    observer is logged and skipped; it never stops the stream.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from concurrent.futures.process import BrokenProcessPool
from typing import Any

from monitor.alerts import Alert
from monitor.errors import StorageError
from monitor.ingest import BatchResult, Ingestor, Origin, dead_letter
from monitor.pipeline import StreamKey
from monitor.settings import Settings
from monitor.storage.rows import Backoff, DeadLetter, ServiceMetric
from monitor.storage.sink import ClickHouseSink
from streams.checkpoints import Checkpoints, DetectorCheckpoints
from streams.detection import ProcessPipeline
from streams.health import HealthSampler
from streams.messages import Message, alert_message, dead_letter_message
from streams.offsets import Committed, DeliveredOffsets, KafkaEvent
from streams.writer import AlertObserver, Publish, SinkWriter

logger = logging.getLogger(__name__)

__all__ = ["AlertObserver", "Checkpoints", "KafkaEvent", "Message", "Publish", "StreamWorker"]

# Longest a graceful stop waits to write and publish what was handled (ClickHouse may be down).
FINISH_TIMEOUT_S = 10.0


class StreamWorker:
    """Decode -> pipeline -> sink for Kafka batches, with checkpoints and health samples.

    The coordinator: it holds the lock that orders batches and the timers' work,
    and decides when to write (:class:`~streams.writer.SinkWriter`) and when to
    checkpoint (:class:`~streams.checkpoints.DetectorCheckpoints`), what to
    acknowledge and what a rebalance forgets.

    Parameters
    ----------
    settings
        The worker's settings (topic names, flush and checkpoint intervals, ...).
    ingestor
        Decoder and pipeline, as built for replay.
    sink
        A sink built with ``flush_rows=None``: the worker decides when to flush.
    checkpoints
        Detector state by model_id: the changelog-backed Faust table in
        the worker (:class:`streams.state.StateTable`).
    publish
        Sends messages and waits until the broker has them.
    commit
        ``commit({(topic, partition): offset})``: commits those offsets (the next offset to read) now;
        called after each checkpoint with the worker's own figure, one past the newest offset
        acknowledged (see :mod:`streams.offsets` for why not Faust's).
    seek
        ``seek(topic, partition, offset)``: read the partition again from
        ``offset`` (after a hole in the delivered offsets, see
        :meth:`streams.offsets.DeliveredOffsets.in_order`).
    committed
        ``committed(topic, partition)``: the group's committed offset where the consumer knows it; a
        partition's first delivery past it is a hole too.
    observers
        Alert observers (see the module docstring).

    Examples
    --------
    >>> alert = Alert.create(ts_ms=0, model_id="m", model_version="1", detector="trigger",
    ...     metric="x", severity="high", score=1, threshold=1, evidence={}, discriminator="e")
    >>> StreamWorker.alert_message(alert, "driftwatch-alerts")[1] == alert.alert_id.encode()
    True
    """

    def __init__(self, settings: Settings, ingestor: Ingestor, sink: ClickHouseSink, *,
                 checkpoints: Checkpoints, publish: Publish,
                 commit: Callable[[Mapping[tuple[str, int], int]], Awaitable[Any]] | None = None,
                 seek: Callable[[str, int, int], Awaitable[Any]] | None = None,
                 committed: Committed | None = None,
                 observers: Sequence[AlertObserver] = ()) -> None:
        self.settings = settings
        self.ingestor = ingestor
        self.sink = sink
        self.checkpoints = checkpoints
        self.publish = publish
        self.commit = commit
        self.seek = seek
        self.committed = committed
        self.observers: list[AlertObserver] = list(observers)
        self.worker_id = f"{socket.gethostname()}:{os.getpid()}"
        self.counts = {"events": 0, "dead_letters": 0, "alerts_published": 0, "publish_failures": 0}
        self._writer = SinkWriter(sink, publish, settings.kafka.topic_alerts, observers=self.observers,
                                  counts=self.counts, topic_rollback=settings.kafka.topic_rollback,
                                  retry=Backoff(settings.kafka.sink_retry_initial_s, settings.kafka.sink_retry_max_s))
        # Held by handle() and by the timers' work: a checkpoint never sees state fed by a batch
        # whose rows and alerts are not in the sink yet.
        self._lock = asyncio.Lock()
        self._pending: list[KafkaEvent] = []
        self._touched: set[StreamKey] = set()
        self._last_checkpoint = time.monotonic()
        self._offsets = DeliveredOffsets()
        # Input partitions assigned to this worker; None until the first assignment is known.
        self._assigned: set[int] | None = None
        self._models = DetectorCheckpoints(checkpoints)
        # The batch in detection, with the detectors in a child process (see handle).
        self._inflight: asyncio.Future[None] | None = None
        self._health = HealthSampler(self.worker_id, sink, self.counts)

    @property
    def last_offsets(self) -> dict[tuple[str, int], int]:
        """(topic, partition) -> newest offset handled."""
        return self._offsets.last_offsets

    async def handle(self, events: Sequence[KafkaEvent]) -> None:
        """Process one batch taken from the input topic; flush and checkpoint when due.

        With the detectors in a child process (:class:`~streams.detection.ProcessPipeline`)
        this returns once the batch is in detection, after the previous batch is done
        (its error, if any, is raised here): Faust takes the next batch meanwhile.
        """
        await self._settle()
        if not isinstance(self.ingestor.pipeline, ProcessPipeline):
            await self._handle(events)
            return
        self._inflight = asyncio.ensure_future(self._handle(events))

    async def _settle(self) -> None:
        """Wait for the batch in detection, if any (shielded: a cancelled agent leaves it running)."""
        inflight, self._inflight = self._inflight, None
        if inflight is not None:
            await asyncio.shield(inflight)

    async def _handle(self, events: Sequence[KafkaEvent]) -> None:
        async with self._lock:
            # Taken before a rebalance moved their partition away: the new owner processes them.
            events = await self._offsets.in_order([event for event in events if self._owns(event.message)],
                                                  self.seek, self.committed)
            records = []
            for event in events:
                message = event.message
                raw = message.value if isinstance(message.value, bytes) else b""
                records.append((raw, Origin(message.topic, partition=message.partition, offset=message.offset)))
            result = await self._run(records)
            incoming = (len(result.events) + len(result.dead_letters) + len(result.findings.metrics)
                        + len(result.findings.alerts))
            if self.sink.buffered and self.sink.buffered + incoming > self.sink.max_rows:
                await self._writer.store(wait=True)  # make room first: the sink's bound is never crossed
            self.ingestor.write(result, self.sink)
            self._writer.outbox.extend(dead_letter_message(letter, self.settings.kafka.topic_dead_letters)
                                       for letter in result.dead_letters)
            self.counts["events"] += len(result.events)
            self.counts["dead_letters"] += len(result.dead_letters)
            self._pending.extend(events)
            await self._due(rows_full=self.settings.store.flush_rows <= self.sink.buffered)

    def _owns(self, message: Any) -> bool:
        return self._assigned is None or message.topic != self.settings.kafka.topic_input or \
            message.partition in self._assigned

    async def _run(self, records: Sequence[tuple[bytes, Origin]]) -> BatchResult:
        # Ingestor.process, with detector state restored for keys this process does not hold.
        result = self.ingestor.decode(records)
        pipeline = self.ingestor.pipeline
        keys = {event.key for event in result.events}
        self._models.restore(pipeline, keys)
        fresh = self._models.fence(result.events, result.sources)
        if len(fresh) < len(result.events):
            logger.info("events delivered again stored, not fed to the detectors again count=%d",
                        len(result.events) - len(fresh))
        if fresh:
            try:
                if isinstance(pipeline, ProcessPipeline):
                    result.findings = await pipeline.process_async(fresh)
                else:
                    result.findings = pipeline.process(fresh)
            except BrokenProcessPool:
                raise  # the detection process died: stop; the next owner resumes from the checkpoints
            except Exception as exc:  # a stage bug must not kill the stream: the batch is dead-lettered
                logger.exception("pipeline failed events=%d; dead-lettering the batch", len(result.events))
                reason = f"pipeline failed: {exc!r}"[:500]
                by_source = dict(zip(result.sources, result.events, strict=True))
                for raw, origin in records:
                    if origin.describe() in by_source:
                        result.dead_letters.append(dead_letter(raw, origin, reason))
                result.events, result.sources = [], []
                return result
        # A rebalance during detection may have taken some of these models away (see reassigned).
        self._touched |= {key for key in keys if key[0] in self._models.partition_of}
        return result

    def flush_due(self) -> bool:
        return bool(self.sink.buffered or self._writer.outbox) and (
            time.monotonic() - self._writer.last_flush >= self.settings.kafka.flush_interval_s)

    def checkpoint_due(self) -> bool:
        return bool(self._pending or self._touched) and (
            time.monotonic() - self._last_checkpoint >= self.settings.kafka.checkpoint_interval_s)

    async def tick(self) -> None:
        """The timers' work: flush and checkpoint when due, between batches."""
        if self._lock.locked() or (self._inflight is not None and not self._inflight.done()):
            return  # a batch is being handled, and it ends with the same check
        async with self._lock:
            await self._due()

    async def _due(self, *, rows_full: bool = False) -> None:
        if self.checkpoint_due():
            await self._writer.store(wait=True)
            await self._checkpoint()
        elif rows_full or self.flush_due():
            await self._writer.store(wait=rows_full)

    async def flush(self) -> None:
        """Store, publish, checkpoint and acknowledge everything handled so far."""
        await self._settle()
        async with self._lock:
            await self._writer.store(wait=True)
            await self._checkpoint()

    async def finish(self, timeout: float = FINISH_TIMEOUT_S) -> None:
        """At shutdown, once the consumer has stopped: write and publish everything handled.

        Nothing is checkpointed or committed here: the events not acknowledged
        yet are read again by the next owner (stored again, fenced from the
        detectors by the state it restores). Gives up after ``timeout``
        seconds (ClickHouse down), leaving the rows to :meth:`close`.
        """
        async def store() -> None:
            await self._settle()
            async with self._lock:
                await self._writer.store(wait=True)

        try:
            await asyncio.wait_for(store(), timeout)
        except TimeoutError:
            logger.warning("writing at shutdown took over %.0f s; left to the final write buffered_rows=%d",
                           timeout, self.sink.buffered)

    async def _checkpoint(self) -> None:
        """Detector state into the changelog, then acknowledge and commit the events it covers.

        Called right after the write, under the lock: every event in the
        state has its rows and alerts stored, and none is acknowledged before
        the state holding it is in the changelog.
        """
        pending = [event for event in self._pending if self._owns(event.message)]
        # Faust counts a hole as done: a partition reading one again acknowledges nothing until it has
        # it, or the commit would pass it.
        rereading = self._offsets.rereading
        self._pending = [event for event in pending if rereading((event.message.topic, event.message.partition))]
        pending = [event for event in pending if not rereading((event.message.topic, event.message.partition))]
        sent = self._models.put(self.ingestor.pipeline, self._touched)
        touched, self._touched = self._touched, set()
        try:
            await asyncio.gather(*sent)
        except BaseException:
            self._pending[:0] = pending
            self._touched |= touched
            raise
        self._last_checkpoint = time.monotonic()
        for event in pending:
            event.ack()
        offsets = self._offsets.acknowledged(pending)
        if offsets and self.commit is not None:
            await self.commit(offsets)

    def reassigned(self, assigned: Iterable[tuple[str, int]]) -> None:
        """A rebalance gave this worker ``assigned`` (topic, partition) pairs.

        Models whose input partition went elsewhere are forgotten: their new
        owner resumes them from the checkpoint, and this worker restores them
        from it again if they come back. Their events not yet acknowledged are
        dropped (Kafka delivers them to the owner). Models that stay keep
        their state, which is ahead of the checkpoint: the events Kafka
        delivers again are fenced off by offset.
        """
        kept = {partition for topic, partition in assigned if topic == self.settings.kafka.topic_input}
        self._assigned = kept
        self._offsets.keep_partitions(kept)
        gone = self._models.moved_away(kept)
        logger.info("partitions assigned topic=%s partitions=%s models_forgotten=%d", self.settings.kafka.topic_input,
                    sorted(kept), len(gone))
        if not gone:
            return
        pipeline = self.ingestor.pipeline
        for key in [key for key in pipeline.keys if key[0] in gone]:
            pipeline.forget(key)
        self._touched = {key for key in self._touched if key[0] not in gone}
        self._models.forget(gone)
        self._pending = [event for event in self._pending if self._owns(event.message)]

    def sample_health(self, highwaters: Mapping[tuple[str, int], int]) -> list[ServiceMetric]:
        """One health sample (buffered into ``service_metrics`` with the next flush)."""
        return self._health.sample(highwaters, self.last_offsets)

    def close(self) -> None:
        """Write what is left once (no more retries) and release the writer thread.

        Nothing unacknowledged is lost if this write fails: Kafka still has those events. The failure is
        raised all the same (after the warnings), so the process exits non-zero and the operator knows.
        """
        self.sink.close()
        self._writer.shutdown()
        if isinstance(self.ingestor.pipeline, ProcessPipeline):
            self.ingestor.pipeline.close()
        failed: StorageError | None = None
        try:
            self.sink.flush()
        except StorageError as exc:
            logger.error("final flush failed buffered_rows=%d error=%s", self.sink.buffered, exc)
            failed = exc
        unpublished = self.sink.drain_new_alerts()
        if unpublished:
            logger.warning("alerts stored but not published count=%d topic=%s (the worker stopped before "
                           "publishing them)", len(unpublished), self.settings.kafka.topic_alerts)
        left = self._writer.outbox + self._writer.publishing
        if left:
            decisions = sum(1 for topic, _, _ in left if topic == self.settings.kafka.topic_rollback)
            (logger.critical if decisions else logger.error)(
                "messages not published at stop count=%d rollback_decisions=%d (the broker refused them)",
                len(left), decisions)
        if failed is not None:
            raise StorageError(f"final flush failed with {self.sink.buffered} rows unwritten (their events "
                               f"were not committed and are read again): {failed}") from failed

    @staticmethod
    def alert_message(alert: Alert, topic: str) -> Message:
        return alert_message(alert, topic)

    @staticmethod
    def dead_letter_message(letter: DeadLetter, topic: str) -> Message:
        return dead_letter_message(letter, topic)
