"""Rolling windows of per-event feature rows, bounded by count and by age.

A window keeps the newest ``max_count`` rows; reading it with ``max_age_ms``
keeps only rows within that many milliseconds of the newest. Rows are
tuples ``(ts_ms, v1, v2, ...)`` in the column order given at construction,
so one window serves every metric of a stream and its snapshot is a small
JSON value whose size is bounded by ``max_count``.

Examples
--------
>>> window = RollingWindow(("refusal", "chars"), max_count=3)
>>> for ts, refusal in enumerate([0.0, 1.0, 0.0, 1.0]):
...     window.append(1000 * ts, (refusal, 10.0))
>>> window.column("refusal").tolist()
[1.0, 0.0, 1.0]
>>> window.column("refusal", max_age_ms=1000).tolist()
[0.0, 1.0]
"""

from __future__ import annotations

import base64
import math
from collections import deque
from collections.abc import Sequence
from typing import Any

import numpy as np

__all__ = ["RollingWindow"]

FORMAT = "rolling_window.v2"
_FORMAT_V1 = "rolling_window.v1"  # rows as JSON lists; still read


class RollingWindow:
    """The newest ``max_count`` rows of a stream, readable per column and by age.

    Parameters
    ----------
    columns
        Names of the values in each row (the timestamp comes first, unnamed).
    max_count
        Most rows kept; the oldest is dropped first.
    """

    def __init__(self, columns: Sequence[str], max_count: int) -> None:
        if max_count < 1:
            raise ValueError(f"max_count must be >= 1; got {max_count!r}")
        if len(set(columns)) != len(columns) or not columns:
            raise ValueError(f"columns must be distinct and non-empty; got {list(columns)!r}")
        self.columns = tuple(columns)
        self.max_count = int(max_count)
        self._index = {name: position + 1 for position, name in enumerate(self.columns)}
        self._rows: deque[tuple[float, ...]] = deque(maxlen=self.max_count)

    def __len__(self) -> int:
        return len(self._rows)

    @property
    def full(self) -> bool:
        return len(self._rows) == self.max_count

    def append(self, ts_ms: int, values: Sequence[float]) -> None:
        """Add one row; ``values`` in column order."""
        if len(values) != len(self.columns):
            raise ValueError(f"row must have {len(self.columns)} values; got {len(values)}")
        self._rows.append((float(ts_ms), *map(float, values)))

    def _recent(self, max_age_ms: int | None) -> list[tuple[float, ...]]:
        if not max_age_ms or not self._rows:
            return list(self._rows)
        newest = self._rows[-1][0]
        return [row for row in self._rows if row[0] >= newest - max_age_ms]

    def column(self, name: str, *, max_age_ms: int | None = None) -> np.ndarray:
        """One column's values, oldest first, within ``max_age_ms`` of the newest row."""
        try:
            position = self._index[name]
        except KeyError:
            raise ValueError(f"unknown column {name!r}; expected one of {', '.join(self.columns)}") from None
        return np.array([row[position] for row in self._recent(max_age_ms)], dtype=np.float64)

    def matrix(self, *, max_age_ms: int | None = None) -> np.ndarray:
        """All rows as one array, oldest first: the timestamp, then the columns in order."""
        rows = self._recent(max_age_ms)
        return np.array(rows, dtype=np.float64) if rows else np.zeros((0, len(self.columns) + 1))

    def timestamps(self, *, max_age_ms: int | None = None) -> np.ndarray:
        return np.array([row[0] for row in self._recent(max_age_ms)], dtype=np.float64)

    def rows(self) -> list[tuple[float, ...]]:
        return list(self._rows)

    def extend_rows(self, rows: Sequence[Sequence[float]]) -> None:
        """Add whole rows ``(ts_ms, v1, ...)`` (from another window of the same columns)."""
        for row in rows:
            if len(row) != len(self.columns) + 1:
                raise ValueError(f"row must have {len(self.columns) + 1} values; got {len(row)}")
            self._rows.append(tuple(float(v) for v in row))

    def snapshot(self) -> dict[str, Any]:
        """JSON-ready state: the rows as base64 of little-endian float64, row after row.

        Bytes, not a JSON list of floats: a checkpoint of a full window then
        costs a copy instead of formatting thousands of floats, and NaN needs
        no stand-in.
        """
        table = self.matrix().astype("<f8", copy=False)
        return {"format": FORMAT, "columns": list(self.columns), "max_count": self.max_count,
                "rows": base64.b64encode(table.tobytes()).decode("ascii")}

    @classmethod
    def from_snapshot(cls, state: dict[str, Any]) -> RollingWindow:
        """Load a :meth:`snapshot` (``rolling_window.v2``, or ``v1``: rows as lists, None for NaN)."""
        version = state.get("format") if isinstance(state, dict) else type(state).__name__
        if version not in (FORMAT, _FORMAT_V1):
            raise ValueError(f"window snapshot format must be {FORMAT!r} or {_FORMAT_V1!r}; got {version!r}")
        window = cls(state["columns"], state["max_count"])
        if version == _FORMAT_V1:
            window.extend_rows([[math.nan if v is None else v for v in row] for row in state["rows"]])
            return window
        flat = np.frombuffer(base64.b64decode(state["rows"]), dtype="<f8")
        width = len(window.columns) + 1
        if flat.size % width:
            raise ValueError(f"window snapshot holds {flat.size} values, not a multiple of the row width {width}")
        window.extend_rows(flat.reshape(-1, width).tolist())
        return window
