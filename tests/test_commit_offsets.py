"""The worker commits its own figure: Faust's own commit stalls on offsets it counts twice.

Faust 0.15.3's consumer records a gap in the fetched offsets as an interval that includes the
offset delivered after it, and its commit later adds the interval's offsets to the acknowledged
ones without checking which are there already; with those duplicates each commit ends at the
first repeated offset (robinhood/faust #559, #625). Everything here is real Faust bookkeeping on
a Faust app that is not started: only the two calls that would reach the broker (the assignment
and the commit request) answer locally.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import faust
from faust.types import TP
from faust.types.tuples import ConsumerMessage

from monitor.events import EventDecoder
from monitor.ingest import Ingestor
from monitor.registry import build_pipeline
from monitor.settings import Settings
from monitor.storage.sink import ClickHouseSink
from monitor.storage.store import Store
from streams.app import commit_offsets, faust_app
from streams.worker import Message, StreamWorker
from tests.conftest import make_event
from tests.test_stream_worker import DictCheckpoints

TOPIC = "model-io"
TP2 = TP(TOPIC, 2)


@asynccontextmanager
async def consumer_of(settings: Settings) -> AsyncIterator[tuple[faust.App, Any, list[dict[TP, int]]]]:
    """A Faust app's real consumer, acking on the input topic; the commit requests it sends are listed."""
    app = faust_app(settings)
    app.topics.add(app.topic(TOPIC))
    conductor: Any = app.topics
    await conductor._update_indices()  # what the app's start does: the input topic's acks count
    consumer: Any = app.consumer
    sent: list[dict[TP, int]] = []

    async def commit_request(offsets: dict[TP, int]) -> bool:
        sent.append(dict(offsets))
        return True

    consumer.assignment = lambda: {TP2}
    consumer._commit = commit_request
    try:
        yield app, consumer, sent
    finally:
        consumer._thread.thread_loop.close()  # made for the consumer's thread, which never starts here


def events(app: faust.App, offsets: Sequence[int]) -> list[faust.Event]:
    """Faust events of partition 2 with those offsets (new message objects, as a delivery makes)."""
    made = []
    for offset in offsets:
        value = json.dumps(make_event(offset, model_id="support-bot")).encode()
        message = ConsumerMessage(TOPIC, 2, offset, 0.0, 0, None, b"support-bot", value, None, tp=TP2)
        made.append(faust.Event(app, b"support-bot", value, None, message))
    return made


def test_fausts_own_commit_advances_one_offset_per_commit_across_a_gap() -> None:
    async def run() -> list[dict[TP, int]]:
        async with consumer_of(Settings()) as (app, consumer, sent):
            for event in events(app, range(20)):
                event.ack()
            await app.commit({TOPIC})  # 20
            # The fetcher's read offset is 20 and the next record it gets is 30: it records 21..30 as a gap.
            await consumer._add_gap(TP2, 21, 30)
            for event in events(app, range(20, 40)):
                event.ack()
            for _ in range(5):
                await app.commit({TOPIC})
            return sent

    assert [offsets[TP2] for offsets in asyncio.run(run())] == [20, 22, 23, 24, 25, 26]


def test_the_worker_commits_to_the_end_past_gaps_and_events_delivered_again(tmp_path: Path) -> None:
    settings = Settings(store=f"chdb://{tmp_path / 'store'}", flush_rows=1)
    published: list[Message] = []

    async def publish(messages: Sequence[Message]) -> None:
        published.extend(messages)

    async def run(store: Store) -> tuple[list[dict[TP, int]], dict[TP, int]]:
        async with consumer_of(settings) as (app, consumer, sent):
            sink = ClickHouseSink(store, flush_rows=None)
            worker = StreamWorker(settings, Ingestor(EventDecoder(), build_pipeline(settings)), sink,
                                  checkpoints=DictCheckpoints(), publish=publish,
                                  commit=lambda offsets: commit_offsets(consumer, offsets))
            worker.reassigned([(TOPIC, 2)])
            await worker.handle(events(app, range(20)))
            await worker.flush()
            await consumer._add_gap(TP2, 21, 30)
            # A rebalance keeps partition 2 here; Kafka delivers again from 20, new message objects.
            worker.reassigned([(TOPIC, 2)])
            await worker.handle(events(app, range(20, 40)))
            await worker.handle(events(app, range(20, 60)))
            await worker.flush()
            # Faust's own commit, run by its timer, finds nothing past the worker's.
            await app.commit({TOPIC})
            worker.close()
            return sent, dict(consumer._committed_offset)

    with Store(settings.store.dsn) as store:
        store.ensure_schema()
        sent, committed = asyncio.run(run(store))
        _, rows = store.query("SELECT uniqExact(source) FROM events")
    assert [offsets[TP2] for offsets in sent] == [20, 60]
    assert committed[TP2] == 60
    assert rows == [(60,)]


def test_the_worker_waits_for_fausts_own_commit_so_the_group_offset_never_goes_back() -> None:
    async def run() -> tuple[list[dict[TP, int]], int]:
        async with consumer_of(Settings()) as (app, consumer, sent):
            producer: Any = app.producer
            release, flushes = asyncio.Event(), []

            async def flush() -> None:  # Faust flushes the producer before each commit request
                flushes.append(1)
                if len(flushes) == 1:
                    await release.wait()  # the first commit (Faust's timer) is slow to get out

            producer.flush = flush
            for event in events(app, range(20)):
                event.ack()
            faust_own = asyncio.ensure_future(app.commit({TOPIC}))  # Faust's figure: 20
            await asyncio.sleep(0)
            ours = asyncio.ensure_future(commit_offsets(consumer, {(TOPIC, 2): 40}))
            await asyncio.sleep(0.05)
            release.set()
            await asyncio.gather(faust_own, ours)
            return sent, consumer._committed_offset[TP2]

    sent, committed = asyncio.run(run())
    # Faust's 20 went out first; sent after the worker's 40 it would have moved the group back.
    assert [offsets[TP2] for offsets in sent] == [20, 40] and committed == 40
