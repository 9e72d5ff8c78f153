"""Validation matches storage: every bound the decoder enforces is its column's range (issue 14, items 2, 5, 9)."""

from __future__ import annotations

import json
from pathlib import Path

import msgspec
import pytest

from monitor.column_types import ColumnRange, column_range
from monitor.errors import DecodeError, ValidationError
from monitor.events import EARLIEST_TS_MS, STORED_AS, TS_RANGE_MS, Event, EventDecoder, Limits
from monitor.ingest import Ingestor, Origin
from monitor.pipeline import Pipeline
from monitor.storage.sink import ClickHouseSink
from monitor.storage.store import Store
from monitor.storage.tables import TABLES
from tests.conftest import make_event

DECODER = EventDecoder()
EVENTS_COLUMNS = {column.name: column.type for column in TABLES["events"].columns}
UINT32_MAX = (1 << 32) - 1
TS_MAX = 10_413_791_999_999  # 2299-12-31T23:59:59.999Z


def _decoder_bound(field: str) -> ColumnRange:
    """The bound the decoder enforces on ``field``, read from the compiled Event type."""
    if field == "ts":
        return TS_RANGE_MS
    if field in ("input", "output"):  # stored as a character count
        return ColumnRange(0, Limits().max_text_chars)
    info = next(f for f in msgspec.inspect.type_info(Event).fields if f.name == field)  # type: ignore[attr-defined]
    number = next(t for t in info.type.types if not isinstance(t, msgspec.inspect.NoneType))
    return ColumnRange(number.ge, number.le)


@pytest.mark.parametrize("field", sorted(STORED_AS))
def test_decoder_bound_is_inside_its_column_type(field: str) -> None:
    column = column_range(EVENTS_COLUMNS[STORED_AS[field]])
    bound = _decoder_bound(field)
    assert column is not None, f"{STORED_AS[field]} is {EVENTS_COLUMNS[STORED_AS[field]]}: no range"
    assert column.low <= bound.low and bound.high <= column.high
    if field != "input" and field != "output":  # counts are bounded by the text limit, not the column
        assert bound.high == column.high


@pytest.mark.parametrize(("column_type", "expected"), [
    ("UInt8", (0, 255)), ("UInt16", (0, 65_535)), ("Nullable(UInt32)", (0, UINT32_MAX)),
    ("Int32", (-(1 << 31), (1 << 31) - 1)), ("Int64", (-(1 << 63), (1 << 63) - 1)), ("UInt64", (0, (1 << 64) - 1)),
    ("Float64", (-1.7976931348623157e308, 1.7976931348623157e308)),
    ("Float32", (-3.4028234663852886e38, 3.4028234663852886e38)),
    ("DateTime64(3, 'UTC')", (-2_208_988_800_000, TS_MAX)), ("DateTime64(0)", (-2_208_988_800, 10_413_791_999)),
    ("LowCardinality(Nullable(UInt16))", (0, 65_535)), ("DateTime", (0, UINT32_MAX)),
])
def test_column_range_of_each_type(column_type: str, expected: tuple[float, float]) -> None:
    assert column_range(column_type) == ColumnRange(*expected)


@pytest.mark.parametrize("column_type", ["String", "Array(String)", "Map(LowCardinality(String), String)", "UInt7"])
def test_non_numeric_types_have_no_range(column_type: str) -> None:
    assert column_range(column_type) is None


def test_the_schema_data_holds_the_events_types() -> None:
    assert EVENTS_COLUMNS["output_tokens"] == "Nullable(UInt32)"
    assert EVENTS_COLUMNS["input_hash"] == "String"


# (field, value at the bound, value just past it): the first is stored, the second dead-lettered.
EDGES = [
    ("output_tokens", UINT32_MAX, UINT32_MAX + 1),
    ("input_tokens", UINT32_MAX, 1 << 63),
    ("input_tokens", 0, -1),
    ("ts", TS_MAX, TS_MAX + 1),
    ("ts", EARLIEST_TS_MS, EARLIEST_TS_MS - 1),
    ("ts", "2299-12-31T23:59:59.999Z", "2300-01-01T00:00:00Z"),
    ("ts", "1973-03-03T09:46:40Z", "1960-01-01T00:00:00Z"),
    ("ts", TS_MAX, 1 << 63),
    ("latency_ms", 1.7976931348623157e308, "1e309"),
    ("latency_ms", 0.0, -0.001),
]


@pytest.mark.parametrize(("field", "at_bound", "past"), EDGES)
def test_record_at_bound_is_stored_and_past_it_dead_lettered(
        tmp_path: Path, field: str, at_bound: object, past: object) -> None:
    good = json.dumps(make_event(1, **{field: at_bound})).encode()
    # A str past value of a number field is a raw JSON number token ("1e309" parses to no float).
    token = past if isinstance(past, str) and field != "ts" else json.dumps(past)
    bad = json.dumps(make_event(2, **{field: "PAST"})).replace('"PAST"', token).encode()
    with Store(f"chdb://{tmp_path / 'store'}") as store:
        store.ensure_schema()
        sink = ClickHouseSink(store)
        ingestor = Ingestor(EventDecoder(), Pipeline([]))
        ingestor.write(ingestor.process([(good, Origin("edge.jsonl", 1)), (bad, Origin("edge.jsonl", 2))]), sink)
        sink.flush()
        column = "toUnixTimestamp64Milli(ts)" if field == "ts" else field
        _, stored = store.query(f"SELECT {column}, source FROM events")
        _, dead = store.query("SELECT line, field, reason FROM dead_letters")
    expected = DECODER.decode(good)
    assert stored == [(getattr(expected, field), "edge.jsonl:1")]
    assert len(dead) == 1 and dead[0][:2] == (2, f"$.{field}")
    assert "Expected" in dead[0][2] or "out of range" in dead[0][2]


@pytest.mark.parametrize("ts", [1_700_000_000, 0, 99_999_999_999, "1969-07-20T20:17:00Z", "1972-12-31T23:59:59Z"])
def test_one_time_rule_for_every_format(ts: object) -> None:
    with pytest.raises(ValidationError, match=r"Expected a time from 1973-03-03T09:46:40\.000Z") as info:
        DECODER.decode(json.dumps(make_event(ts=ts)).encode())
    assert info.value.field == "$.ts"
    assert ("is it in seconds?" in info.value.reason) == isinstance(ts, int)


@pytest.mark.parametrize(("patch", "fragment"), [
    ({"labels": {f"k{i}": "v" for i in range(65)}}, "length <= 64"),
    ({"labels": {"k" * 129: "v"}}, "length <= 128"),
    ({"labels": {"k": "v" * 1025}}, "length <= 1024"),
    ({"labels": {"": "v"}}, "length >= 1"),
    ({"labels": {"k": "v" * (5 << 20)}}, "length <= 1024"),
])
def test_labels_over_the_limits_are_refused(patch: dict[str, object], fragment: str) -> None:
    with pytest.raises(ValidationError, match=fragment) as info:
        DECODER.decode(json.dumps(make_event(**patch)).encode())
    assert info.value.field in ("$.labels", "$.labels[...]")


def test_labels_at_the_limits_pass_and_limits_are_configurable() -> None:
    at_limits = {f"{i:0128d}": "v" * 1024 for i in range(64)}
    assert DECODER.decode(json.dumps(make_event(labels=at_limits)).encode()).labels == at_limits
    small = EventDecoder(Limits(max_labels=1, max_label_key_chars=2, max_label_value_chars=3))
    assert small.decode(json.dumps(make_event(labels={"ab": "xyz"})).encode()).labels == {"ab": "xyz"}
    for labels in ({"a": "1", "b": "2"}, {"abc": "1"}, {"a": "wxyz"}):
        with pytest.raises(ValidationError):
            small.decode(json.dumps(make_event(labels=labels)).encode())


@pytest.mark.parametrize("limit", [256, 1000, 4096])
@pytest.mark.parametrize("ending", [b"\n", b"\r\n"])
def test_record_of_exactly_the_byte_limit_passes(tmp_path: Path, limit: int, ending: bytes) -> None:
    from monitor.replay import iter_lines

    base = json.dumps(make_event(1, input="")).encode()
    record = base.replace(b'"input": ""', b'"input": "' + b"x" * (limit - len(base)) + b'"')
    assert len(record) == limit
    path = tmp_path / "lines.jsonl"
    path.write_bytes(record + ending + record + b"x" + ending + record)  # the last line has no ending
    with path.open("rb") as stream:
        lines = list(iter_lines(stream, limit))
    assert [(n, size) for n, _, size in lines] == [(1, limit), (2, limit + 1), (3, limit)]
    assert lines[0][1] == lines[2][1] == record
    assert EventDecoder(Limits(max_record_bytes=limit)).decode(lines[0][1]).input.startswith("x")
    with pytest.raises(DecodeError, match=f"expected at most {limit}"):
        EventDecoder(Limits(max_record_bytes=limit)).decode(record + b" ")


@pytest.mark.parametrize("raw", [
    b"\xef\xbb\xbf" + json.dumps(make_event(1)).encode(),
    "\ufeff" + json.dumps(make_event(1)),
    b"\xef\xbb\xbf" + json.dumps(make_event(1), indent=1).encode(),
])
def test_byte_order_mark_is_stripped(raw: bytes | str) -> None:
    assert DECODER.decode(raw).model_id == "model-a"


@pytest.mark.parametrize("limits", [{"max_text_chars": UINT32_MAX + 1}, {"max_labels": 0}, {"max_label_key_chars": -1},
                                    {"max_label_value_chars": 1.5}])
def test_limits_outside_what_storage_holds_are_refused(limits: dict[str, object]) -> None:
    from monitor.errors import ConfigError

    with pytest.raises(ConfigError):
        Limits(**limits)  # type: ignore[arg-type]
