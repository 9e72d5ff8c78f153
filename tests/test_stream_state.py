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

from streams.state import CHUNK_CHARS, MIN_CHUNKED_CHARS, StateTable, chunk_key, join_chunks, split_chunks


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
    chunks: list[str] = []
    head = split_chunks(state, chunks)
    assert len(chunks) == 3 and max(len(piece) for piece in chunks) == CHUNK_CHARS
    assert len(json.dumps(head)) < MIN_CHUNKED_CHARS + 1000  # the short sketch stays inline
    assert join_chunks(head, chunks.__getitem__) == state


def test_checkpoints_alternate_slots_and_each_is_whole() -> None:
    rng = np.random.default_rng(1)
    closed, first_open, second_open = (text(rng, MIN_CHUNKED_CHARS * 2) for _ in range(3))
    faust_table = FaustTableStandIn()
    table = StateTable(faust_table)
    put(table, b"m", state_with(closed, first_open, text(rng, MIN_CHUNKED_CHARS)))
    put(table, b"m", state_with(closed, second_open))
    sent = [(key, value) for _, key, value in faust_table.sent]
    heads = [index for index, (key, _) in enumerate(sent) if key == b"m"]
    assert len(heads) == 2 and heads[-1] == len(sent) - 1  # each checkpoint ends with its head
    first, second = sent[:heads[0]], sent[heads[0] + 1:heads[1]]
    assert {key[-3:-1] for key, _ in first} == {b"a/"} and {key[-3:-1] for key, _ in second} == {b"b/"}
    assert [value for _, value in second] == [closed, second_open]  # whole: unchanged chunks sent again
    assert {partition for partition, _, _ in faust_table.sent} == {3}  # co-partitioned with the input
    assert StateTable(faust_table).get(b"m") == state_with(closed, second_open)  # as a restarted worker reads it

    put(table, b"m", state_with(closed))  # back to slot a, one chunk shorter than last time there
    tombstones = [key for _, key, value in faust_table.sent[len(sent):] if value is None]
    assert [key[-3:] for key in tombstones] == [b"a/1", b"a/2"]


def test_a_checkpoint_cut_short_leaves_the_previous_one_whole(caplog: pytest.LogCaptureFixture) -> None:
    rng = np.random.default_rng(2)
    faust_table = FaustTableStandIn()
    table = StateTable(faust_table)
    before = state_with(text(rng, MIN_CHUNKED_CHARS))
    put(table, b"m", before)
    head = faust_table.data[b"m"]
    put(table, b"m", state_with(text(rng, MIN_CHUNKED_CHARS)))
    faust_table.data[b"m"] = head  # the crash came after the new chunks, before the new head
    assert StateTable(faust_table).get(b"m") == before
    faust_table.data[chunk_key(b"m", "a", 0)] = "overwritten"
    assert StateTable(faust_table).get(b"m") is None
    assert "checkpoint incomplete model_id=m missing_chunk='a/0'" in caplog.text


def test_a_checkpoint_of_an_older_release_starts_that_version_afresh(caplog: pytest.LogCaptureFixture) -> None:
    from monitor.events import EventDecoder
    from monitor.registry import build_pipeline
    from monitor.settings import load_settings
    from streams.checkpoints import DetectorCheckpoints
    from tests.conftest import make_event

    settings = load_settings(signature_table=False)
    pipeline = build_pipeline(settings)
    decode = EventDecoder().decode
    pipeline.process([decode(json.dumps(make_event(i, model_id="bot", model_version="1.0"))) for i in range(50)])
    saved = json.loads(json.dumps(pipeline.snapshot(("bot", "1.0"))))
    saved["stages"]["behaviour"]["format"] = "behaviour.v0"  # what an older release wrote

    class Table:
        def get(self, model_id: bytes) -> dict[str, Any] | None:
            return {"offsets": {"3": 49}, "versions": {"1.0": saved}} if model_id == b"bot" else None

    fresh = build_pipeline(settings)
    with caplog.at_level("WARNING", logger="streams.checkpoints"):
        DetectorCheckpoints(Table()).restore(fresh, [("bot", "1.0")])  # type: ignore[arg-type]
    assert ("bot", "1.0") not in fresh.keys
    assert "starts afresh" in caplog.text and "behaviour.v0" in caplog.text
    # The next events are fed from scratch, and the worker goes on.
    fresh.process([decode(json.dumps(make_event(i, model_id="bot", model_version="1.0"))) for i in range(50, 60)])
    assert ("bot", "1.0") in fresh.keys
