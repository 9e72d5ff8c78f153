"""From raw records to stored findings: the step replay and streaming share.

:class:`Ingestor` decodes a batch of raw records, sends the bad ones to dead
letters with their origin and reason, runs the pipeline on the good ones and
hands everything to a sink. Kafka and files differ only in how they fill
:class:`Origin`.

Two records of one batch with the same event id but different content (see
:attr:`~monitor.events.Event.content_hash`) are a collision: the first is
kept, the later one is dead-lettered with both hashes, never a silent
replacement. An exact repeat (same id, same hash) is kept; the store drops it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

from monitor.alerts import Findings
from monitor.errors import EventError
from monitor.events import Event, EventDecoder, collision_reason
from monitor.pipeline import Pipeline
from monitor.storage.rows import DeadLetter

__all__ = ["BatchResult", "Ingestor", "Origin", "Sink", "dead_letter"]


@dataclass(frozen=True, slots=True)
class Origin:
    """Where a record came from: a file line, or a Kafka topic/partition/offset."""

    source: str
    line: int = 0
    partition: int = -1
    offset: int = -1

    def describe(self) -> str:
        if self.partition >= 0:
            return f"{self.source}/{self.partition}/{self.offset}"
        return f"{self.source}:{self.line}"


@dataclass
class BatchResult:
    events: list[Event] = field(default_factory=list)
    sources: list[str] = field(default_factory=list)
    findings: Findings = field(default_factory=Findings)
    dead_letters: list[DeadLetter] = field(default_factory=list)


class Sink(Protocol):
    def add_events(self, events: Sequence[Event], sources: Sequence[str]) -> None: ...

    def add_findings(self, findings: Findings) -> None: ...

    def add_dead_letters(self, letters: Sequence[DeadLetter]) -> None: ...


class Ingestor:
    """Decode, validate and run the pipeline over one batch of raw records."""

    def __init__(self, decoder: EventDecoder, pipeline: Pipeline) -> None:
        self.decoder = decoder
        self.pipeline = pipeline

    def decode(self, records: Sequence[tuple[bytes, Origin]]) -> BatchResult:
        result = BatchResult()
        decode = self.decoder.decode
        hashes: dict[str, str] = {}
        for raw, origin in records:
            try:
                event = decode(raw)
            except EventError as exc:
                result.dead_letters.append(dead_letter(raw, origin, exc.reason, exc.field))
                continue
            first = hashes.setdefault(event.id, event.content_hash)
            if first != event.content_hash:
                reason = collision_reason(event.id, first, event.content_hash)
                result.dead_letters.append(dead_letter(raw, origin, reason, "$.event_id"))
                continue
            result.events.append(event)
            result.sources.append(origin.describe())
        return result

    def process(self, records: Sequence[tuple[bytes, Origin]]) -> BatchResult:
        result = self.decode(records)
        if result.events:
            result.findings = self.pipeline.process(result.events)
        return result

    @staticmethod
    def write(result: BatchResult, sink: Sink) -> None:
        if result.events:
            sink.add_events(result.events, result.sources)
        if result.findings.metrics or result.findings.alerts:
            sink.add_findings(result.findings)
        if result.dead_letters:
            sink.add_dead_letters(result.dead_letters)


def dead_letter(raw: bytes, origin: Origin, reason: str, field: str | None = None) -> DeadLetter:
    return DeadLetter(source=origin.source, reason=reason, raw=raw, field=field,
                      line=origin.line, partition=origin.partition, offset=origin.offset)
