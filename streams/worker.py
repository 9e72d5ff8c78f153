"""What one streaming worker does with a batch, independent of how Faust wires it.

:class:`StreamWorker` turns a batch of Kafka events into stored rows with the
same :class:`~monitor.ingest.Ingestor` replay uses (decode, validate, run the
pipeline), then decides when to flush the ClickHouse sink. Offsets follow the
data: an event is acknowledged to Faust only after the rows it produced are
in ClickHouse, its new alerts are on the alerts topic and the detector state
that includes it is in the changelog-backed table. A crash therefore replays
events (at least once); deterministic ids make the replay harmless.

Writes run on one dedicated thread: the sink retries a failing ClickHouse with
backoff there while the event loop keeps the Kafka session alive, and the
agent, which awaits the flush, stops taking events: that is the backpressure.

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
from monitor.storage.clickhouse import ClickHouseSink, DeadLetter, ServiceMetric

logger = logging.getLogger(__name__)

__all__ = ["AlertObserver", "Message", "StreamWorker"]

Message = tuple[str, bytes | None, bytes]
# The dead-letter topic carries a short preview; the table keeps more (RAW_PREVIEW_BYTES).
TOPIC_PREVIEW_BYTES = 1024
AlertObserver = Callable[[Sequence[Alert]], Iterable[Message]]
Publish = Callable[[Sequence[Message]], Awaitable[None]]


class Checkpoints(Protocol):
    """Detector state by model_id: ``{model_version: pipeline snapshot}``."""

    def get(self, model_id: bytes) -> dict[str, Any] | None: ...

    def put(self, model_id: bytes, state: dict[str, Any], partition: int) -> Awaitable[Any] | None:
        """Store ``state``; ``partition`` is the input partition the model's events come from."""


class KafkaEvent(Protocol):
    """The part of a Faust event the worker uses."""

    message: Any

    def ack(self) -> bool: ...


class StreamWorker:
    """Decode -> pipeline -> sink for Kafka batches, with checkpoints and health samples.

    Parameters
    ----------
    settings
        The worker's settings (topic names, flush interval, ...).
    ingestor
        Decoder and pipeline, as built for replay.
    sink
        A sink built with ``flush_rows=None``: the worker decides when to flush.
    checkpoints
        Detector state by model_id: the changelog-backed Faust table in
        the worker (:class:`streams.app.StateTable`).
    publish
        Sends messages and waits until the broker has them.
    commit
        Commits acknowledged offsets now. Committing right after each flush
        keeps the checkpointed state and the committed offsets close, so a
        crash replays few events into detectors that already saw them.
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
                 observers: Sequence[AlertObserver] = ()) -> None:
        self.settings = settings
        self.ingestor = ingestor
        self.sink = sink
        self.checkpoints = checkpoints
        self.publish = publish
        self.commit = commit
        self.observers: list[AlertObserver] = list(observers)
        self.worker_id = f"{socket.gethostname()}:{os.getpid()}"
        self._writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="clickhouse-writer")
        self._lock = asyncio.Lock()
        self._pending: list[KafkaEvent] = []
        self._touched: set[StreamKey] = set()
        self._outbox: list[Message] = []
        self._last_flush = time.monotonic()
        self.last_offsets: dict[tuple[str, int], int] = {}
        # model_id -> input partition: where that model's state is checkpointed. One entry per model.
        self._partition_of: dict[str, int] = {}
        # model_id -> offset of the newest event the pipeline has seen (one partition per model):
        # checkpointed with the state, so the state is never fed an event twice.
        self._offset_of: dict[str, int] = {}
        # model_id -> offset a restored checkpoint already covers: replayed events up to it are
        # stored again (idempotent) but not run through the detectors again.
        self._fence: dict[str, int] = {}
        self.counts = {"events": 0, "dead_letters": 0, "alerts_published": 0}
        self._sampled = (time.monotonic(), 0)

    async def handle(self, events: Sequence[KafkaEvent]) -> None:
        """Process one batch taken from the input topic; flush when due."""
        records = []
        for event in events:
            message = event.message
            raw = message.value if isinstance(message.value, bytes) else b""
            records.append((raw, Origin(message.topic, partition=message.partition, offset=message.offset)))
            self.last_offsets[(message.topic, message.partition)] = message.offset
        result = self._run(records)
        incoming = (len(result.events) + len(result.dead_letters) + len(result.findings.metrics)
                    + len(result.findings.alerts))
        if self.sink.buffered and self.sink.buffered + incoming > self.sink.max_rows:
            await self.flush()  # make room first: the sink's bound is never crossed
        self.ingestor.write(result, self.sink)
        self._outbox.extend(self.dead_letter_message(letter, self.settings.topic_dead_letters)
                            for letter in result.dead_letters)
        self.counts["events"] += len(result.events)
        self.counts["dead_letters"] += len(result.dead_letters)
        self._pending.extend(events)
        if self.settings.flush_rows <= self.sink.buffered or self.flush_due():
            await self.flush()

    def _run(self, records: Sequence[tuple[bytes, Origin]]) -> BatchResult:
        # Ingestor.process, with detector state restored for keys this process has not seen yet.
        result = self.ingestor.decode(records)
        pipeline = self.ingestor.pipeline
        keys = {event.key for event in result.events}
        for key in keys - pipeline.keys:
            stored = self.checkpoints.get(key[0].encode())
            if stored and key[1] in stored["versions"]:
                pipeline.restore(key, stored["versions"][key[1]])
                self._fence[key[0]] = max(self._fence.get(key[0], -1), stored["offset"])
                logger.info("detector state restored model_id=%s model_version=%s offset=%d", *key, stored["offset"])
        fresh = []
        for event, source in zip(result.events, result.sources, strict=True):
            # sources read "topic/partition/offset" (Origin.describe); topic names cannot hold "/".
            _, partition, offset_text = source.rsplit("/", 2)
            offset = int(offset_text)
            self._partition_of[event.model_id] = int(partition)
            if offset > self._fence.get(event.model_id, -1):
                fresh.append(event)
                self._offset_of[event.model_id] = max(offset, self._offset_of.get(event.model_id, -1))
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
        return bool(self._pending or self.sink.buffered) and (
            time.monotonic() - self._last_flush >= self.settings.flush_interval_s)

    async def flush(self) -> None:
        """Store, publish, checkpoint, then acknowledge: in that order, so a crash only replays."""
        async with self._lock:
            pending, self._pending = self._pending, []
            loop = asyncio.get_running_loop()
            try:
                if self.sink.buffered:
                    await loop.run_in_executor(self._writer, self.sink.flush)
            except BaseException:
                self._pending[:0] = pending  # not acknowledged: they stay for the next flush
                raise
            self._last_flush = time.monotonic()
            fresh = self.sink.drain_new_alerts()
            outbox, self._outbox = self._outbox, []
            outbox.extend(self.alert_message(alert, self.settings.topic_alerts) for alert in fresh)
            outbox.extend(self._observe(fresh))
            try:
                if outbox:
                    await self.publish(outbox)
            except BaseException:
                self._pending[:0] = pending
                self._outbox[:0] = outbox  # the stored alerts' messages go out with the next flush
                raise
            self.counts["alerts_published"] += len(fresh)
            if fresh:
                logger.info("alerts published count=%d topic=%s", len(fresh), self.settings.topic_alerts)
            await self._checkpoint()
            for event in pending:
                event.ack()
            if pending and self.commit is not None:
                await self.commit()

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

    async def _checkpoint(self) -> None:
        pipeline = self.ingestor.pipeline
        by_model: dict[str, list[StreamKey]] = {}
        for key in self._touched:
            by_model.setdefault(key[0], []).append(key)
        sent = []
        for model_id, keys in by_model.items():
            stored = self.checkpoints.get(model_id.encode()) or {"versions": {}, "offset": -1}
            versions = dict(stored["versions"])
            versions.update({version: pipeline.snapshot((model, version)) for model, version in keys})
            state = {"offset": self._offset_of.get(model_id, stored["offset"]), "versions": versions}
            future = self.checkpoints.put(model_id.encode(), state, self._partition_of[model_id])
            if future is not None:
                sent.append(future)
        self._touched.clear()
        # The state must be in the changelog before the offsets it covers are acknowledged.
        await asyncio.gather(*sent)

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
