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

Alert observers
    ``observers`` are callables given every batch of NEW alerts after a flush;
    each returns ``(topic, key, value)`` messages to publish (for example a
    rollback policy's decisions for ``driftwatch-rollback``). A failing
    observer is logged and skipped; it never stops the stream.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import socket
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Protocol

from monitor.alerts import Alert
from monitor.errors import StorageError
from monitor.ingest import BatchResult, Ingestor, Origin, dead_letter
from monitor.pipeline import StreamKey
from monitor.settings import Settings
from monitor.storage.rows import DeadLetter, ServiceMetric
from monitor.storage.sink import ClickHouseSink

logger = logging.getLogger(__name__)

__all__ = ["AlertObserver", "Message", "StreamWorker"]

Message = tuple[str, bytes | None, bytes]
# The dead-letter topic carries a short preview; the table keeps more (RAW_PREVIEW_BYTES).
TOPIC_PREVIEW_BYTES = 1024
# A partition read again after a hole that still delivers only what came after it is sought again this often.
REREAD_RETRY_S = 2.0
# Longest a graceful stop waits to write and publish what was handled (ClickHouse may be down).
FINISH_TIMEOUT_S = 10.0
AlertObserver = Callable[[Sequence[Alert]], Iterable[Message]]
Publish = Callable[[Sequence[Message]], Awaitable[None]]


class Checkpoints(Protocol):
    """Detector state by model_id.

    Values read ``{"offsets": {partition: offset}, "versions": {model_version:
    pipeline snapshot}}``, partitions as strings (JSON keys): the newest input
    offset, per partition, whose event the state holds.
    """

    def get(self, model_id: bytes) -> dict[str, Any] | None: ...

    def put(self, model_id: bytes, state: dict[str, Any], partition: int) -> Awaitable[Any] | None:
        """Store ``state``; ``partition`` is the input partition the model's events come from."""

    def forget(self, model_id: bytes) -> None:
        """The model's partition went to another worker."""


class KafkaEvent(Protocol):
    """The part of a Faust event the worker uses."""

    message: Any

    def ack(self) -> bool: ...


class StreamWorker:
    """Decode -> pipeline -> sink for Kafka batches, with checkpoints and health samples.

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
        Commits acknowledged offsets now (called after each checkpoint).
    seek
        ``seek(topic, partition, offset)``: read the partition again from
        ``offset`` (after a hole in the delivered offsets, see :meth:`_in_order`).
    observers
        Alert observers (see the module docstring).

    Examples
    --------
    >>> StreamWorker.alert_message(Alert.create(ts_ms=0, model_id="m", model_version="1",
    ...     detector="trigger", metric="x", severity="high", score=1, threshold=1,
    ...     evidence={}, discriminator="e"), "driftwatch-alerts")[1]
    b'm'
    """

    def __init__(self, settings: Settings, ingestor: Ingestor, sink: ClickHouseSink, *,
                 checkpoints: Checkpoints, publish: Publish,
                 commit: Callable[[], Awaitable[Any]] | None = None,
                 seek: Callable[[str, int, int], Awaitable[Any]] | None = None,
                 observers: Sequence[AlertObserver] = ()) -> None:
        self.settings = settings
        self.ingestor = ingestor
        self.sink = sink
        self.checkpoints = checkpoints
        self.publish = publish
        self.commit = commit
        self.seek = seek
        self.observers: list[AlertObserver] = list(observers)
        self.worker_id = f"{socket.gethostname()}:{os.getpid()}"
        self._writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="clickhouse-writer")
        # Held by handle() and by the timers' work: a checkpoint never sees state fed by a batch
        # whose rows and alerts are not in the sink yet.
        self._lock = asyncio.Lock()
        self._pending: list[KafkaEvent] = []
        self._touched: set[StreamKey] = set()
        self._outbox: list[Message] = []
        # The sink write in flight (writer thread, then publishing); see _store.
        self._writing: asyncio.Future[None] | None = None
        self._last_flush = self._last_checkpoint = time.monotonic()
        # (topic, partition) -> newest offset handled.
        self.last_offsets: dict[tuple[str, int], int] = {}
        # (topic, partition) -> (first offset missing, first offset seen after it, when sought) while it
        # is read again.
        self._reread: dict[tuple[str, int], tuple[int, int, float]] = {}
        # Input partitions assigned to this worker; None until the first assignment is known.
        self._assigned: set[int] | None = None
        # model_id -> input partition: where that model's state is checkpointed. One entry per model.
        self._partition_of: dict[str, int] = {}
        # model_id -> the checkpoint last read or written: a checkpoint merges the model's versions
        # not touched since from here, instead of reading the table again.
        self._stored: dict[str, dict[str, Any] | None] = {}
        # (model_id, partition) -> newest offset the in-memory state holds, fed here or restored:
        # an event at or below it is stored again but never fed again.
        self._fed: dict[tuple[str, int], int] = {}
        self.counts = {"events": 0, "dead_letters": 0, "alerts_published": 0}
        self._sampled = (time.monotonic(), 0)

    async def handle(self, events: Sequence[KafkaEvent]) -> None:
        """Process one batch taken from the input topic; flush and checkpoint when due."""
        async with self._lock:
            # Taken before a rebalance moved their partition away: the new owner processes them.
            events = await self._in_order([event for event in events if self._owns(event.message)])
            records = []
            for event in events:
                message = event.message
                raw = message.value if isinstance(message.value, bytes) else b""
                records.append((raw, Origin(message.topic, partition=message.partition, offset=message.offset)))
            result = self._run(records)
            incoming = (len(result.events) + len(result.dead_letters) + len(result.findings.metrics)
                        + len(result.findings.alerts))
            if self.sink.buffered and self.sink.buffered + incoming > self.sink.max_rows:
                await self._store(wait=True)  # make room first: the sink's bound is never crossed
            self.ingestor.write(result, self.sink)
            self._outbox.extend(self.dead_letter_message(letter, self.settings.kafka.topic_dead_letters)
                                for letter in result.dead_letters)
            self.counts["events"] += len(result.events)
            self.counts["dead_letters"] += len(result.dead_letters)
            self._pending.extend(events)
            await self._due(rows_full=self.settings.store.flush_rows <= self.sink.buffered)

    async def _in_order(self, events: Sequence[KafkaEvent]) -> list[KafkaEvent]:
        """``events`` up to the first hole in each partition's offsets; the partition reads the hole again.

        Faust counts offsets it never delivered as done and commits past
        them, so a record the consumer skipped would be lost. An event after a
        hole is therefore neither handled nor acknowledged: the partition is
        sought back to the first missing offset and delivers it all again. A
        hole that is still there after reading again is real (transaction
        markers, compaction) and is accepted.
        """
        kept: list[KafkaEvent] = []
        held: set[tuple[str, int]] = set()
        seek = self.seek
        for event in events:
            message = event.message
            where = (message.topic, message.partition)
            if where in held:
                continue
            last = self.last_offsets.get(where)
            if last is not None and message.offset > last + 1:
                if seek is None:
                    logger.warning("input offsets skipped topic=%s partition=%d offsets=%d..%d, not read again "
                                   "(no seek)", *where, last + 1, message.offset - 1)
                elif (hole := self._reread.get(where)) is None or hole[0] != last + 1:
                    logger.warning("input offsets skipped topic=%s partition=%d offsets=%d..%d; reading them "
                                   "again", *where, last + 1, message.offset - 1)
                    self._reread[where] = (last + 1, message.offset, time.monotonic())
                    held.add(where)
                    await seek(*where, last + 1)
                    continue
                elif message.offset > hole[1]:
                    # Fetched before the seek, or the seek lost a race with a fetch: it comes again.
                    held.add(where)
                    if time.monotonic() - hole[2] >= REREAD_RETRY_S:
                        logger.warning("input offsets still missing topic=%s partition=%d from=%d; seeking again",
                                       *where, hole[0])
                        self._reread[where] = (hole[0], hole[1], time.monotonic())
                        await seek(*where, hole[0])
                    continue
                else:
                    logger.warning("input offsets skipped topic=%s partition=%d offsets=%d..%d, absent when read "
                                   "again (transaction markers or compaction)", *where, last + 1, message.offset - 1)
            self._reread.pop(where, None)
            self.last_offsets[where] = message.offset
            kept.append(event)
        return kept

    def _owns(self, message: Any) -> bool:
        return self._assigned is None or message.topic != self.settings.kafka.topic_input or \
            message.partition in self._assigned

    def _run(self, records: Sequence[tuple[bytes, Origin]]) -> BatchResult:
        # Ingestor.process, with detector state restored for keys this process does not hold.
        result = self.ingestor.decode(records)
        pipeline = self.ingestor.pipeline
        keys = {event.key for event in result.events}
        for key in sorted(keys - pipeline.keys):
            if key[0] not in self._stored:
                self._stored[key[0]] = self.checkpoints.get(key[0].encode())
            stored = self._stored[key[0]]
            if not stored:
                continue
            for partition, offset in stored["offsets"].items():
                held = (key[0], int(partition))
                self._fed[held] = max(self._fed.get(held, -1), int(offset))
            if key[1] in stored["versions"]:
                pipeline.restore(key, stored["versions"][key[1]])
                logger.info("detector state restored model_id=%s model_version=%s offsets=%s", *key,
                            stored["offsets"])
        fresh = []
        fed = self._fed
        for event, source in zip(result.events, result.sources, strict=True):
            # sources read "topic/partition/offset" (Origin.describe); topic names cannot hold "/".
            _, partition_text, offset_text = source.rsplit("/", 2)
            partition, offset = int(partition_text), int(offset_text)
            self._partition_of[event.model_id] = partition
            if offset > fed.get((event.model_id, partition), -1):
                fresh.append(event)
                fed[(event.model_id, partition)] = offset
        if len(fresh) < len(result.events):
            logger.info("events delivered again stored, not fed to the detectors again count=%d",
                        len(result.events) - len(fresh))
        if fresh:
            try:
                result.findings = pipeline.process(fresh)
            except Exception as exc:  # a stage bug must not kill the stream: the batch is dead-lettered
                logger.exception("pipeline failed events=%d; dead-lettering the batch", len(result.events))
                reason = f"pipeline failed: {exc!r}"[:500]
                by_source = dict(zip(result.sources, result.events, strict=True))
                for raw, origin in records:
                    if origin.describe() in by_source:
                        result.dead_letters.append(dead_letter(raw, origin, reason))
                result.events, result.sources = [], []
                return result
        self._touched |= keys
        return result

    def flush_due(self) -> bool:
        return bool(self.sink.buffered or self._outbox) and (
            time.monotonic() - self._last_flush >= self.settings.kafka.flush_interval_s)

    def checkpoint_due(self) -> bool:
        return bool(self._pending or self._touched) and (
            time.monotonic() - self._last_checkpoint >= self.settings.kafka.checkpoint_interval_s)

    async def tick(self) -> None:
        """The timers' work: flush and checkpoint when due, between batches."""
        if self._lock.locked():
            return  # a batch is being handled, and it ends with the same check
        async with self._lock:
            await self._due()

    async def _due(self, *, rows_full: bool = False) -> None:
        if self.checkpoint_due():
            await self._store(wait=True)
            await self._checkpoint()
        elif rows_full or self.flush_due():
            await self._store(wait=rows_full)

    async def flush(self) -> None:
        """Store, publish, checkpoint and acknowledge everything handled so far."""
        async with self._lock:
            await self._store(wait=True)
            await self._checkpoint()

    async def finish(self, timeout: float = FINISH_TIMEOUT_S) -> None:
        """At shutdown, once the consumer has stopped: write and publish everything handled.

        Nothing is checkpointed or committed here: the events not acknowledged
        yet are read again by the next owner (stored again, fenced from the
        detectors by the state it restores). Gives up after ``timeout``
        seconds (ClickHouse down), leaving the rows to :meth:`close`.
        """
        async def store() -> None:
            async with self._lock:
                await self._store(wait=True)

        try:
            await asyncio.wait_for(store(), timeout)
        except TimeoutError:
            logger.warning("writing at shutdown took over %.0f s; left to the final write buffered_rows=%d",
                           timeout, self.sink.buffered)

    async def _store(self, *, wait: bool = False) -> None:
        """Write the sink on the writer thread, then publish (see :meth:`_write`).

        One write at a time: a new one first waits for the one in flight. With
        ``wait=False`` the next batch is handled while the rows are written;
        a checkpoint, a full buffer and :meth:`flush` wait for the write.
        """
        await self._written()
        outbox, self._outbox = self._outbox, []
        self._last_flush = time.monotonic()
        self._writing = asyncio.ensure_future(self._write(outbox))
        if wait:
            await self._written()

    async def _written(self) -> None:
        """Wait for the write in flight, if any; a failed write raises here, once.

        Shielded: a waiter cancelled (the agent, at shutdown) leaves the write
        running, and :meth:`finish` waits for the same write.
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
                await asyncio.get_running_loop().run_in_executor(self._writer, self.sink.flush)
            fresh = self.sink.drain_new_alerts()
            outbox.extend(self.alert_message(alert, self.settings.kafka.topic_alerts) for alert in fresh)
            outbox.extend(self._observe(fresh))
            if outbox:
                await self.publish(outbox)
        except BaseException:
            self._outbox[:0] = outbox  # the stored alerts' messages go out with the next write
            raise
        self.counts["alerts_published"] += len(fresh)
        if fresh:
            logger.info("alerts published count=%d topic=%s", len(fresh), self.settings.kafka.topic_alerts)

    async def _checkpoint(self) -> None:
        """Detector state into the changelog, then acknowledge and commit the events it covers.

        Called right after :meth:`_store`, under the lock: every event in the
        state has its rows and alerts stored, and none is acknowledged before
        the state holding it is in the changelog.
        """
        pending = [event for event in self._pending if self._owns(event.message)]
        # Faust counts a hole as done: a partition reading one again acknowledges nothing until it has
        # it, or the commit would pass it.
        self._pending = [event for event in pending if (event.message.topic, event.message.partition) in self._reread]
        pending = [event for event in pending if (event.message.topic, event.message.partition) not in self._reread]
        pipeline = self.ingestor.pipeline
        by_model: dict[str, list[StreamKey]] = {}
        for key in self._touched:
            by_model.setdefault(key[0], []).append(key)
        sent = []
        for model_id, keys in by_model.items():
            stored = self._stored.get(model_id) or {"versions": {}, "offsets": {}}
            versions = dict(stored["versions"])
            versions.update({version: pipeline.snapshot((model, version)) for model, version in keys})
            offsets = dict(stored["offsets"])
            offsets.update({str(partition): offset for (model, partition), offset in self._fed.items()
                            if model == model_id})
            state = {"offsets": offsets, "versions": versions}
            self._stored[model_id] = state
            future = self.checkpoints.put(model_id.encode(), state, self._partition_of[model_id])
            if future is not None:
                sent.append(future)
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
        if pending and self.commit is not None:
            await self.commit()

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
        # A partition that comes back resumes from its committed offset: no hole to look for.
        for where in [where for where in self.last_offsets if where[1] not in kept]:
            del self.last_offsets[where]
            self._reread.pop(where, None)
        gone = {model for model, partition in self._partition_of.items() if partition not in kept}
        logger.info("partitions assigned topic=%s partitions=%s models_forgotten=%d", self.settings.kafka.topic_input,
                    sorted(kept), len(gone))
        if not gone:
            return
        pipeline = self.ingestor.pipeline
        for key in [key for key in pipeline.keys if key[0] in gone]:
            pipeline.forget(key)
        self._touched = {key for key in self._touched if key[0] not in gone}
        self._fed = {fed: offset for fed, offset in self._fed.items() if fed[0] not in gone}
        for model in gone:
            del self._partition_of[model]
            self._stored.pop(model, None)
            self.checkpoints.forget(model.encode())
        self._pending = [event for event in self._pending if self._owns(event.message)]

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

    def sample_health(self, highwaters: Mapping[tuple[str, int], int]) -> list[ServiceMetric]:
        """One health sample (buffered into ``service_metrics`` with the next flush)."""
        now_ms = int(time.time() * 1000)
        started, seen = self._sampled
        elapsed = max(time.monotonic() - started, 1e-9)
        self._sampled = (time.monotonic(), self.counts["events"])
        worker = self.worker_id
        samples = [
            ServiceMetric(now_ms, worker, "events_per_s", (self.counts["events"] - seen) / elapsed),
            ServiceMetric(now_ms, worker, "sink_buffered_rows", float(self.sink.buffered)),
            ServiceMetric(now_ms, worker, "sink_retries", float(self.sink.retries)),
            ServiceMetric(now_ms, worker, "dead_letters", float(self.counts["dead_letters"])),
        ]
        for (topic, partition), offset in sorted(self.last_offsets.items()):
            high = highwaters.get((topic, partition))
            if high is not None:
                samples.append(ServiceMetric(now_ms, worker, "consumer_lag", float(max(high - offset - 1, 0)),
                                             topic=topic, partition=partition))
        if self.sink.buffered + len(samples) <= self.sink.max_rows:
            self.sink.add_service_metrics(samples)
        return samples

    def close(self) -> None:
        """Write what is left once (no more retries) and release the writer thread.

        Nothing unacknowledged is lost if this write fails: Kafka still has those events.
        """
        self.sink.close()
        self._writer.shutdown(wait=True, cancel_futures=True)
        try:
            self.sink.flush()
        except StorageError as exc:
            logger.warning("final flush failed buffered_rows=%d error=%s", self.sink.buffered, exc)
        unpublished = self.sink.drain_new_alerts()
        if unpublished:
            logger.warning("alerts stored but not published count=%d topic=%s (the worker stopped before "
                           "publishing them)", len(unpublished), self.settings.kafka.topic_alerts)

    @staticmethod
    def alert_message(alert: Alert, topic: str) -> Message:
        return topic, alert.model_id.encode(), json.dumps(alert.to_json(), sort_keys=True).encode()

    @staticmethod
    def dead_letter_message(letter: DeadLetter, topic: str) -> Message:
        value = {
            "dead_letter_id": letter.dead_letter_id, "reason": letter.reason, "field": letter.field,
            "topic": letter.source, "partition": letter.partition, "offset": letter.offset,
            "raw_bytes": len(letter.raw),
            "raw_preview": letter.raw[:TOPIC_PREVIEW_BYTES].decode("utf-8", "replace"),
        }
        return topic, None, json.dumps(value).encode()
