"""Chunked checkpoints: what goes to the changelog, in which order, and what comes back.

The table is a stand-in for Faust's (a dict and a list of sent messages); the
real table and changelog are exercised end to end in tests/test_streaming.py.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import numpy as np
import pytest

from streams.state import CHUNK_CHARS, MIN_CHUNKED_CHARS, StateTable, join_chunks, split_chunks


class FaustTableStandIn:
    def __init__(self) -> None:
        self.data: dict[bytes, Any] = {}
        self.sent: list[tuple[int, bytes, Any]] = []

    def get(self, key: bytes) -> Any:
        return self.data.get(key)

    def send_changelog(self, partition: int, key: bytes, value: Any) -> asyncio.Future[None]:
        self.sent.append((partition, key, json.loads(json.dumps(value))))
        future = asyncio.get_running_loop().create_future()
        future.set_result(None)
        return future


def text(rng: np.random.Generator, n: int) -> str:
    return "".join(rng.choice(list("abcdef0123456789"), size=n))


def state_with(*sketches: str) -> dict[str, Any]:
    return {"offsets": {"3": 41}, "versions": {"1.0": {"format": "pipeline_state.v1", "stages": {
        "motifs": {"buckets": [{"sketch": s, "events": 7} for s in sketches]}, "drift": {"n": 1.5}}}}}


def put(table: StateTable, model_id: bytes, state: dict[str, Any]) -> None:
    async def run() -> None:
        await table.put(model_id, state, partition=3)
    asyncio.run(run())


def test_long_strings_are_cut_into_bounded_chunks_and_joined_back() -> None:
    rng = np.random.default_rng(0)
    state = state_with(text(rng, 2 * CHUNK_CHARS + 5), text(rng, MIN_CHUNKED_CHARS - 1))
    chunks: dict[str, str] = {}
    head = split_chunks(state, chunks)
    assert len(chunks) == 3 and max(len(piece) for piece in chunks.values()) == CHUNK_CHARS
    assert len(json.dumps(head)) < MIN_CHUNKED_CHARS + 1000  # the short sketch stays inline
    assert join_chunks(head, chunks.__getitem__) == state


def test_a_checkpoint_writes_only_new_chunks_then_its_head_then_tombstones() -> None:
    rng = np.random.default_rng(1)
    closed, first_open, second_open = (text(rng, MIN_CHUNKED_CHARS * 2) for _ in range(3))
    faust_table = FaustTableStandIn()
    table = StateTable(faust_table)
    put(table, b"m", state_with(closed, first_open))
    assert [key for _, key, _ in faust_table.sent][-1] == b"m"  # chunks first, the head last
    faust_table.sent.clear()

    put(table, b"m", state_with(closed, second_open))
    sent = [(key, value) for _, key, value in faust_table.sent]
    heads = [index for index, (key, _) in enumerate(sent) if key == b"m"]
    assert len(heads) == 1
    written, tombstones = sent[:heads[0]], sent[heads[0] + 1:]
    assert [value for _, value in written] == [second_open]  # the closed bucket's chunk is not sent again
    assert len(tombstones) == 1 and tombstones[0][1] is None
    assert {partition for partition, _, _ in faust_table.sent} == {3}  # co-partitioned with the input
    assert StateTable(faust_table).get(b"m") == state_with(closed, second_open)  # as a restarted worker reads it


def test_a_checkpoint_with_a_missing_chunk_is_not_restored(caplog: pytest.LogCaptureFixture) -> None:
    rng = np.random.default_rng(2)
    faust_table = FaustTableStandIn()
    put(StateTable(faust_table), b"m", state_with(text(rng, MIN_CHUNKED_CHARS)))
    lost = next(key for key in faust_table.data if key != b"m")
    del faust_table.data[lost]
    assert StateTable(faust_table).get(b"m") is None
    assert "checkpoint incomplete model_id=m" in caplog.text
