"""Consumer lag from the Fetch high watermark, right on both brokers.

tansu 0.6 answers ListOffsets (Faust's ``highwaters()``) with the first offset of the newest batch + 1,
not the end of the partition (16 for the 20 records in 4 batches below); every broker puts the true
high watermark in its Fetch responses, which :func:`streams.app.fetched_highwaters` reads.
"""

from __future__ import annotations

import asyncio

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.structs import TopicPartition

from streams.app import fetched_highwaters
from tests.streaming_support import Topics


async def _lag_after(bootstrap: str, topic: str, batches: int, per_batch: int,
                     consume: int) -> dict[tuple[str, int], int]:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, enable_idempotence=False, linger_ms=0)
    await producer.start()
    try:
        for b in range(batches):  # several batches: the newest batch's first offset is not the end
            for i in range(per_batch):
                await producer.send(topic, b"%d-%d" % (b, i), partition=0)
            await producer.flush()
    finally:
        await producer.stop()
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, auto_offset_reset="earliest",
                                max_poll_records=consume)
    await consumer.start()
    try:
        tp = TopicPartition(topic, 0)
        consumer.assign([tp, TopicPartition(topic, 1)])
        got = 0
        deadline = asyncio.get_running_loop().time() + 20
        while got < consume and asyncio.get_running_loop().time() < deadline:
            records = await consumer.getmany(tp, timeout_ms=500, max_records=consume - got)
            got += sum(len(r) for r in records.values())
        assert got == consume
        return fetched_highwaters(consumer, [(topic, 0), (topic, 1), ("not-assigned", 0)])
    finally:
        await consumer.stop()


def test_the_high_watermark_is_the_partition_end_on_every_broker(kafka: Topics) -> None:
    topic = kafka.input
    highwaters = asyncio.run(_lag_after(kafka.bootstrap, topic, batches=4, per_batch=5, consume=7))
    # 20 records in partition 0 whatever was consumed; partition 1 never fetched has no figure yet
    # (or its true end, 0, once fetched); a partition not assigned here has none.
    assert highwaters[(topic, 0)] == 20
    assert highwaters.get((topic, 1), 0) == 0
    assert ("not-assigned", 0) not in highwaters


def test_the_suites_end_offsets_are_the_partition_ends_on_every_broker(kafka: Topics) -> None:
    # What every streaming test waits on (streams.testing.wait_committed): ListOffsets alone says 16 on tansu.
    from streams.testing import end_offsets

    asyncio.run(_lag_after(kafka.bootstrap, kafka.input, batches=4, per_batch=5, consume=1))
    assert end_offsets(kafka.bootstrap, kafka.input) == {0: 20, 1: 0, 2: 0, 3: 0}
