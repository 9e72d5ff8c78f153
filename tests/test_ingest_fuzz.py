"""Fuzzing the decoder and the replay path: every record is stored or dead-lettered, never lost (issue 14).

One real chdb store is reused across examples; each example replays its own file, so its rows are
told apart by source.
"""

from __future__ import annotations

import itertools
import json
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import hypothesis.strategies as st
import pytest
from hypothesis import HealthCheck, given, settings

from monitor.errors import EventError
from monitor.events import EventDecoder, Limits
from monitor.ingest import Ingestor
from monitor.registry import build_pipeline
from monitor.replay import replay
from monitor.settings import load_settings
from monitor.storage.sink import ClickHouseSink
from monitor.storage.store import Store
from tests.conftest import make_event

LIMITS = Limits(max_text_chars=4096, max_vector_bytes=256, max_record_bytes=16_384)
FIELDS = ["ts", "model_id", "model_version", "input", "output", "event_id", "tenant_id", "user_id",
          "session_id", "system_prompt", "output_logprobs", "tool_calls", "input_tokens", "output_tokens",
          "latency_ms", "embedding", "activations", "labels"]
odd_text = st.text(st.characters(codec="utf-8"), max_size=40) | st.sampled_from(
    ["", " ", "\u202e\u0000", "\ufeff", "\x1b]8;;x\x07", "🙂" * 30, "a" * 5000, "\ud7ff\ue000"])
huge = st.sampled_from([2**31, 2**32 - 1, 2**32, 2**63, 2**64, -(2**63) - 1, 10**30, 1.7976931348623157e308,
                        -1e-320, 5e-324, 0, -1, 10_413_791_999_999, 10_413_792_000_000, 99_999_999_999])
scalars = st.none() | st.booleans() | huge | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | odd_text
json_values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=4)
                           | st.dictionaries(odd_text, inner, max_size=4), max_leaves=12)
mutations = st.dictionaries(st.sampled_from(FIELDS), json_values, max_size=4)


@st.composite
def lines(draw: Any) -> bytes:
    """One line: a valid event, a mutated one, junk JSON, or bytes."""
    kind = draw(st.sampled_from(["valid", "mutated", "dropped", "json", "bytes", "cut"]))
    event = make_event(draw(st.integers(0, 50)))
    if kind == "valid":
        return json.dumps(event).encode()
    if kind == "mutated":
        return json.dumps({**event, **draw(mutations)}).encode()
    if kind == "dropped":
        event.pop(draw(st.sampled_from(sorted(event))))
        return json.dumps(event).encode()
    if kind == "json":
        return json.dumps(draw(json_values)).encode()
    if kind == "cut":
        text = json.dumps(event).encode()
        return text[: draw(st.integers(0, len(text)))]
    return draw(st.binary(max_size=64)).replace(b"\n", b" ")


_FILE_NUMBERS = itertools.count()


@pytest.fixture(scope="module")
def store() -> Iterator[tuple[Store, Path, Ingestor]]:
    """One store and one production pipeline for every example (building either per example is slow)."""
    with tempfile.TemporaryDirectory(prefix="fuzz-") as folder:
        with Store(f"chdb://{folder}/store") as opened:
            opened.ensure_schema()
            pipeline = build_pipeline(load_settings(store=f"chdb://{folder}/store"))
            yield opened, Path(folder), Ingestor(EventDecoder(LIMITS), pipeline)


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                               HealthCheck.too_slow, HealthCheck.data_too_large])
@given(records=st.lists(lines(), min_size=1, max_size=30))
def test_every_record_is_stored_or_dead_lettered(store: tuple[Store, Path, Ingestor], records: list[bytes]) -> None:
    opened, folder, ingestor = store
    path = folder / f"{next(_FILE_NUMBERS)}.jsonl"
    path.write_bytes(b"\n".join(records) + b"\n")
    decoder = ingestor.decoder
    accepted, hashes = [], {}
    for raw in records:
        if raw.strip():
            try:
                event = decoder.decode(raw)
            except EventError as exc:
                assert exc.reason
                continue
            if hashes.setdefault(event.id, event.content_hash) == event.content_hash:  # else a collision
                accepted.append(event)
    expected_lines = sum(1 for raw in records if raw.strip())
    sink = ClickHouseSink(opened)

    summary = replay([str(path)], ingestor, sink, batch_size=64)  # one batch: collisions as above

    assert summary.events + summary.rejected == expected_lines
    assert summary.events == len(accepted) == sink.written["events"]
    _, dead = opened.query(f"SELECT count() FROM dead_letters WHERE source = '{path}'")
    assert dead == [(summary.rejected,)]
    keys = {(e.model_id, e.model_version, e.ts_ms, e.id) for e in accepted}
    # By id, not by source: a record stored by an earlier example is not written again.
    _, stored = opened.query("SELECT count() FROM (SELECT DISTINCT model_id, model_version, ts, event_id "
                             "FROM events WHERE event_id IN {ids:Array(String)})", final=False,
                             parameters={"ids": sorted({e.id for e in accepted})})
    assert stored == [(len(keys),)]
