"""The pinned reference set for the drift stage: events from a file, as feature rows per model."""

from __future__ import annotations

import logging
from collections import defaultdict
from contextlib import ExitStack
from pathlib import Path

from detectors.refusal import RefusalMatcher
from monitor.errors import ConfigError, EventError
from monitor.events import Event, EventDecoder
from monitor.replay import iter_lines, open_source
from monitor.stages.drift import feature_rows

__all__ = ["load_pinned_reference"]

logger = logging.getLogger(__name__)


def load_pinned_reference(path: str | Path, decoder: EventDecoder | None = None, *,
                          refusal_phrases: tuple[str, ...] | None = None,
                          max_events: int = 100_000) -> dict[str, list[list[float]]]:
    """Feature rows per model_id from a JSON Lines file of events (``.gz`` too).

    A record that does not decode is skipped with a count in the log; a file
    with no valid event is a configuration error.
    """
    decoder = decoder or EventDecoder()
    events: dict[str, list[Event]] = defaultdict(list)
    skipped = 0
    with ExitStack() as stack:
        source = open_source(str(path), stack)
        for _, line, _ in iter_lines(source.stream, decoder.limits.max_record_bytes):
            try:
                event = decoder.decode(line)
            except EventError:
                skipped += 1
                continue
            events[event.model_id].append(event)
            if sum(len(v) for v in events.values()) >= max_events:
                break
    if not events:
        raise ConfigError(f"pinned reference {path} holds no valid event ({skipped} records skipped)")
    refusals = RefusalMatcher(refusal_phrases)
    pinned = {}
    for model, group in events.items():
        rows, _ = feature_rows(group, refusals)
        pinned[model] = [[float(e.ts_ms), *map(float, row)] for e, row in zip(group, rows, strict=True)]
    logger.info("pinned reference loaded path=%s models=%d skipped=%d", path, len(pinned), skipped)
    return pinned
