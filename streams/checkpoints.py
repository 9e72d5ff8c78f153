"""Detector state by model: what a checkpoint writes, what a worker restores, and the offset fence.

Each checkpoint carries, per input partition, the newest offset its state
holds. :class:`DetectorCheckpoints` never lets an event at or below the offset
its state (restored or in memory) already holds reach the detectors again:
after a crash or a rebalance Kafka delivers such events again, and they are
stored again but not fed again. The table itself is a :class:`Checkpoints`
(in the worker, the changelog-backed :class:`streams.state.StateTable`).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Iterable, Sequence
from typing import Any, Protocol

from monitor.errors import SnapshotError
from monitor.events import Event
from monitor.pipeline import Pipeline, StreamKey

logger = logging.getLogger(__name__)

__all__ = ["Checkpoints", "DetectorCheckpoints"]


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


class DetectorCheckpoints:
    """The models a worker holds: where each is checkpointed, and the offsets its state holds.

    Parameters
    ----------
    table
        Where checkpoints are read and written.
    """

    def __init__(self, table: Checkpoints) -> None:
        self.table = table
        # model_id -> input partition: where that model's state is checkpointed. One entry per model.
        self.partition_of: dict[str, int] = {}
        # model_id -> the checkpoint last read or written: a checkpoint merges the model's versions
        # not touched since from here, instead of reading the table again.
        self._stored: dict[str, dict[str, Any] | None] = {}
        # (model_id, partition) -> newest offset the in-memory state holds, fed here or restored:
        # an event at or below it is stored again but never fed again.
        self._fed: dict[tuple[str, int], int] = {}

    def restore(self, pipeline: Pipeline, keys: Iterable[StreamKey]) -> None:
        """Restore into ``pipeline`` the checkpointed state of ``keys`` it does not hold."""
        for key in sorted(set(keys) - pipeline.keys):
            if key[0] not in self._stored:
                self._stored[key[0]] = self.table.get(key[0].encode())
            stored = self._stored[key[0]]
            if not stored:
                continue
            for partition, offset in stored["offsets"].items():
                held = (key[0], int(partition))
                self._fed[held] = max(self._fed.get(held, -1), int(offset))
            if key[1] in stored["versions"]:
                try:
                    pipeline.restore(key, stored["versions"][key[1]])
                except SnapshotError as exc:
                    # A checkpoint of an older release (a stage's snapshot format changed) or a damaged
                    # one: the key warms up again from its next events rather than stopping the worker.
                    pipeline.forget(key)
                    logger.warning("detector state not restored model_id=%s model_version=%s: %s; the model "
                                   "version starts afresh (reference and detectors warm up again)", *key, exc)
                    continue
                logger.info("detector state restored model_id=%s model_version=%s offsets=%s", *key,
                            stored["offsets"])

    def fence(self, events: Sequence[Event], sources: Sequence[str]) -> list[Event]:
        """The events the state does not hold yet (to feed), in order; records each model's partition.

        ``sources`` read ``topic/partition/offset`` (:meth:`monitor.ingest.Origin.describe`).
        """
        fresh = []
        fed = self._fed
        for event, source in zip(events, sources, strict=True):
            # topic names cannot hold "/".
            _, partition_text, offset_text = source.rsplit("/", 2)
            partition, offset = int(partition_text), int(offset_text)
            self.partition_of[event.model_id] = partition
            if offset > fed.get((event.model_id, partition), -1):
                fresh.append(event)
                fed[(event.model_id, partition)] = offset
        return fresh

    def put(self, pipeline: Pipeline, touched: Iterable[StreamKey]) -> list[Awaitable[Any]]:
        """Write the state of the models of ``touched``; returns what to wait for until the table has it."""
        by_model: dict[str, list[StreamKey]] = {}
        for key in touched:
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
            future = self.table.put(model_id.encode(), state, self.partition_of[model_id])
            if future is not None:
                sent.append(future)
        return sent

    def moved_away(self, kept: set[int]) -> set[str]:
        """The models whose input partition is not in ``kept``."""
        return {model for model, partition in self.partition_of.items() if partition not in kept}

    def forget(self, gone: set[str]) -> None:
        """Drop the models ``gone`` (their new owner resumes them from the checkpoint)."""
        self._fed = {fed: offset for fed, offset in self._fed.items() if fed[0] not in gone}
        for model in gone:
            del self.partition_of[model]
            self._stored.pop(model, None)
            self.table.forget(model.encode())
