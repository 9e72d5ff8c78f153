"""The Faust app factory: topics, the detector-state table, the agent and timers.

Nothing happens at import time; :func:`create_app` builds everything from one
:class:`~monitor.settings.Settings`. Topics:

- ``model-io`` (input), keyed by model_id so one model stays on one partition;
- ``driftwatch-alerts``: every new alert and every update of one, as JSON, keyed by alert_id (the dedup
  key: consumers keep the highest ``revision`` per key; the topic may be compacted);
- ``driftwatch-dead-letters``: rejected records with reason, topic, partition, offset;
- ``driftwatch-rollback``: rollback decisions (published by alert observers), keyed by decision_id;
- ``<app_id>-detector_state.v3-changelog``: the detector-state table's changelog.

The one agent takes batches with ``noack_take`` and hands them to
:class:`~streams.worker.StreamWorker`, which acknowledges each event only
after its rows are stored and its detector state checkpointed (see there).
A rebalance tells the worker which input partitions it keeps
(:meth:`~streams.worker.StreamWorker.reassigned`).
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, cast

import faust
from faust.transport.drivers import aiokafka as faust_aiokafka
from faust.types import TP

from monitor.alerts import Alert
from monitor.errors import ConfigError
from monitor.events import EventDecoder
from monitor.ingest import Ingestor
from monitor.policy.engine import SocEngine, engine_from_settings
from monitor.registry import build_pipeline
from monitor.settings import Settings
from monitor.storage.rows import Backoff
from monitor.storage.sink import ClickHouseSink
from monitor.storage.store import Store
from streams.detection import ProcessPipeline
from streams.state import StateTable
from streams.worker import AlertObserver, Message, StreamWorker

logger = logging.getLogger(__name__)

__all__ = ["STATE_TABLE", "Service", "commit_offsets", "committed_offset", "create_app", "faust_app", "kafka_transport",
           "required_topics"]

# Versioned: a new snapshot layout gets a new table (and changelog topic), never a reused one.
STATE_TABLE = "detector_state.v3"


def required_topics(settings: Settings) -> list[tuple[str, int]]:
    """Every topic the worker reads or writes, with its partitions (create these where declaring is off)."""
    return [
        (settings.kafka.topic_input, settings.kafka.topic_partitions),
        (settings.kafka.topic_alerts, 1),
        (settings.kafka.topic_dead_letters, 1),
        (settings.kafka.topic_rollback, 1),
        (f"{settings.kafka.app_id}-{STATE_TABLE}-changelog", settings.kafka.topic_partitions),
        (f"{settings.kafka.app_id}-__assignor-__leader", 1),
    ]


def _credentials(settings: Settings) -> Any:
    protocol = settings.kafka.security_protocol
    context = None
    if protocol in ("SSL", "SASL_SSL"):
        context = ssl.create_default_context(purpose=ssl.Purpose.SERVER_AUTH,
                                             cafile=str(settings.kafka.ssl_cafile) if settings.kafka.ssl_cafile
                                             else None)
        if settings.kafka.ssl_certfile:
            context.load_cert_chain(str(settings.kafka.ssl_certfile),
                                    keyfile=str(settings.kafka.ssl_keyfile) if settings.kafka.ssl_keyfile else None)
    if protocol.startswith("SASL"):
        password = settings.kafka.sasl_password.get_secret_value() if settings.kafka.sasl_password else None
        return faust.SASLCredentials(username=settings.kafka.sasl_username, password=password,
                                     ssl_context=context, mechanism=settings.kafka.sasl_mechanism)
    return context


def kafka_transport(app: faust.App, fetch_max_wait_ms: int) -> Any:
    """Faust's aiokafka transport with the consumer's fetch wait set (Faust fixes it at 1500 ms)."""
    class ConsumerThread(faust_aiokafka.AIOKafkaConsumerThread):
        def _create_worker_consumer(self, transport: Any) -> Any:
            consumer = super()._create_worker_consumer(transport)
            # Read by AIOKafkaConsumer.start() when it builds its fetcher; aiokafka has no other way in here.
            consumer._fetch_max_wait_ms = fetch_max_wait_ms
            return consumer

    class WaitingConsumer(faust_aiokafka.Consumer):
        def _new_consumer_thread(self) -> ConsumerThread:
            return ConsumerThread(self, loop=self.loop, beacon=self.beacon)

    class Transport(faust_aiokafka.Transport):
        Consumer = WaitingConsumer

    return Transport(app.conf.broker_consumer, app)


class Service:
    """The app and what it owns, so the runner can close them after the worker stops."""

    def __init__(self, app: faust.App, worker: StreamWorker, store: Store) -> None:
        self.app = app
        self.worker = worker
        self.store = store

    def close(self) -> None:
        """Close the worker, then the store; a final write that failed is raised once both are closed."""
        try:
            self.worker.close()
        finally:
            self.store.close()
        logger.info("worker closed written=%s", self.worker.sink.written)


def soc_observer(engine: SocEngine, store: Store, topic: str) -> AlertObserver:
    """An alert observer applying the SOC policy to each flush's new alerts.

    Incidents, suppressions and rollback decisions are written to ClickHouse by
    :meth:`SocEngine.handle`; each decision is also published to ``topic``
    (``driftwatch-rollback``), keyed by its decision_id (a content hash: a decision published twice,
    by a retry or by two workers after a rebalance, has one key), for incident playbooks.
    """
    def observe(alerts: Sequence[Alert]) -> list[Message]:
        outcome = engine.handle(store, alerts)
        return [(topic, decision.decision_id.encode(), decision.to_bytes()) for decision in outcome.decisions]

    return observe


def faust_app(settings: Settings) -> faust.App:
    """The Faust app the worker runs on: brokers, credentials, timeouts, serializers and fetch wait.

    No topics, tables or agents yet (:func:`create_app` adds them; so does the
    benchmark's Faust-only baseline, which must run on the same configuration).
    """
    brokers = [f"kafka://{host.strip()}" for host in settings.kafka.bootstrap.split(",") if host.strip()]
    fetch_bytes = settings.ingest.max_record_bytes + (1 << 20)
    app = faust.App(
        settings.kafka.app_id,
        broker=brokers,
        broker_credentials=_credentials(settings),
        broker_session_timeout=settings.kafka.session_timeout_s,
        broker_heartbeat_interval=min(3.0, settings.kafka.session_timeout_s / 3),
        processing_guarantee=settings.kafka.processing_guarantee,
        topic_allow_declare=settings.kafka.topic_allow_declare,
        topic_partitions=settings.kafka.topic_partitions,
        topic_replication_factor=settings.kafka.topic_replicas,
        consumer_auto_offset_reset="earliest",
        consumer_max_fetch_size=fetch_bytes,
        producer_max_request_size=fetch_bytes,
        producer_compression_type=None if settings.kafka.compression == "none" else settings.kafka.compression,
        # Faust waits 20 min for a publish by default; a lost one must fail soon and be retried (streams.writer).
        producer_request_timeout=30.0,
        web_enabled=settings.kafka.web_enabled,
        web_bind=settings.kafka.web_bind,
        web_port=settings.kafka.web_port,
        datadir=str(settings.kafka.worker_dir),
        store="memory://",
        key_serializer="raw",
        value_serializer="raw",
        autodiscover=False,
        # Events are acknowledged only once stored; on shutdown the unacknowledged ones are
        # simply read again by the next worker, so Faust must not wait for them (it would wait forever).
        stream_wait_empty=False,
    )
    app.transport = kafka_transport(app, settings.kafka.fetch_max_wait_ms)
    return app


def create_app(settings: Settings, *, observers: Sequence[AlertObserver] = (), detectors: bool = True) -> Service:
    """Build the Faust app, the store and the worker for ``settings``.

    The SOC policy (:func:`soc_observer`) always observes the new alerts first;
    ``observers`` run after it. ``detectors=False`` runs the pipeline without
    stages: events are stored and bad records dead-lettered, nothing is detected.
    """
    if settings.kafka.sink_max_rows < settings.store.flush_rows + settings.ingest.batch_size:
        raise ConfigError(f"sink_max_rows must be >= flush_rows + batch_size ({settings.store.flush_rows} + "
                          f"{settings.ingest.batch_size}); got {settings.kafka.sink_max_rows}")
    app = faust_app(settings)
    topics = {name: app.topic(name, key_serializer="raw", value_serializer="raw")
              for name, _ in required_topics(settings)[:4]}
    source = app.topic(settings.kafka.topic_input, key_serializer="raw", value_serializer="raw",
                       partitions=settings.kafka.topic_partitions)
    # Keyed by model_id (bytes) like the input topic; see streams.state for the layout and partition.
    state = app.Table(STATE_TABLE, default=None, partitions=settings.kafka.topic_partitions,
                      key_type=bytes, value_type=None,
                      help="Detector state per model_id: offsets it covers and a snapshot per model_version")

    async def publish(messages: Sequence[Message]) -> None:
        futures = [await topics.get(topic, app.topic(topic)).send(key=key, value=value)
                   for topic, key, value in messages]
        await asyncio.gather(*futures)

    store = Store(settings.store.dsn, outage_file=settings.kafka.store_outage_file)
    store.ensure_schema()
    sink = ClickHouseSink(store, store_text=settings.store.text, flush_rows=None,
                          max_rows=settings.kafka.sink_max_rows,
                          retry=Backoff(settings.kafka.sink_retry_initial_s, settings.kafka.sink_retry_max_s))
    in_child = detectors and settings.kafka.detect_process
    if in_child and settings.store.dsn.startswith("chdb:"):
        logger.warning("DETECT_PROCESS with an embedded chdb store: the detection process cannot open the store, "
                       "so it reads no signatures from the signatures table (file signatures only)")
    pipeline = ProcessPipeline(settings, detectors=detectors) if in_child else build_pipeline(settings,
                                                                                              detectors=detectors)
    ingestor = Ingestor(EventDecoder(settings.ingest.limits), pipeline)
    policy = soc_observer(engine_from_settings(settings), store, settings.kafka.topic_rollback)
    worker = StreamWorker(settings, ingestor, sink, checkpoints=StateTable(state), publish=publish,
                          commit=lambda offsets: commit_offsets(app.consumer, offsets),
                          seek=lambda topic, partition, offset: app.consumer.seek(TP(topic, partition), offset),
                          committed=lambda topic, partition: committed_offset(app.consumer, topic, partition),
                          observers=[policy, *observers])

    @app.agent(source, name="driftwatch.ingest")
    async def ingest(stream: faust.StreamT) -> None:
        # noack_take: we acknowledge each event ourselves, once its rows are stored.
        async for events in cast(faust.Stream, stream).noack_take(settings.ingest.batch_size,
                                                                  within=settings.kafka.stream_within_s):
            await worker.handle(events)

    async def on_assigned(sender: Any, /, *args: Any, signal: Any, **kwargs: Any) -> None:
        (assigned,) = args  # the signal sends (app, the new assignment: a set of TP)
        worker.reassigned((tp.topic, tp.partition) for tp in assigned)

    app.on_partitions_assigned.connect(on_assigned)

    async def on_shutdown(sender: Any, /, *args: Any, **kwargs: Any) -> None:
        # Sent once the consumer has stopped and before the producer's last flush: what was
        # handled is written, and its alerts published, while the producer still runs.
        try:
            await worker.finish()
        except Exception:
            logger.exception("writing the last batches at shutdown failed; Service.close retries the write")

    app.on_before_shutdown.connect(on_shutdown)

    # Both clocks between batches; the finer one decides how late a due flush can be.
    @app.timer(min(settings.kafka.flush_interval_s, settings.kafka.checkpoint_interval_s), name="driftwatch.flush")
    async def flush_idle() -> None:
        # A timer that raises crashes the whole Faust app; a flush that raises is retried next tick.
        try:
            await worker.tick()
        except Exception:
            logger.exception("idle flush failed; retrying at the next tick")

    @app.timer(settings.kafka.health_interval_s, name="driftwatch.health")
    async def health() -> None:
        try:
            worker.sample_health(fetched_highwaters(app.consumer, worker.last_offsets))
        except Exception:  # health must never take the worker down
            logger.exception("health sample failed")

    return Service(app, worker, store)


async def commit_offsets(consumer: Any, offsets: Mapping[tuple[str, int], int]) -> bool:
    """Commit ``offsets`` (the next offset to read, per (topic, partition)) through Faust's consumer.

    The worker's own figure, not the one Faust derives from its acknowledged offsets (see
    :mod:`streams.offsets`). Through ``Consumer._commit_offsets``, the step Faust's own commit ends
    in: partitions no longer assigned are dropped, the producer is flushed first, a transaction is
    committed under exactly-once, and Faust's committed offsets are updated, so its own periodic
    commit never goes back below these. Offsets not past the one Faust knows as committed (its own
    commit, or the group's at assignment) are not sent. One commit at a time, by Faust's own protocol
    (``_commit_fut``): a commit of Faust's older figure finishing after this one would move the
    group's offsets back, and an idle partition would keep that lag. Returns whether anything was
    committed.
    """
    while (running := consumer._commit_fut) is not None and not running.done():  # Faust's own (its timer)
        await consumer.maybe_wait_for_commit_to_finish()
    due = {}
    for (topic, partition), offset in offsets.items():
        tp = TP(topic, partition)
        committed = consumer._committed_offset.get(tp)
        if committed is None or offset > committed:
            due[tp] = offset
    if not due:
        return False
    consumer._commit_fut = asyncio.Future()
    try:
        return bool(await consumer._commit_offsets(due))
    finally:
        done, consumer._commit_fut = consumer._commit_fut, None
        if not done.done():
            done.set_result(None)  # Faust's commits waiting on this one go on (and find nothing to do)


def committed_offset(consumer: Any, topic: str, partition: int) -> int | None:
    """The group's committed offset (the next to read) as Faust's consumer knows it; None where it knows none.

    Faust reads it from the group when a partition is assigned (its seek to the committed offsets,
    before any record of the partition is delivered) and keeps it with every commit.
    """
    offset = consumer._committed_offset.get(TP(topic, partition))
    return int(offset) if offset is not None else None


def fetched_highwaters(consumer: Any, partitions: Iterable[tuple[str, int]]) -> dict[tuple[str, int], int]:
    """Each partition's high watermark from the consumer's last Fetch response, where it has one.

    Not ListOffsets (Faust's ``highwaters()``): some Kafka-compatible brokers (tansu 0.6) answer it
    with the first offset of the newest batch + 1, which is not the end of the partition, while every
    broker puts the true high watermark in its Fetch responses. No broker round trip either: a slow
    broker cannot delay the sample. A partition not fetched yet, or no longer assigned after a
    rebalance, has no figure.
    """
    found = {}
    for topic, partition in partitions:
        try:
            high = consumer.highwater(TP(topic, partition))
        except (AssertionError, KeyError):  # aiokafka asserts the partition is assigned
            continue
        if high is not None:
            found[(topic, partition)] = int(high)
    return found
