"""The values a ClickHouse column type can hold, so validation matches storage.

The event decoder takes its numeric bounds from here rather than writing the
numbers out, and a test reads the schema data (:mod:`monitor.storage.tables`) to check that every bound it
enforces is the range of the column the value is stored in.

``DateTime64(p)`` uses ClickHouse's documented supported range,
1900-01-01 00:00:00 to 2299-12-31 23:59:59.(9 x p) UTC. chdb 4.4 round-trips a
wider range, but older servers clamp outside the documented one, and
``toYYYYMM`` (the partition key) is only promised inside it.

Examples
--------
>>> column_range("Nullable(UInt32)")
ColumnRange(low=0, high=4294967295)
>>> column_range("DateTime64(3, 'UTC')").high  # 2299-12-31T23:59:59.999Z in ms
10413791999999
>>> column_range("String") is None
True
"""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass
from datetime import UTC, datetime

__all__ = ["ColumnRange", "column_range"]

_DATETIME64_LOW = datetime(1900, 1, 1, tzinfo=UTC)
_DATETIME64_HIGH = datetime(2300, 1, 1, tzinfo=UTC)  # exclusive
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_WRAPPERS = re.compile(r"^(?:Nullable|LowCardinality)\((.*)\)$")
_INTEGER = re.compile(r"^(U?)Int(8|16|32|64|128|256)$")
_DATETIME64 = re.compile(r"^DateTime64\(\s*(\d)\s*(?:,\s*'[^']*'\s*)?\)$")


@dataclass(frozen=True, slots=True)
class ColumnRange:
    """Inclusive bounds of the values a column stores (ticks for DateTime64)."""

    low: int | float
    high: int | float

    def __contains__(self, value: object) -> bool:
        return isinstance(value, int | float) and self.low <= value <= self.high


def column_range(column_type: str) -> ColumnRange | None:
    """The inclusive range of a numeric or time column type; ``None`` for other types.

    ``Nullable(...)`` and ``LowCardinality(...)`` are unwrapped. ``DateTime64(p)``
    is counted in its ticks (milliseconds for ``p = 3``) since the Unix epoch.
    """
    text = column_type.strip()
    while (wrapped := _WRAPPERS.match(text)) is not None:
        text = wrapped.group(1).strip()
    if (integer := _INTEGER.match(text)) is not None:
        bits = int(integer.group(2))
        if integer.group(1):
            return ColumnRange(0, (1 << bits) - 1)
        return ColumnRange(-(1 << (bits - 1)), (1 << (bits - 1)) - 1)
    if text == "Float64":
        return ColumnRange(-sys.float_info.max, sys.float_info.max)
    if text == "Float32":
        largest = (2 - 2.0 ** -23) * 2.0 ** 127
        return ColumnRange(-largest, largest)
    if text == "DateTime":
        return ColumnRange(0, (1 << 32) - 1)
    if (datetime64 := _DATETIME64.match(text)) is not None:
        per_second = 10 ** int(datetime64.group(1))
        return ColumnRange(_ticks(_DATETIME64_LOW, per_second), _ticks(_DATETIME64_HIGH, per_second) - 1)
    return None


def _ticks(moment: datetime, per_second: int) -> int:
    delta = moment - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * per_second
