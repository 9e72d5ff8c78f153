"""DeliveredOffsets alone: which events pass, when a partition is sought back, and what a rebalance forgets."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from types import SimpleNamespace

import pytest

import streams.offsets
from streams.offsets import DeliveredOffsets, KafkaEvent


class EventStandIn:
    def __init__(self, offset: int, partition: int = 0) -> None:
        self.message = SimpleNamespace(topic="model-io", partition=partition, offset=offset)

    def ack(self) -> bool:
        return True


def events(*offsets: int, partition: int = 0) -> list[EventStandIn]:
    return [EventStandIn(offset, partition) for offset in offsets]


class SeekLog(list[tuple[str, int, int]]):
    async def __call__(self, topic: str, partition: int, offset: int) -> None:
        self.append((topic, partition, offset))


def offsets_of(kept: Sequence[KafkaEvent]) -> list[int]:
    return [event.message.offset for event in kept]


def test_events_after_a_hole_are_held_back_and_the_partition_is_sought_to_it(
        caplog: pytest.LogCaptureFixture) -> None:
    delivered, sought = DeliveredOffsets(), SeekLog()
    assert offsets_of(asyncio.run(delivered.in_order(events(0, 1, 2), sought))) == [0, 1, 2]
    with caplog.at_level(logging.WARNING, logger="streams.offsets"):
        kept = asyncio.run(delivered.in_order(events(5, 6) + events(0, partition=1), sought))
    assert offsets_of(kept) == [0]  # the other partition is not held
    assert sought == [("model-io", 0, 3)] and delivered.rereading(("model-io", 0))
    assert "offsets=3..4; reading them again" in caplog.text
    assert delivered.last_offsets == {("model-io", 0): 2, ("model-io", 1): 0}
    # Fetched before the seek: held back again, not sought again before REREAD_RETRY_S.
    assert asyncio.run(delivered.in_order(events(7), sought)) == [] and len(sought) == 1
    assert offsets_of(asyncio.run(delivered.in_order(events(3, 4, 5), sought))) == [3, 4, 5]
    assert not delivered.rereading(("model-io", 0))


def test_a_hole_still_there_when_read_again_is_accepted(caplog: pytest.LogCaptureFixture) -> None:
    delivered, sought = DeliveredOffsets(), SeekLog()
    asyncio.run(delivered.in_order(events(0), sought))
    asyncio.run(delivered.in_order(events(3), sought))
    with caplog.at_level(logging.WARNING, logger="streams.offsets"):
        assert offsets_of(asyncio.run(delivered.in_order(events(3, 4), sought))) == [3, 4]
    assert sought == [("model-io", 0, 1)]
    assert "offsets=1..2, absent when read again (transaction markers or compaction)" in caplog.text


def test_a_partition_still_missing_its_hole_is_sought_again_after_the_retry_interval(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(streams.offsets, "REREAD_RETRY_S", 0.0)
    delivered, sought = DeliveredOffsets(), SeekLog()
    asyncio.run(delivered.in_order(events(0), sought))
    asyncio.run(delivered.in_order(events(2), sought))
    assert asyncio.run(delivered.in_order(events(3), sought)) == []
    assert sought == [("model-io", 0, 1), ("model-io", 0, 1)]


def test_without_seek_a_hole_is_logged_and_passed(caplog: pytest.LogCaptureFixture) -> None:
    delivered = DeliveredOffsets()
    asyncio.run(delivered.in_order(events(0), None))
    with caplog.at_level(logging.WARNING, logger="streams.offsets"):
        assert offsets_of(asyncio.run(delivered.in_order(events(4), None))) == [4]
    assert "offsets=1..3, not read again (no seek)" in caplog.text


def test_a_partition_given_away_forgets_its_offsets_and_its_hole() -> None:
    delivered, sought = DeliveredOffsets(), SeekLog()
    asyncio.run(delivered.in_order(events(0) + events(0, partition=1), sought))
    asyncio.run(delivered.in_order(events(5), sought))
    delivered.keep_partitions({1})
    assert delivered.last_offsets == {("model-io", 1): 0} and not delivered.rereading(("model-io", 0))
    # Coming back, it resumes from its committed offset: no hole to look for.
    assert offsets_of(asyncio.run(delivered.in_order(events(5), sought))) == [5] and len(sought) == 1


def test_the_offset_to_commit_is_one_past_the_newest_acknowledged_and_never_goes_back() -> None:
    delivered = DeliveredOffsets()
    assert delivered.acknowledged(events(0, 1, 2) + events(7, partition=1)) == {("model-io", 0): 3,
                                                                              ("model-io", 1): 8}
    # Delivered again after a rebalance: acknowledged again, the figure stays; every partition is returned
    # so a commit refused once goes out with the next.
    assert delivered.acknowledged(events(1, 2)) == {("model-io", 0): 3, ("model-io", 1): 8}
    delivered.keep_partitions({1})  # partition 0 went elsewhere: its new owner commits past this figure
    assert delivered.acknowledged(events(9, partition=1)) == {("model-io", 1): 10}


def test_a_partitions_first_delivery_past_its_committed_offset_is_a_hole() -> None:
    # A partition newly assigned (or at start) has no offset handled yet: without its committed offset,
    # a first event past it would pass, the worker would commit one past that event, and the skipped
    # records would be lost.
    committed = {("model-io", 0): 40, ("model-io", 1): 7}
    delivered, sought = DeliveredOffsets(), SeekLog()
    kept = asyncio.run(delivered.in_order(events(41, 42) + events(7, 8, partition=1), sought,
                                          lambda topic, partition: committed.get((topic, partition))))
    assert offsets_of(kept) == [7, 8]  # partition 1 starts where it was committed
    assert sought == [("model-io", 0, 40)] and delivered.rereading(("model-io", 0))
    assert offsets_of(asyncio.run(delivered.in_order(events(40, 41, 42), sought))) == [40, 41, 42]
    # No committed offset known (a new group, or 0): the first delivery is taken as the start.
    fresh = DeliveredOffsets()
    assert offsets_of(asyncio.run(fresh.in_order(events(5), SeekLog(), lambda topic, partition: None))) == [5]
