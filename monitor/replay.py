"""Replay JSON Lines files through the pipeline into ClickHouse.

Files may be plain, gzip-compressed (``.gz``) or ``-`` for standard input. A
line longer than the record limit (its line ending not counted) is never read
whole into memory: it is skipped in chunks and dead-lettered with its size.
Blank lines are ignored.

A read error (a truncated or corrupt gzip stream, a failing disk) stops the
replay, but only after everything read before it is written: the error names
the file and the line it stopped at.
"""

from __future__ import annotations

import gzip
import logging
import os
import sys
import time
import zlib
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from monitor.alerts import Alert
from monitor.errors import InputFileError
from monitor.ingest import Ingestor, Origin, dead_letter
from monitor.storage.sink import ClickHouseSink

logger = logging.getLogger(__name__)

__all__ = ["LineReadError", "ReplaySummary", "iter_lines", "open_source", "replay"]

_SKIP_CHUNK = 1 << 20


@dataclass
class ReplaySummary:
    """What a replay did, for the closing summary."""

    events: int = 0
    rejected: int = 0
    raised: dict[str, Alert] = field(default_factory=dict)
    new_alerts: int = 0
    seconds: float = 0.0
    fresh_ids: set[str] = field(default_factory=set)  # ids of the alerts this replay stored first
    incidents: int = 0  # incidents written by the SOC policy after the replay
    decisions: list[Any] = field(default_factory=list)  # rollback decisions it recommended

    @property
    def alerts(self) -> list[Alert]:
        """Every alert the pipeline raised, once each, stored before or not."""
        return list(self.raised.values())

    def alerts_by(self) -> Counter[tuple[str, str]]:
        return Counter((alert.detector, alert.severity) for alert in self.raised.values())


class _Source:
    """An open input with a byte position for progress."""

    def __init__(self, name: str, stream: IO[bytes], raw: IO[bytes] | None, size: int | None) -> None:
        self.name = name
        self.stream = stream
        self._raw = raw
        self.size = size

    def position(self) -> int:
        try:
            return self._raw.tell() if self._raw is not None else 0
        except (OSError, ValueError):
            return 0


def open_source(name: str, stack: ExitStack) -> _Source:
    """Open ``name`` (a path, a ``.gz`` path or ``-``) for binary line reading."""
    if name == "-":
        return _Source("<stdin>", sys.stdin.buffer, None, None)
    path = Path(name)
    try:
        raw = stack.enter_context(path.open("rb"))
        size = os.fstat(raw.fileno()).st_size
    except OSError as exc:
        raise InputFileError(f"cannot open {name}: {exc.strerror}") from exc
    if path.suffix == ".gz":
        stream: IO[bytes] = gzip.GzipFile(fileobj=raw, mode="rb")  # type: ignore[assignment]
        stack.callback(stream.close)
    else:
        stream = raw
    return _Source(str(path), stream, raw, size)


_READ_ERRORS = (OSError, EOFError, zlib.error)


class LineReadError(InputFileError):
    """Reading stopped at ``line`` (1-based: the line that could not be read)."""

    def __init__(self, line: int, cause: BaseException) -> None:
        super().__init__(f"cannot read line {line}: {cause}")
        self.line = line


def iter_lines(stream: IO[bytes], max_bytes: int) -> Iterator[tuple[int, bytes, int]]:
    """Yield (line number, record, size in bytes) for each non-blank line.

    The record is the line without its ``\\n`` or ``\\r\\n``, and ``max_bytes``
    bounds the record, so a record of exactly ``max_bytes`` passes. A longer
    one yields only its first ``max_bytes`` bytes with its full size, so the
    caller can reject it without holding it. A read error is raised as
    :class:`LineReadError` with the line it happened on.
    """
    number = 0
    readline = stream.readline
    while True:
        try:
            line = readline(max_bytes + 2)  # the record and a "\r\n"
            if not line:
                return
            number += 1
            ended = line.endswith(b"\n")
            record = line.removesuffix(b"\n").removesuffix(b"\r") if ended else line
            size = len(record)
            if not ended and size > max_bytes:
                chunk = previous = line
                while chunk and not chunk.endswith(b"\n"):
                    previous, chunk = chunk, readline(_SKIP_CHUNK)
                    size += len(chunk)
                if chunk.endswith(b"\n"):  # the ending is no part of the record, even split across chunks
                    size -= 2 if (previous[-1:] + chunk).endswith(b"\r\n") else 1
        except _READ_ERRORS as exc:
            raise LineReadError(number + 1, exc) from exc
        if size > max_bytes:
            yield number, record[:max_bytes], size
        elif record.strip():
            yield number, record, size


def replay(
    paths: Sequence[str],
    ingestor: Ingestor,
    sink: ClickHouseSink,
    *,
    batch_size: int,
    progress: bool = False,
) -> ReplaySummary:
    """Run every record of ``paths`` through ``ingestor`` into ``sink``."""
    summary = ReplaySummary()
    started = time.perf_counter()
    max_bytes = ingestor.decoder.limits.max_record_bytes
    with ExitStack() as stack:
        sources = [open_source(name, stack) for name in paths]
        bar = _progress_bar(sources) if progress else None
        for source in sources:
            batch: list[tuple[bytes, Origin]] = []
            done_before = bar.n if bar is not None else 0
            try:
                for number, line, size in iter_lines(source.stream, max_bytes):
                    origin = Origin(source.name, line=number)
                    if size > max_bytes:
                        sink.add_dead_letters([dead_letter(
                            line, origin, f"record is {size} bytes; expected at most {max_bytes}")])
                        summary.rejected += 1
                        continue
                    batch.append((line, origin))
                    if len(batch) >= batch_size:
                        _run_batch(batch, ingestor, sink, summary)
                        batch = []
                        if bar is not None:
                            bar.update(done_before + source.position() - bar.n)
                _run_batch(batch, ingestor, sink, summary)
            except LineReadError as exc:
                # Keep what was read: write the batch in hand and everything buffered, then stop.
                _run_batch(batch, ingestor, sink, summary)
                sink.flush()
                raise InputFileError(
                    f"cannot read {source.name} at line {exc.line}: {exc.__cause__}; replay stopped there, "
                    f"after {summary.events} events and {summary.rejected} rejected records were written"
                ) from exc
            if bar is not None:
                bar.update(done_before + source.position() - bar.n)
        sink.flush()
        _count_fresh(sink, summary)
        if bar is not None:
            bar.close()
    summary.seconds = time.perf_counter() - started
    logger.info("replay done events=%d rejected=%d alerts=%d seconds=%.2f",
                summary.events, summary.rejected, len(summary.alerts), summary.seconds)
    return summary


def _run_batch(batch: list[tuple[bytes, Origin]], ingestor: Ingestor, sink: ClickHouseSink,
               summary: ReplaySummary) -> None:
    if not batch:
        return
    result = ingestor.process(batch)
    ingestor.write(result, sink)
    summary.events += len(result.events)
    summary.rejected += len(result.dead_letters)
    summary.raised.update((alert.alert_id, alert) for alert in result.findings.alerts)
    _count_fresh(sink, summary)


def _count_fresh(sink: ClickHouseSink, summary: ReplaySummary) -> None:
    fresh = sink.drain_new_alerts()
    summary.new_alerts += sum(not alert.is_update for alert in fresh)
    summary.fresh_ids.update(alert.alert_id for alert in fresh)


def _progress_bar(sources: Sequence[_Source]) -> Any:
    from tqdm import tqdm

    sizes = [source.size for source in sources]
    total = sum(s for s in sizes if s is not None) if all(s is not None for s in sizes) else None
    return tqdm(total=total, unit="B", unit_scale=True, unit_divisor=1024,
                desc="replay", file=sys.stderr, dynamic_ncols=True)
