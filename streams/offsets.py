"""Delivered input offsets: ordering, holes, and reading a hole again.

Faust counts offsets it never delivered as done and commits past them, so a
record the consumer skipped would be lost. :class:`DeliveredOffsets` keeps, per
(topic, partition), the newest offset handled and lets through only the events
up to the first hole; the partition is sought back to the first missing offset
and delivers it all again. A hole that is still there after reading again is
real (transaction markers, compaction) and is accepted.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import Any, Protocol

logger = logging.getLogger(__name__)

__all__ = ["REREAD_RETRY_S", "DeliveredOffsets", "KafkaEvent", "Seek"]

# A partition read again after a hole that still delivers only what came after it is sought again this often.
REREAD_RETRY_S = 2.0
Seek = Callable[[str, int, int], Awaitable[Any]]


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
    """

    def __init__(self) -> None:
        # (topic, partition) -> newest offset handled.
        self.last_offsets: dict[tuple[str, int], int] = {}
        # (topic, partition) -> (first offset missing, first offset seen after it, when sought) while it
        # is read again.
        self._reread: dict[tuple[str, int], tuple[int, int, float]] = {}

    def rereading(self, where: tuple[str, int]) -> bool:
        """Whether ``where`` is reading a hole again (nothing of it may be acknowledged meanwhile)."""
        return where in self._reread

    async def in_order(self, events: Sequence[KafkaEvent], seek: Seek | None) -> list[KafkaEvent]:
        """``events`` up to the first hole in each partition's offsets; the partition reads the hole again.

        An event after a hole is neither handled nor acknowledged: the
        partition is sought back (``seek(topic, partition, offset)``) to the
        first missing offset. Without ``seek`` the hole is logged and accepted.
        """
        kept: list[KafkaEvent] = []
        held: set[tuple[str, int]] = set()
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

    def keep_partitions(self, kept: Iterable[int]) -> None:
        """Forget partitions not in ``kept``: one that comes back resumes from its committed offset, no hole."""
        kept = set(kept)
        for where in [where for where in self.last_offsets if where[1] not in kept]:
            del self.last_offsets[where]
            self._reread.pop(where, None)
