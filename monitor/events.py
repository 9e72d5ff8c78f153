"""The model-call event: one JSON object per call to a deployed model.

An event is decoded and validated in one pass by msgspec's C decoder, so a
hostile record is rejected before any Python object is built for it: the
record size is checked first, then each text field and vector against the
configured limits.

Required fields: ``ts`` (RFC 3339 or epoch milliseconds), ``model_id``,
``model_version``, ``input``, ``output``. Everything else is optional;
unknown fields are ignored so producers can add fields before we read them.

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
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any

import msgspec

from monitor.errors import ConfigError, DecodeError, ValidationError

__all__ = ["Event", "EventDecoder", "Limits", "ToolCall", "event_id_for"]

# Defaults: 1 MiB of characters per text field, 64 KiB per vector (8,192
# float64 values), 8 MiB per record on the wire.
DEFAULT_MAX_TEXT_CHARS = 1 << 20
DEFAULT_MAX_VECTOR_BYTES = 64 << 10
DEFAULT_MAX_RECORD_BYTES = 8 << 20
_ID_CHARS = 256
_MAX_TOOL_CALLS = 256
_MAX_LABELS = 64
# Epoch milliseconds below this are almost surely epoch seconds (before 1973).
_MIN_EPOCH_MS = 100_000_000_000

Identifier = Annotated[str, msgspec.Meta(min_length=1, max_length=_ID_CHARS)]
OptionalIdentifier = Annotated[str, msgspec.Meta(max_length=_ID_CHARS)] | None
Text = Annotated[str, msgspec.Meta(max_length=DEFAULT_MAX_TEXT_CHARS)]
Vector = Annotated[list[float], msgspec.Meta(max_length=DEFAULT_MAX_VECTOR_BYTES // 8)]
Count = Annotated[int, msgspec.Meta(ge=0)]


class ToolCall(msgspec.Struct, frozen=True, kw_only=True):
    """One tool invocation the model asked for."""

    name: Identifier
    arguments: Any = None


class Event(msgspec.Struct, kw_only=True, gc=False):
    """A validated model call. Build one with :class:`EventDecoder`."""

    ts: int | datetime
    model_id: Identifier
    model_version: Identifier
    input: Text
    output: Text
    event_id: OptionalIdentifier = None
    tenant_id: OptionalIdentifier = None
    user_id: OptionalIdentifier = None
    session_id: OptionalIdentifier = None
    system_prompt: Text | None = None
    output_logprobs: Vector | None = None
    tool_calls: Annotated[list[ToolCall], msgspec.Meta(max_length=_MAX_TOOL_CALLS)] | None = None
    input_tokens: Count | None = None
    output_tokens: Count | None = None
    latency_ms: Annotated[float, msgspec.Meta(ge=0)] | None = None
    embedding: Vector | None = None
    activations: Vector | None = None
    labels: Annotated[dict[str, str], msgspec.Meta(max_length=_MAX_LABELS)] | None = None

    def __post_init__(self) -> None:
        # Normalise the timestamp to epoch milliseconds, UTC, once.
        ts = self.ts
        if isinstance(ts, datetime):
            if ts.tzinfo is None:
                ts = ts.replace(tzinfo=UTC)
            self.ts = int(ts.timestamp() * 1000)
        elif ts < _MIN_EPOCH_MS:
            raise ValueError(
                f"Expected epoch milliseconds, got {ts} (before 1973: is it in seconds?) - at `$.ts`"
            )
        if self.event_id is None:
            self.event_id = event_id_for(self)

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


def event_id_for(event: Event) -> str:
    """Deterministic id of an event that came without one.

    The hash covers every field that identifies a call: the same call sent
    twice gets the same id, so stores can drop the repeat.
    """
    joined = "\x1f".join((
        event.model_id,
        event.model_version,
        str(event.ts),
        event.tenant_id or "",
        event.user_id or "",
        event.session_id or "",
        event.input,
        event.output,
    ))
    return hashlib.blake2b(joined.encode("utf-8", "surrogatepass"), digest_size=16).hexdigest()


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
        Most bytes in one encoded record; checked before parsing.
    """

    max_text_chars: int = DEFAULT_MAX_TEXT_CHARS
    max_vector_bytes: int = DEFAULT_MAX_VECTOR_BYTES
    max_record_bytes: int = DEFAULT_MAX_RECORD_BYTES

    def __post_init__(self) -> None:
        for name in ("max_text_chars", "max_vector_bytes", "max_record_bytes"):
            value = getattr(self, name)
            if not isinstance(value, int) or value <= 0:
                raise ConfigError(f"{name} must be a positive integer; got {value!r}")
        if self.max_vector_bytes < 8:
            raise ConfigError(f"max_vector_bytes must be >= 8; got {self.max_vector_bytes}")


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
        size = len(raw)
        if size > self.limits.max_record_bytes:
            raise DecodeError(
                f"record is {size} bytes; expected at most {self.limits.max_record_bytes}"
            )
        try:
            return self._decoder.decode(raw)
        except msgspec.ValidationError as exc:
            message = str(exc)
            field = message.rsplit("- at `", 1)[1].rstrip("`") if "- at `" in message else None
            if field == "$.ts" and "seconds" not in message:
                message = ("Expected an RFC 3339 timestamp (2026-11-01T12:00:00Z) or epoch milliseconds, "
                           f"got something else ({message.split(' - at')[0]}) - at `$.ts`")
            raise ValidationError(message, field) from exc
        except msgspec.DecodeError as exc:
            raise DecodeError(str(exc)) from exc
        except UnicodeDecodeError as exc:
            raise DecodeError(f"invalid UTF-8 at byte {exc.start}: {exc.reason}") from exc
        except RecursionError as exc:
            raise DecodeError("JSON nested too deeply") from exc
