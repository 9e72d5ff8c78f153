"""Motif snapshots: closed buckets encoded once, old formats still read, unknown ones refused."""

from __future__ import annotations

import base64
import json
import zlib

import numpy as np
import pytest

from detectors.motifs.count_min import CountMinSketch
from detectors.motifs.heavy_hitters import HeavyHitters
from detectors.motifs.miner import MotifConfig, MotifMiner, tokenize


def _feed(miner: MotifMiner, start: int, count: int) -> list:
    found = []
    for i in range(start, start + count):
        planted = i % 20 == 0
        text = f"question {i % 37} on topic {i % 11}" + (" zorblat quintessence" if planted else "")
        found += miner.update([tokenize(text)], [planted], users=[f"u{i % 9}"], tenants=["t"],
                              event_ids=[f"e{i}"], ts_ms=[i])
    return found


def test_closed_buckets_are_encoded_once_and_restore_resumes_exactly() -> None:
    config = MotifConfig(window_events=400, buckets=4, min_support=5, sketch_width=4096, reference_events=0)
    miner = MotifMiner(config)
    before = _feed(miner, 0, 350)  # online scoring names the trigger within these
    first, second = miner.snapshot(), miner.snapshot()
    closed = len(miner.closed)
    assert closed == 3 and all(a is b for a, b in zip(first["buckets"][:closed], second["buckets"][:closed],
                                                     strict=True))
    assert first["buckets"][-1] is not second["buckets"][-1]  # the open bucket is encoded afresh
    restored = MotifMiner.restore(json.loads(json.dumps(second)))
    resumed, straight = _feed(restored, 350, 450), _feed(miner, 350, 450)
    assert resumed == straight
    assert before + straight == _feed(MotifMiner(config), 0, 800)
    assert any(c.ngram == "zorblat quintessence" for c in before)
    assert json.dumps(restored.snapshot()) == json.dumps(miner.snapshot())


def test_version_one_states_are_still_read() -> None:
    rng = np.random.default_rng(1)
    sketch = CountMinSketch(width=256, depth=2)
    sketch.add(rng.integers(0, 2**63, size=500, dtype=np.uint64))
    old = {"format": "count_min.v1", "width": 256, "depth": 2,
           "table": base64.b64encode(zlib.compress(sketch.table.astype("<i4").tobytes(), 6)).decode("ascii")}
    assert (CountMinSketch.restore(old).table == sketch.table).all()
    for compress in (True, False):
        assert (CountMinSketch.restore(sketch.snapshot(compress=compress)).table == sketch.table).all()
    heavy = HeavyHitters(capacity=4)
    heavy.add(7, "zorblat", "word", user="u", tenant="t", event_id="e1")
    rows = [["7", "zorblat", "word", 1, ["u"], ["t"], ["e1"]]]
    old_heavy = {"format": "heavy_hitters.v1", "capacity": 4, "floor": 0, "distinct": 1, "entries": rows}
    for state in (old_heavy, heavy.snapshot(), heavy.snapshot(compress=True)):
        assert HeavyHitters.restore(state).entries == heavy.entries


def test_unknown_formats_are_refused_with_what_was_expected() -> None:
    with pytest.raises(ValueError, match=r"count_min\.v2.*count_min\.v9"):
        CountMinSketch.restore({"format": "count_min.v9"})
    with pytest.raises(ValueError, match="dtype must be"):
        CountMinSketch.restore({**CountMinSketch(width=4).snapshot(), "dtype": "float64"})
    with pytest.raises(ValueError, match=r"heavy_hitters\.v2.*got None"):
        HeavyHitters.restore({})
    with pytest.raises(ValueError, match="compression must be"):
        HeavyHitters.restore({**HeavyHitters().snapshot(), "compression": "lz4"})


def test_version_two_states_are_read_with_no_unflagged_answers_kept() -> None:
    from detectors.motifs.unflagged import UnflaggedAnswers

    miner = MotifMiner(MotifConfig(window_events=400, buckets=4, min_support=5, sketch_width=4096,
                                   reference_events=0))
    miner.update([tokenize("plain question")], [False], users=["u"], tenants=["t"], event_ids=["e0"], ts_ms=[0],
                 answers=[5])
    state = json.loads(json.dumps(miner.snapshot()))
    assert state["format"] == "motif_miner.v3" and MotifMiner.restore(state)._unflagged.take(5)[0].event_id == "e0"
    old = {**state, "format": "motif_miner.v2"}
    del old["unflagged"]
    assert MotifMiner.restore(old)._unflagged.events == {}
    with pytest.raises(ValueError, match=r"unflagged_answers\.v1"):
        UnflaggedAnswers.restore({**state["unflagged"], "format": "unflagged_answers.v0"})


def test_sketch_counters_widen_before_they_wrap() -> None:
    sketch = CountMinSketch(width=16, depth=2)
    item = np.array([7], dtype=np.uint64)
    sketch.add(np.repeat(item, 65_535))
    assert sketch.table.dtype == np.uint16 and sketch.estimate(item).tolist() == [65_535]
    sketch.add(item)  # one more than 16 bits hold: the table widens first, the count stays exact
    assert sketch.table.dtype == np.int32 and sketch.estimate(item).tolist() == [65_536]
    assert sketch.estimate(item).dtype == np.int32
    restored = CountMinSketch.restore(sketch.snapshot())
    assert restored.table.dtype == np.int32 and (restored.table == sketch.table).all()
    half = CountMinSketch(width=16, depth=2)
    half.add(np.repeat(item, 40_000))
    merged = half.merged([half])
    assert merged.table.dtype == np.int32 and merged.estimate(item).tolist() == [80_000]
