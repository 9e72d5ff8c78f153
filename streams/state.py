"""Detector checkpoints in a Faust table, cut into messages a Kafka broker accepts.

A model's checkpoint holds every stage's snapshot. Most of it is small, but
a motif miner with a full window carries megabytes of encoded count-min
sketches and heavy-hitter tables, more than a broker takes in one message
(Kafka's ``message.max.bytes`` is 1 MiB by default). So each long string of
the snapshot is cut into chunks of at most :data:`CHUNK_CHARS` characters,
stored under keys of their own; the model's key holds the rest (the head),
with ``{"$chunks": [index, ...]}`` where the string was and the SHA-256 of
every chunk.

Every checkpoint is whole: it writes all its chunks, then its head, so the
newest checkpoint never depends on old messages that retention may have
dropped. Chunks alternate between two slots, ``a`` and ``b``: a checkpoint
writes the slot its predecessor did not use, so a crash half-way through
leaves the previous head and its chunks intact. Keys are positional, so a
compacted changelog keeps at most two checkpoints per model. All keys of a
model go to the changelog partition of its input, so the worker that owns
the input recovers them all.

Examples
--------
>>> chunks = []
>>> head = split_chunks({"sketch": "x" * 10, "n": 3}, chunks, min_chars=4, chunk_chars=4)
>>> head["sketch"], chunks
({'$chunks': [0, 1, 2]}, ['xxxx', 'xxxx', 'xx'])
>>> join_chunks(head, chunks.__getitem__) == {"sketch": "x" * 10, "n": 3}
True
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections.abc import Callable
from typing import Any

__all__ = ["CHUNK_CHARS", "CHUNK_SEPARATOR", "HEAD_FORMAT", "MIN_CHUNKED_CHARS", "StateTable", "chunk_digest",
           "chunk_key", "join_chunks", "split_chunks"]

logger = logging.getLogger(__name__)

#: Strings at least this long are stored apart from the head.
MIN_CHUNKED_CHARS = 16 * 1024
#: At most this many characters per chunk: well under a broker's default 1 MiB message.
CHUNK_CHARS = 512 * 1024
HEAD_FORMAT = "chunked_state.v1"
_REF = "$chunks"
#: Between a model_id and a chunk's slot and index in a chunk's key; never in a model_id.
CHUNK_SEPARATOR = b"\x1fchunk\x1f"


def chunk_key(model_id: bytes, slot: str, index: int) -> bytes:
    """The table key of chunk ``index`` of ``model_id``'s checkpoints in ``slot``."""
    return model_id + CHUNK_SEPARATOR + f"{slot}/{index}".encode("ascii")


def chunk_digest(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def split_chunks(value: Any, chunks: list[str], *, min_chars: int = MIN_CHUNKED_CHARS,
                 chunk_chars: int = CHUNK_CHARS) -> Any:
    """A copy of ``value`` with each long string replaced by chunk indices; the chunks go into ``chunks``."""
    if isinstance(value, str):
        if len(value) < min_chars:
            return value
        first = len(chunks)
        chunks.extend(value[start:start + chunk_chars] for start in range(0, len(value), chunk_chars))
        return {_REF: list(range(first, len(chunks)))}
    if isinstance(value, dict):
        if _REF in value:
            raise ValueError(f"snapshot keys must not be {_REF!r}: it marks chunked strings")
        return {key: split_chunks(item, chunks, min_chars=min_chars, chunk_chars=chunk_chars)
                for key, item in value.items()}
    if isinstance(value, list):
        return [split_chunks(item, chunks, min_chars=min_chars, chunk_chars=chunk_chars) for item in value]
    return value


def join_chunks(value: Any, fetch: Callable[[int], str]) -> Any:
    """Undo :func:`split_chunks`; ``fetch`` returns a chunk by index (``KeyError`` if missing)."""
    if isinstance(value, dict):
        if _REF in value:
            return "".join(fetch(index) for index in value[_REF])
        return {key: join_chunks(item, fetch) for key, item in value.items()}
    if isinstance(value, list):
        return [join_chunks(item, fetch) for item in value]
    return value


class StateTable:
    """The detector-state table, written to an explicit changelog partition.

    A batch spans partitions, so there is no single "current event" whose
    partition Faust could use; the worker names the input partition the
    model's events come from, keeping state co-partitioned with its input.

    Parameters
    ----------
    table
        The Faust table (keys bytes, values JSON).
    """

    def __init__(self, table: Any) -> None:
        self.table = table
        # model_id -> the slot its head in the table uses; (model_id, slot) -> chunks written there.
        self._slot: dict[bytes, str] = {}
        self._written: dict[tuple[bytes, str], int] = {}

    def get(self, model_id: bytes) -> dict[str, Any] | None:
        """The model's checkpoint, joined again; ``None`` if there is none or it is incomplete."""
        head = self.table.get(model_id)
        if head is None:
            return None
        name = model_id.decode("utf-8", "replace")
        if not isinstance(head, dict) or head.get("format") != HEAD_FORMAT:
            got = head.get("format") if isinstance(head, dict) else type(head).__name__
            logger.error("checkpoint unreadable model_id=%s format=%r expected=%r; the model starts afresh",
                         name, got, HEAD_FORMAT)
            return None
        slot, digests = head["slot"], head["digests"]

        def fetch(index: int) -> str:
            piece = self.table.get(chunk_key(model_id, slot, index))
            if not isinstance(piece, str) or chunk_digest(piece) != digests[index]:
                raise KeyError(f"{slot}/{index}")
            return piece

        try:
            state = join_chunks(head["body"], fetch)
        except KeyError as missing:
            logger.error("checkpoint incomplete model_id=%s missing_chunk=%s; the model starts afresh", name, missing)
            return None
        self._slot[model_id] = slot
        self._written[(model_id, slot)] = len(digests)
        return state if isinstance(state, dict) else None

    def put(self, model_id: bytes, state: dict[str, Any], partition: int) -> Any:
        """Write the chunks into the free slot, then the head; await the result."""
        slot = "b" if self._slot.get(model_id) == "a" else "a"
        chunks: list[str] = []
        body = split_chunks(state, chunks)
        data = self.table.data  # the local store, written without Faust's implicit changelog write
        sends = []
        for index, piece in enumerate(chunks):
            key = chunk_key(model_id, slot, index)
            data[key] = piece
            sends.append(self.table.send_changelog(partition, key, piece))
        # Chunks a longer checkpoint left in this slot: deleted, so compaction can drop them.
        for index in range(len(chunks), self._written.get((model_id, slot), 0)):
            key = chunk_key(model_id, slot, index)
            data.pop(key, None)
            sends.append(self.table.send_changelog(partition, key, None))
        head = {"format": HEAD_FORMAT, "slot": slot, "digests": [chunk_digest(piece) for piece in chunks],
                "body": body}
        data[model_id] = head
        sends.append(self.table.send_changelog(partition, model_id, head))  # last: the slot is whole
        return self._sent(model_id, slot, len(chunks), sends)

    async def _sent(self, model_id: bytes, slot: str, written: int, sends: list[Any]) -> None:
        await asyncio.gather(*sends)
        self._slot[model_id] = slot  # only once written: a failed put is retried into the same slot
        self._written[(model_id, slot)] = written

    def forget(self, model_id: bytes) -> None:
        """This worker no longer owns the model: what it knew of its slots is stale."""
        self._slot.pop(model_id, None)
        self._written.pop((model_id, "a"), None)
        self._written.pop((model_id, "b"), None)
