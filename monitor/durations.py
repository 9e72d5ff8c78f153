"""Durations and instants from configuration and the command line, with bounds.

One parser for every duration a user writes (policy windows, ``--since``),
so that ``99999999999999999999d`` is refused where it is written, with the
bound, instead of overflowing an ``Int64`` or a ``DateTime64(3)`` column
later. Instants are held to what ``DateTime64(3)`` stores, 1900-01-01 to
2299-12-31.

Examples
--------
>>> parse_duration("90s"), parse_duration("2h"), parse_duration(30)
(90000, 7200000, 30000)
>>> parse_duration("99999999999999999999d", where="incidents.window")
Traceback (most recent call last):
...
monitor.errors.ConfigError: incidents.window must be at most 366d; got '99999999999999999999d'
>>> parse_since("1d", now_ms=86_400_000), parse_since("1970-01-02T00:00:00Z", now_ms=0)
(0, 86400000)
"""

from __future__ import annotations

import datetime as dt
import math
import re
import time
from types import MappingProxyType
from typing import Any

from monitor.errors import ConfigError

__all__ = ["MAX_DURATION_MS", "MAX_INSTANT_MS", "MAX_SINCE_MS", "MIN_INSTANT_MS", "format_duration",
           "parse_duration", "parse_instant", "parse_since"]

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)\s*$")
_UNIT_MS = MappingProxyType({"ms": 1, "s": 1000, "m": 60_000, "h": 3_600_000, "d": 86_400_000})

MAX_DURATION_MS = 366 * 86_400_000  # policy windows: a year is already far past any sensible window
MAX_SINCE_MS = 100 * 365 * 86_400_000  # --since: a century back still lands inside DateTime64(3)
MIN_INSTANT_MS = int(dt.datetime(1900, 1, 1, tzinfo=dt.UTC).timestamp() * 1000)
MAX_INSTANT_MS = int(dt.datetime(2299, 12, 31, 23, 59, 59, tzinfo=dt.UTC).timestamp() * 1000)


def format_duration(ms: int) -> str:
    """The largest whole unit: 86400000 -> ``"1d"``."""
    for unit in ("d", "h", "m", "s"):
        if ms % _UNIT_MS[unit] == 0:
            return f"{ms // _UNIT_MS[unit]}{unit}"
    return f"{ms}ms"


def parse_duration(text: str | int | float, *, where: str = "duration", minimum_ms: int = 1,
                   maximum_ms: int = MAX_DURATION_MS) -> int:
    """``"15m"`` -> 900000 milliseconds; a bare number is seconds; ``ConfigError`` outside the bounds."""
    if isinstance(text, bool):
        raise ConfigError(f"{where} must be a duration like 15m; got {text!r}")
    if isinstance(text, int | float):
        value = float(text) * 1000
    else:
        match = _DURATION.match(str(text))
        if not match:
            raise ConfigError(f"{where} must be a duration like 90s, 15m, 1h or 7d; got {text!r}")
        value = float(match.group(1)) * _UNIT_MS[match.group(2)]  # 1e400 becomes inf, refused below
    if math.isnan(value):
        raise ConfigError(f"{where} must be a duration like 15m; got {text!r}")
    if value > maximum_ms:
        raise ConfigError(f"{where} must be at most {format_duration(maximum_ms)}; got {text!r}")
    if value <= 0:
        raise ConfigError(f"{where} must be > 0; got {text!r}")
    if value < minimum_ms:
        raise ConfigError(f"{where} must be at least {format_duration(minimum_ms)}; got {text!r}")
    return int(value)


def parse_instant(value: Any, *, where: str) -> int:
    """An RFC 3339 time (or a YAML timestamp) -> epoch milliseconds, UTC, within ``DateTime64(3)``."""
    if isinstance(value, dt.datetime):
        moment = value
    else:
        try:
            moment = dt.datetime.fromisoformat(str(value).replace("Z", "+00:00"))
        except ValueError:
            raise ConfigError(f"{where} must be an RFC 3339 time like 2026-11-01T00:00:00Z; "
                              f"got {value!r}") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    try:
        ms = int(moment.timestamp() * 1000)
    except (OverflowError, ValueError, OSError):
        ms = MIN_INSTANT_MS - 1
    if not MIN_INSTANT_MS <= ms <= MAX_INSTANT_MS:
        raise ConfigError(f"{where} must be between 1900-01-01 and 2299-12-31; got {value!r}")
    return ms


def parse_since(text: str, *, where: str = "--since", now_ms: int | None = None) -> int:
    """``--since``: a duration back from now (``7d``) or an RFC 3339 time -> epoch milliseconds."""
    if now_ms is None:
        now_ms = int(time.time() * 1000)
    if _DURATION.match(text):
        return now_ms - parse_duration(text, where=where, maximum_ms=MAX_SINCE_MS)
    return parse_instant(text, where=f"{where} (a duration like 7d or an RFC 3339 time)")
