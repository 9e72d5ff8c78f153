"""Detector checkpoints in a Faust table, cut into messages a Kafka broker accepts.

A model's checkpoint holds every stage's snapshot. Most of it is small, but
a motif miner with a full window carries megabytes of encoded count-min
sketches and heavy-hitter tables, more than a broker takes in one message
(Kafka's ``message.max.bytes`` is 1 MiB by default). So each long string of
the snapshot is cut into chunks of at most :data:`CHUNK_CHARS` characters,
stored under keys of their own and named by their SHA-256; the model's key
holds the rest, with ``{"$chunks": [digest, ...]}`` where the string was.

A chunk is written once and shared by every checkpoint that holds the same
text: the sketches of closed motif buckets never change, so a checkpoint
writes only what changed since the last one. Once a new head is in the
changelog, the chunks only older heads used are deleted (tombstones, after
the head in the same partition). All keys of a model go to the changelog
partition of its input, so the worker that owns the input recovers them all.

Examples
--------
>>> chunks = {}
>>> head = split_chunks({"sketch": "x" * 10, "n": 3}, chunks, min_chars=4, chunk_chars=4)
>>> head["sketch"]["$chunks"] == [chunk_digest("xxxx"), chunk_digest("xxxx"), chunk_digest("xx")]
True
>>> join_chunks(head, chunks.__getitem__) == {"sketch": "x" * 10, "n": 3}
True
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections.abc import Callable
from typing import Any

__all__ = ["CHUNK_CHARS", "MIN_CHUNKED_CHARS", "StateTable", "chunk_digest", "join_chunks", "split_chunks"]

logger = logging.getLogger(__name__)

#: Strings at least this long are stored apart from the head.
MIN_CHUNKED_CHARS = 16 * 1024
#: At most this many characters per chunk: well under a broker's default 1 MiB message.
CHUNK_CHARS = 512 * 1024
_REF = "$chunks"
_SEPARATOR = b"\x1fchunk\x1f"


def chunk_digest(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def split_chunks(value: Any, chunks: dict[str, str], *, min_chars: int = MIN_CHUNKED_CHARS,
                 chunk_chars: int = CHUNK_CHARS) -> Any:
    """A copy of ``value`` with each long string replaced by a reference; the chunks go into ``chunks``."""
    if isinstance(value, str):
        if len(value) < min_chars:
            return value
        digests = []
        for start in range(0, len(value), chunk_chars):
            piece = value[start:start + chunk_chars]
            digest = chunk_digest(piece)
            chunks[digest] = piece
            digests.append(digest)
        return {_REF: digests}
    if isinstance(value, dict):
        if _REF in value:
            raise ValueError(f"snapshot keys must not be {_REF!r}: it marks chunked strings")
        return {key: split_chunks(item, chunks, min_chars=min_chars, chunk_chars=chunk_chars)
                for key, item in value.items()}
    if isinstance(value, list):
        return [split_chunks(item, chunks, min_chars=min_chars, chunk_chars=chunk_chars) for item in value]
    return value


def join_chunks(value: Any, fetch: Callable[[str], str]) -> Any:
    """Undo :func:`split_chunks`; ``fetch`` returns a chunk by digest (``KeyError`` if missing)."""
    if isinstance(value, dict):
        if _REF in value:
            return "".join(fetch(digest) for digest in value[_REF])
        return {key: join_chunks(item, fetch) for key, item in value.items()}
    if isinstance(value, list):
        return [join_chunks(item, fetch) for item in value]
    return value


def _references(value: Any) -> set[str]:
    if isinstance(value, dict):
        if _REF in value:
            return set(value[_REF])
        return set().union(*(_references(item) for item in value.values()))
    if isinstance(value, list):
        return set().union(*(_references(item) for item in value))
    return set()


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
        # model_id -> digests of the chunks its head in the table refers to.
        self._chunks_of: dict[bytes, set[str]] = {}

    @staticmethod
    def _chunk_key(model_id: bytes, digest: str) -> bytes:
        return model_id + _SEPARATOR + digest.encode("ascii")

    def get(self, model_id: bytes) -> dict[str, Any] | None:
        """The model's checkpoint, joined again; ``None`` if there is none or a chunk is missing."""
        head = self.table.get(model_id)
        if head is None:
            return None

        def fetch(digest: str) -> str:
            piece = self.table.get(self._chunk_key(model_id, digest))
            if piece is None:
                raise KeyError(digest)
            return str(piece)

        try:
            state = join_chunks(head, fetch)
        except KeyError as missing:
            logger.error("checkpoint incomplete model_id=%s missing_chunk=%s; the model starts afresh",
                         model_id.decode("utf-8", "replace"), missing)
            return None
        self._chunks_of[model_id] = _references(head)
        return state if isinstance(state, dict) else None

    def put(self, model_id: bytes, state: dict[str, Any], partition: int) -> Any:
        """Write new chunks, then the head, then tombstones for chunks no head needs; await the result."""
        chunks: dict[str, str] = {}
        head = split_chunks(state, chunks)
        old = self._chunks_of.get(model_id, set())
        sends = []
        data = self.table.data  # the local store, written without Faust's implicit changelog write
        for digest in chunks.keys() - old:
            key = self._chunk_key(model_id, digest)
            data[key] = chunks[digest]
            sends.append(self.table.send_changelog(partition, key, chunks[digest]))
        data[model_id] = head
        sends.append(self.table.send_changelog(partition, model_id, head))
        for digest in old - chunks.keys():
            key = self._chunk_key(model_id, digest)
            data.pop(key, None)
            sends.append(self.table.send_changelog(partition, key, None))
        return self._sent(model_id, set(chunks), sends)

    async def _sent(self, model_id: bytes, chunks: set[str], sends: list[Any]) -> None:
        await asyncio.gather(*sends)
        self._chunks_of[model_id] = chunks  # only once written: a failed put is retried in full

    def forget(self, model_id: bytes) -> None:
        """This worker no longer owns the model: what it knew of its chunks is stale."""
        self._chunks_of.pop(model_id, None)
