"""Event decoding: every input either decodes or fails with our error."""

from __future__ import annotations

import json

import hypothesis.strategies as st
import pytest
from hypothesis import given, settings

from monitor.errors import DecodeError, EventError, ValidationError
from monitor.events import EventDecoder, Limits
from tests.conftest import make_event

DECODER = EventDecoder()

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=20,
)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=512))
def test_arbitrary_bytes_decode_or_raise_event_error(raw: bytes) -> None:
    try:
        DECODER.decode(raw)
    except EventError as exc:
        assert exc.reason


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(
    st.sampled_from(["ts", "model_id", "model_version", "input", "output", "tool_calls", "labels",
                     "embedding", "input_tokens", "latency_ms", "extra"]),
    json_values, max_size=11))
def test_junk_objects_decode_or_name_the_field(record: dict[str, object]) -> None:
    try:
        event = DECODER.decode(json.dumps(record).encode())
    except ValidationError as exc:
        assert exc.field is None or exc.field.startswith("$")
        assert "Expected" in exc.reason or "required" in exc.reason or "Object missing" in exc.reason
    else:
        assert event.model_id and event.model_version
        assert isinstance(event.ts_ms, int)


def test_valid_event_gets_a_deterministic_id() -> None:
    raw = json.dumps(make_event(1)).encode()
    first, second = DECODER.decode(raw), DECODER.decode(raw)
    assert first.event_id == second.event_id and len(first.event_id) == 32
    other = DECODER.decode(json.dumps(make_event(1, output="different")).encode())
    assert other.event_id != first.event_id


def test_given_event_id_is_kept() -> None:
    assert DECODER.decode(json.dumps(make_event(event_id="abc")).encode()).id == "abc"


@pytest.mark.parametrize(("ts", "expected"), [
    (1_700_000_000_123, 1_700_000_000_123),
    ("2024-01-01T00:00:00Z", 1_704_067_200_000),
    ("2024-01-01T02:00:00+02:00", 1_704_067_200_000),
    ("2024-01-01T00:00:00.250Z", 1_704_067_200_250),
])
def test_timestamps_normalise_to_epoch_ms(ts: object, expected: int) -> None:
    assert DECODER.decode(json.dumps(make_event(ts=ts)).encode()).ts_ms == expected


def test_epoch_seconds_are_rejected_with_a_hint() -> None:
    with pytest.raises(ValidationError, match="seconds") as info:
        DECODER.decode(json.dumps(make_event(ts=1_700_000_000)).encode())
    assert info.value.field == "$.ts"


@pytest.mark.parametrize(("patch", "field", "fragment"), [
    ({"model_id": 5}, "$.model_id", "Expected `str`, got `int`"),
    ({"model_id": ""}, "$.model_id", "length >= 1"),
    ({"input_tokens": -1}, "$.input_tokens", ">= 0"),
    ({"tool_calls": [{"arguments": {}}]}, "$.tool_calls[0]", "name"),
    ({"labels": {"a": 1}}, "$.labels[...]", "Expected `str`"),
])
def test_errors_name_field_expected_and_found(patch: dict[str, object], field: str, fragment: str) -> None:
    with pytest.raises(ValidationError) as info:
        DECODER.decode(json.dumps(make_event(**patch)).encode())
    assert info.value.field == field
    assert fragment in info.value.reason


def test_missing_required_field() -> None:
    record = make_event()
    del record["output"]
    with pytest.raises(ValidationError, match="missing required field `output`"):
        DECODER.decode(json.dumps(record).encode())


def test_size_limits_are_configurable() -> None:
    small = EventDecoder(Limits(max_text_chars=10, max_vector_bytes=16, max_record_bytes=4096))
    with pytest.raises(ValidationError, match="length <= 10") as info:
        small.decode(json.dumps(make_event(input="hi", output="x" * 11)).encode())
    assert info.value.field == "$.output"
    with pytest.raises(ValidationError, match="length <= 2"):
        small.decode(json.dumps(make_event(input="hi", output="ok", embedding=[0.1, 0.2, 0.3])).encode())
    with pytest.raises(DecodeError, match="expected at most 4096"):
        small.decode(json.dumps(make_event(input="y" * 5000, output="z")).encode())
    assert DECODER.decode(json.dumps(make_event(output="x" * 11)).encode()).output == "x" * 11


@pytest.mark.parametrize(("raw", "fragment"), [
    (b'{"ts": 1', "truncated"),
    (b"\xff\xfe{}", "malformed"),
    (b'{"model_id": "\xff\xfe"}', "UTF-8"),
    (b"[1, 2]", "Expected `object`"),
    (b'{"x":' + b"[" * 100_000 + b"]" * 100_000 + b"}", "deep"),
])
def test_hostile_records(raw: bytes, fragment: str) -> None:
    with pytest.raises(EventError) as info:
        DECODER.decode(raw)
    assert fragment.lower() in info.value.reason.lower()
