"""Row values the sink writes besides events and findings, and its retry policy.

Kept apart from :mod:`monitor.storage.sink` so the client and sink stay small.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass

from monitor.errors import ConfigError

__all__ = ["RAW_PREVIEW_BYTES", "Backoff", "DeadLetter", "ServiceMetric"]

RAW_PREVIEW_BYTES = 16 << 10


class DeadLetter:
    """A record that could not become an event, and where it came from."""

    __slots__ = ("field", "line", "offset", "partition", "raw", "reason", "received_ms", "source")

    def __init__(
        self,
        *,
        source: str,
        reason: str,
        raw: bytes,
        field: str | None = None,
        line: int = 0,
        partition: int = -1,
        offset: int = -1,
        received_ms: int | None = None,
    ) -> None:
        self.source = source
        self.reason = reason
        self.raw = raw
        self.field = field or ""
        self.line = line
        self.partition = partition
        self.offset = offset
        self.received_ms = int(time.time() * 1000) if received_ms is None else received_ms

    @property
    def dead_letter_id(self) -> str:
        # Position plus content: the same bad line replayed is the same row.
        digest = hashlib.blake2b(digest_size=16)
        digest.update(f"{self.source}\x1f{self.partition}\x1f{self.offset}\x1f{self.line}\x1f".encode())
        digest.update(self.raw[:RAW_PREVIEW_BYTES])
        return digest.hexdigest()


@dataclass(frozen=True)
class ServiceMetric:
    """One health sample of a worker, a row of ``service_metrics``."""

    ts_ms: int
    worker: str
    metric: str
    value: float
    topic: str = ""
    partition: int = -1


@dataclass(frozen=True)
class Backoff:
    """Capped exponential backoff between write retries.

    Parameters
    ----------
    initial_s
        Wait before the first retry.
    max_s
        Longest wait between two tries.
    attempts
        Tries in all before giving up; ``None`` retries until the sink is closed
        (what a streaming worker wants: it holds the Kafka offsets meanwhile).

    Examples
    --------
    >>> [Backoff(0.1, 1.0).delay(n) for n in (1, 2, 3, 4, 5)]
    [0.1, 0.2, 0.4, 0.8, 1.0]
    """

    initial_s: float = 0.2
    max_s: float = 5.0
    attempts: int | None = None

    def __post_init__(self) -> None:
        if self.initial_s <= 0 or self.max_s < self.initial_s:
            raise ConfigError(f"backoff needs 0 < initial_s <= max_s; got {self.initial_s!r}, {self.max_s!r}")
        if self.attempts is not None and self.attempts < 1:
            raise ConfigError(f"backoff attempts must be >= 1 or None; got {self.attempts!r}")

    def delay(self, failures: int) -> float:
        """Seconds to wait after the ``failures``-th failure in a row."""
        return float(min(self.max_s, self.initial_s * 2 ** (failures - 1)))

    def gives_up(self, failures: int) -> bool:
        return self.attempts is not None and failures >= self.attempts
