"""The model-call event: one JSON object per call to a deployed model.

An event is decoded and validated in one pass by msgspec's C decoder, so a
hostile record is rejected before any Python object is built for it: the
record size is checked first, then each text field and vector against the
configured limits.

Required fields: ``ts`` (RFC 3339 or epoch milliseconds), ``model_id``,
``model_version``, ``input``, ``output``. Everything else is optional;
unknown fields are ignored so producers can add fields before we read them.

Every numeric bound is the range of the ClickHouse column the value is stored
in (:mod:`monitor.column_types`; a test checks them against the schema data),
so a record the decoder accepts cannot fail the insert. ``ts`` has one rule
whatever its format: from :data:`EARLIEST_TS_MS` (1973-03-03T09:46:40Z; any
earlier epoch number is far more likely seconds than milliseconds) to the end
of ``DateTime64(3)`` (2299-12-31T23:59:59.999Z).

Each event carries :attr:`Event.content_hash`, a hash of everything it holds
but its id; an event that came without an id gets that hash as its id, so two
different calls never share a derived id, and a store can tell a repeat
(same id, same hash) from a collision (same id, other hash).

Examples
--------
>>> decoder = EventDecoder()
>>> event = decoder.decode(b'{"ts": 1700000000000, "model_id": "m", '
...                        b'"model_version": "v1", "input": "hi", "output": "hello"}')
>>> event.key
('m', 'v1')
>>> len(event.event_id)
32
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

import msgspec

from monitor.column_types import ColumnRange, column_range
from monitor.errors import ConfigError, DecodeError, ValidationError

__all__ = ["EARLIEST_TS_MS", "STORED_AS", "TS_RANGE_MS", "Event", "EventDecoder", "Limits", "ToolCall",
           "collision_reason", "content_hash", "event_id_for"]

# Defaults: 1 MiB of characters per text field, 64 KiB per vector (8,192
# float64 values), 8 MiB per record on the wire.
DEFAULT_MAX_TEXT_CHARS = 1 << 20
DEFAULT_MAX_VECTOR_BYTES = 64 << 10
DEFAULT_MAX_RECORD_BYTES = 8 << 20
DEFAULT_MAX_LABELS = 64
DEFAULT_MAX_LABEL_KEY_CHARS = 128
DEFAULT_MAX_LABEL_VALUE_CHARS = 1024
_ID_CHARS = 256
_MAX_TOOL_CALLS = 256

# The events column each bounded field is stored in (its type is in monitor.storage.tables).
STORED_AS = {"ts": "ts", "input_tokens": "input_tokens", "output_tokens": "output_tokens",
             "latency_ms": "latency_ms", "input": "input_chars", "output": "output_chars"}


def _range(column_type: str) -> ColumnRange:
    found = column_range(column_type)
    if found is None:
        raise TypeError(f"{column_type} has no numeric range")
    return found


_UINT32 = _range("UInt32")
_FLOAT64 = _range("Float64")
_DATETIME64_MS = _range("DateTime64(3)")
# An epoch number below this is almost surely seconds; one rule for every ts format.
EARLIEST_TS_MS = 100_000_000_000
TS_RANGE_MS = ColumnRange(EARLIEST_TS_MS, _DATETIME64_MS.high)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_FIELD_AT = re.compile(r"- at `(?:key` in `)?(\$[^`]*)`$")

Identifier = Annotated[str, msgspec.Meta(min_length=1, max_length=_ID_CHARS)]
OptionalIdentifier = Annotated[str, msgspec.Meta(max_length=_ID_CHARS)] | None
# A given event id must hold something besides whitespace.
EventId = Annotated[str, msgspec.Meta(min_length=1, max_length=_ID_CHARS, pattern=r"\S")] | None
Text = Annotated[str, msgspec.Meta(max_length=DEFAULT_MAX_TEXT_CHARS)]
Vector = Annotated[list[float], msgspec.Meta(max_length=DEFAULT_MAX_VECTOR_BYTES // 8)]
Count = Annotated[int, msgspec.Meta(ge=0, le=_UINT32.high)]
Milliseconds = Annotated[float, msgspec.Meta(ge=0, le=_FLOAT64.high)]


def _labels_type(count: int, key_chars: int, value_chars: int) -> Any:
    key = Annotated[str, msgspec.Meta(min_length=1, max_length=key_chars)]
    value = Annotated[str, msgspec.Meta(max_length=value_chars)]
    return Annotated[dict[key, value], msgspec.Meta(max_length=count)]  # type: ignore[valid-type]


Labels = Annotated[
    dict[Annotated[str, msgspec.Meta(min_length=1, max_length=DEFAULT_MAX_LABEL_KEY_CHARS)],
         Annotated[str, msgspec.Meta(max_length=DEFAULT_MAX_LABEL_VALUE_CHARS)]],
    msgspec.Meta(max_length=DEFAULT_MAX_LABELS),
]  # what _labels_type builds for the default limits, spelt out for the type checker


class ToolCall(msgspec.Struct, frozen=True, kw_only=True):
    """One tool invocation the model asked for."""

    name: Identifier
    arguments: Any = None


class Event(msgspec.Struct, kw_only=True, gc=False, omit_defaults=True):
    """A validated model call. Build one with :class:`EventDecoder`."""

    ts: int | datetime
    model_id: Identifier
    model_version: Identifier
    input: Text
    output: Text
    event_id: EventId = None
    tenant_id: OptionalIdentifier = None
    user_id: OptionalIdentifier = None
    session_id: OptionalIdentifier = None
    system_prompt: Text | None = None
    output_logprobs: Vector | None = None
    tool_calls: Annotated[list[ToolCall], msgspec.Meta(max_length=_MAX_TOOL_CALLS)] | None = None
    input_tokens: Count | None = None
    output_tokens: Count | None = None
    latency_ms: Milliseconds | None = None
    embedding: Vector | None = None
    activations: Vector | None = None
    labels: Labels | None = None
    # Filled in __post_init__; the odd wire name keeps a producer's own field out.
    content_hash: Any = msgspec.field(default=None, name="$content_hash")

    def __post_init__(self) -> None:
        self.ts = _checked_ts(self.ts)
        self.content_hash = content_hash(self)
        if self.event_id is None:
            self.event_id = self.content_hash

    @property
    def ts_ms(self) -> int:
        """Event time in epoch milliseconds (UTC)."""
        return self.ts  # type: ignore[return-value]  # normalised in __post_init__

    @property
    def key(self) -> tuple[str, str]:
        """The stream key detectors are kept under: (model_id, model_version)."""
        return (self.model_id, self.model_version)

    @property
    def id(self) -> str:
        """The event id, given or derived."""
        return self.event_id  # type: ignore[return-value]  # filled in __post_init__


def _checked_ts(ts: int | datetime) -> int:
    """``ts`` in epoch milliseconds, UTC, inside :data:`TS_RANGE_MS` whatever its format."""
    if isinstance(ts, datetime):
        moment = ts if ts.tzinfo is not None else ts.replace(tzinfo=UTC)
        ms = (moment - _EPOCH) // timedelta(milliseconds=1)  # exact: no float rounding
        given = ts.isoformat()
    else:
        ms, given = ts, str(ts)
    if ms in TS_RANGE_MS:
        return ms
    hint = " (is it in seconds?)" if not isinstance(ts, datetime) and 0 <= ms < EARLIEST_TS_MS else ""
    raise ValueError(f"Expected a time from {_iso(TS_RANGE_MS.low)} to {_iso(TS_RANGE_MS.high)} "
                     f"(epoch milliseconds {TS_RANGE_MS.low} to {TS_RANGE_MS.high}), got {given}{hint} - at `$.ts`")


def _iso(ms: int | float) -> str:
    return (_EPOCH + timedelta(milliseconds=ms)).isoformat(timespec="milliseconds").replace("+00:00", "Z")


# Version of the canonical form below: changing it changes every derived id.
_CANONICAL_VERSION = b"driftwatch.event.v2\x00"
_CANONICAL = msgspec.json.Encoder(order="sorted")


def content_hash(event: Event) -> str:
    """blake2b-128 of everything ``event`` holds but its id, in a canonical form.

    Every field that is stored or scored counts: texts, ids, tool calls with
    their arguments, labels, token counts, latency, vectors. Fields left out
    are skipped (adding an optional field later changes no old hash); object
    keys are sorted and ``ts`` is already epoch milliseconds, so an RFC 3339
    and an epoch-millisecond copy of one call hash the same.
    """
    # Encoding the struct itself (omit_defaults drops the fields left out) is five times faster
    # than building a dict of its fields; the id and the hash are blanked for the encoding.
    given_id, given_hash = event.event_id, event.content_hash
    event.event_id = event.content_hash = None
    try:
        payload = _CANONICAL.encode(event)
    finally:
        event.event_id, event.content_hash = given_id, given_hash
    return hashlib.blake2b(_CANONICAL_VERSION + payload, digest_size=16).hexdigest()


def event_id_for(event: Event) -> str:
    """Deterministic id of an event that came without one: its :func:`content_hash`.

    The same call sent twice gets the same id, so stores can drop the repeat;
    calls that differ in anything stored or scored get different ids.
    """
    return content_hash(event)


@dataclass(frozen=True)
class Limits:
    """Size limits that keep a hostile record from exhausting memory.

    Parameters
    ----------
    max_text_chars
        Most characters in any one text field (``input``, ``output``,
        ``system_prompt``).
    max_vector_bytes
        Most bytes in any one vector, counted as float64 (8 bytes a value).
    max_record_bytes
        Most bytes in one encoded record, its line ending not counted;
        checked before parsing.
    max_labels, max_label_key_chars, max_label_value_chars
        Most entries in ``labels``, and characters in each key and value.
    """

    max_text_chars: int = DEFAULT_MAX_TEXT_CHARS
    max_vector_bytes: int = DEFAULT_MAX_VECTOR_BYTES
    max_record_bytes: int = DEFAULT_MAX_RECORD_BYTES
    max_labels: int = DEFAULT_MAX_LABELS
    max_label_key_chars: int = DEFAULT_MAX_LABEL_KEY_CHARS
    max_label_value_chars: int = DEFAULT_MAX_LABEL_VALUE_CHARS

    def __post_init__(self) -> None:
        for name in ("max_text_chars", "max_vector_bytes", "max_record_bytes", "max_labels",
                     "max_label_key_chars", "max_label_value_chars"):
            value = getattr(self, name)
            if not isinstance(value, int) or value <= 0:
                raise ConfigError(f"{name} must be a positive integer; got {value!r}")
        if self.max_vector_bytes < 8:
            raise ConfigError(f"max_vector_bytes must be >= 8; got {self.max_vector_bytes}")
        if self.max_text_chars > _UINT32.high:  # input_chars and output_chars are UInt32
            raise ConfigError(f"max_text_chars must be <= {_UINT32.high}; got {self.max_text_chars}")


def _event_type(limits: Limits) -> type[Event]:
    """The Event struct with the given limits compiled into its fields."""
    if limits == Limits():
        return Event
    text = Annotated[str, msgspec.Meta(max_length=limits.max_text_chars)]
    vector = Annotated[list[float], msgspec.Meta(max_length=limits.max_vector_bytes // 8)]
    overrides: list[Any] = [
        ("input", text),
        ("output", text),
        ("system_prompt", text | None, None),
        ("output_logprobs", vector | None, None),
        ("embedding", vector | None, None),
        ("activations", vector | None, None),
        ("labels", _labels_type(limits.max_labels, limits.max_label_key_chars,
                                limits.max_label_value_chars) | None, None),
    ]
    event_type: type[Event] = msgspec.defstruct(  # type: ignore[assignment]
        "Event", overrides, bases=(Event,), kw_only=True, gc=False
    )
    return event_type


class EventDecoder:
    """Decode and validate raw JSON records into :class:`Event` objects.

    Errors raise :class:`~monitor.errors.DecodeError` (not a JSON object we
    accept) or :class:`~monitor.errors.ValidationError` (wrong schema); both
    say which field, what was expected and what was found.
    """

    def __init__(self, limits: Limits | None = None) -> None:
        self.limits = limits or Limits()
        self._decoder = msgspec.json.Decoder(_event_type(self.limits))

    def decode(self, raw: bytes | str) -> Event:
        """Decode one record."""
        # A UTF-8 byte order mark (first line of a file saved by some editors) is no part of the record.
        if isinstance(raw, bytes) and raw.startswith(b"\xef\xbb\xbf"):
            raw = raw[3:]
        elif isinstance(raw, str) and raw.startswith("\ufeff"):
            raw = raw[1:]
        size = len(raw)
        if size > self.limits.max_record_bytes:
            raise DecodeError(
                f"record is {size} bytes; expected at most {self.limits.max_record_bytes}"
            )
        try:
            return self._decoder.decode(raw)
        except msgspec.ValidationError as exc:
            message = str(exc)
            # "- at `$.labels`", or "- at `key` in `$.labels`" for a dict key.
            located = _FIELD_AT.search(message)
            field = located.group(1) if located is not None else None
            if field == "$.event_id":
                message += " (leave event_id out to have it derived from the content; it may not be blank)"
            if field == "$.ts" and "Expected a time from" not in message:
                message = ("Expected an RFC 3339 timestamp (2026-11-01T12:00:00Z) or epoch milliseconds, "
                           f"got something else ({message.split(' - at')[0]}) - at `$.ts`")
            raise ValidationError(message, field) from exc
        except msgspec.DecodeError as exc:
            raise DecodeError(str(exc)) from exc
        except UnicodeDecodeError as exc:
            raise DecodeError(f"invalid UTF-8 at byte {exc.start}: {exc.reason}") from exc
        except RecursionError as exc:
            raise DecodeError("JSON nested too deeply") from exc


def collision_reason(event_id: str, kept_hash: str, refused_hash: str) -> str:
    """Why a record was refused: its id is taken by other content."""
    shown = event_id if len(event_id) <= 64 else event_id[:64] + "..."
    return (f"event_id collision: {shown!r} already holds content {kept_hash}; this record's content is "
            f"{refused_hash} (an id may name one call only)")
