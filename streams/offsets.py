"""Delivered input offsets: ordering, holes, and reading a hole again.

Faust counts offsets it never delivered as done and commits past them, so a
record the consumer skipped would be lost. :class:`DeliveredOffsets` keeps, per
(topic, partition), the newest offset handled and lets through only the events
up to the first hole; the partition is sought back to the first missing offset
and delivers it all again. A hole that is still there after reading again is
real (transaction markers, compaction) and is accepted. A partition's first
delivery in this process (at start, or newly assigned) is checked against the
offset committed for it: a first event past that offset is a hole too.

It also keeps, per partition, the offset to commit: one past the newest offset
acknowledged, and the worker commits that itself rather than Faust's own
figure. Faust 0.15 refuses a second ack of one offset, but it records a gap in
the fetched offsets (the fetch jumped past its read offset: a seek, a
rebalance) as an interval that includes the offset delivered after it, and
later adds the interval's offsets to its list of acknowledged offsets without
checking which are already there. Its commit ends at the first repeated
offset, so it advances by one offset per commit interval across the gap: the
pattern of the stall once seen on tansu after a graceful join or leave
(robinhood/faust #559, #625).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import Any, Protocol

logger = logging.getLogger(__name__)

__all__ = ["REREAD_RETRY_S", "Committed", "DeliveredOffsets", "KafkaEvent", "Seek"]

# A partition read again after a hole that still delivers only what came after it is sought again this often.
REREAD_RETRY_S = 2.0
Seek = Callable[[str, int, int], Awaitable[Any]]
#: ``committed(topic, partition)``: the group's committed offset (the next to read) where known, else None.
Committed = Callable[[str, int], "int | None"]


class KafkaEvent(Protocol):
    """The part of a Faust event the worker uses."""

    message: Any

    def ack(self) -> bool: ...


class DeliveredOffsets:
    """Newest offset handled per (topic, partition), and the holes being read again.

    Examples
    --------
    >>> offsets = DeliveredOffsets()
    >>> offsets.last_offsets[("events", 0)] = 4
    >>> offsets.rereading(("events", 0))
    False
    >>> offsets.commit_offsets
    {}
    """

    def __init__(self) -> None:
        # (topic, partition) -> newest offset handled.
        self.last_offsets: dict[tuple[str, int], int] = {}
        # (topic, partition) -> one past the newest offset acknowledged: the offset to commit.
        self.commit_offsets: dict[tuple[str, int], int] = {}
        # (topic, partition) -> (first offset missing, first offset seen after it, when sought) while it
        # is read again.
        self._reread: dict[tuple[str, int], tuple[int, int, float]] = {}

    def rereading(self, where: tuple[str, int]) -> bool:
        """Whether ``where`` is reading a hole again (nothing of it may be acknowledged meanwhile)."""
        return where in self._reread

    async def in_order(self, events: Sequence[KafkaEvent], seek: Seek | None,
                       committed: Committed | None = None) -> list[KafkaEvent]:
        """``events`` up to the first hole in each partition's offsets; the partition reads the hole again.

        An event after a hole is neither handled nor acknowledged: the
        partition is sought back (``seek(topic, partition, offset)``) to the
        first missing offset. Without ``seek`` the hole is logged and accepted.
        A partition with no offset handled yet starts from ``committed`` (its
        committed offset is the next one it must deliver), where that is known.
        """
        kept: list[KafkaEvent] = []
        held: set[tuple[str, int]] = set()
        for event in events:
            message = event.message
            where = (message.topic, message.partition)
            if where in held:
                continue
            last = self.last_offsets.get(where)
            if last is None and committed is not None:
                start = committed(*where)
                if start is not None and start > 0:
                    last = self.last_offsets[where] = start - 1
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

    def acknowledged(self, events: Iterable[KafkaEvent]) -> dict[tuple[str, int], int]:
        """Record ``events`` as acknowledged; return every partition's offset to commit.

        Only events :meth:`in_order` let through may come here, so every offset below a partition's
        figure was acknowledged (or is an accepted hole). An event delivered again after a rebalance,
        below what is already acknowledged, changes nothing. Every partition is returned, not only
        those of ``events``: a commit refused once (a rebalance) goes out again with the next one.
        """
        for event in events:
            message = event.message
            where = (message.topic, message.partition)
            self.commit_offsets[where] = max(self.commit_offsets.get(where, 0), message.offset + 1)
        return dict(self.commit_offsets)

    def keep_partitions(self, kept: Iterable[int]) -> None:
        """Forget partitions not in ``kept``: one that comes back resumes from its committed offset, no hole.

        Its offset to commit is forgotten too: meanwhile another worker may have committed past it.
        """
        kept = set(kept)
        for where in [where for where in self.last_offsets if where[1] not in kept]:
            del self.last_offsets[where]
            self._reread.pop(where, None)
        for where in [where for where in self.commit_offsets if where[1] not in kept]:
            del self.commit_offsets[where]
