"""Count-min sketch: bounded-memory counts that never underestimate.

Cormode and Muthukrishnan (2005), "An improved data stream summary: the
count-min sketch and its applications", J. Algorithms 55(1). ``depth`` rows
of ``width`` counters; an item adds one to one counter per row (chosen by a
row-specific hash) and its estimate is the minimum over rows. The estimate is
at least the true count and exceeds it by more than ``e * total / width``
with probability at most ``exp(-depth)``. Sketches of equal shape add, so a
window of several buckets is the sum of theirs.

Examples
--------
>>> import numpy as np
>>> sketch = CountMinSketch(width=1024)
>>> sketch.add(np.array([7, 7, 9], dtype=np.uint64))
>>> sketch.estimate(np.array([7, 9, 11], dtype=np.uint64)).tolist()
[2, 1, 0]
"""

from __future__ import annotations

import base64
import zlib
from collections.abc import Sequence
from typing import Any

import numpy as np

__all__ = ["CountMinSketch"]

FORMAT = "count_min.v2"
_FORMAT_V1 = "count_min.v1"  # int32, always deflated; still read
# Odd multipliers for multiply-shift hashing (Dietzfelbinger et al. 1997), one per row.
_NARROW = np.dtype(np.uint16)
_NARROW_MAX = int(np.iinfo(_NARROW).max)
_MULTIPLIERS = (0x9E3779B97F4A7C15, 0xC2B2AE3D27D4EB4F, 0x165667B19E3779F9, 0xD6E8FEB86659FD93,
                0xFF51AFD7ED558CCD, 0xC4CEB9FE1A85EC53)


class CountMinSketch:
    """Approximate counts of 64-bit item hashes.

    Parameters
    ----------
    width
        Counters per row, a power of two.
    depth
        Rows (at most 6).
    """

    def __init__(self, width: int = 1 << 17, depth: int = 4) -> None:
        if width < 2 or width & (width - 1):
            raise ValueError(f"width must be a power of two >= 2; got {width!r}")
        if not 1 <= depth <= len(_MULTIPLIERS):
            raise ValueError(f"depth must be in [1, {len(_MULTIPLIERS)}]; got {depth!r}")
        self.width = width
        self.depth = depth
        # Counters in 16 bits while they fit, widened to 32 (a step never counts 2**31) before one could
        # wrap: most sketches never need more, and half the bytes is a megabyte per sketch.
        self.table = np.zeros((depth, width), dtype=_NARROW)
        self._top = 0  # at least the largest counter (exact after a widening check)
        self._shift = np.uint64(64 - (width.bit_length() - 1))

    def columns(self, items: np.ndarray) -> np.ndarray:
        """Each item's counter in each row: an int64 array of shape ``(depth, len(items))``."""
        multipliers = np.array(_MULTIPLIERS[:self.depth], dtype=np.uint64)[:, None]
        with np.errstate(over="ignore"):
            # Columns are below 2**63, so viewing them as int64 is exact (and astype is slow here).
            return ((np.asarray(items, dtype=np.uint64)[None, :] * multipliers) >> self._shift).view(np.int64)

    def add(self, items: np.ndarray, *, columns: np.ndarray | None = None) -> None:
        """Count each item of ``items`` (uint64 hashes) once per occurrence; ``columns``: their :meth:`columns`."""
        if columns is not None and columns.shape != (self.depth, len(items)):
            raise ValueError(f"columns must have shape {(self.depth, len(items))}; got {columns.shape}")
        if len(items) == 0:
            return
        if columns is None:
            columns = self.columns(items)
        top = self._top
        for row, row_columns in enumerate(columns):
            counts = np.bincount(row_columns, minlength=self.width)
            if self.table.dtype == _NARROW:
                bound = self._top + int(counts.max())  # no counter of the row grows past this
                if bound > _NARROW_MAX:
                    bound = int((self.table[row] + counts).max())  # in int64: the row's largest, exactly
                    if bound > _NARROW_MAX:
                        self.table = self.table.astype(np.int32)
                top = max(top, bound)
            # Added in the table's own dtype (a mixed-type add cost twice as much): exact, since each count is
            # at most its counter's new value, which the dtype holds (checked above; int32 holds any step).
            self.table[row] += counts.astype(self.table.dtype)
        self._top = top

    def estimate(self, items: np.ndarray) -> np.ndarray:
        """Upper-bound estimates of the items' counts."""
        columns = self.columns(items)
        return np.min(self.table[np.arange(self.depth)[:, None], columns], axis=0).astype(np.int32, copy=False)

    def estimate_without(self, items: np.ndarray, later: np.ndarray | None = None, *,
                         later_columns: Sequence[np.ndarray] = ()) -> np.ndarray:
        """:meth:`estimate` as it was before the items ``later`` were added (exactly, row by row).

        Online scoring adds a whole batch at once and tests an event in its middle: this takes
        back what the batch's later events added, so the same events give the same estimates
        whatever the batch boundaries. ``later_columns`` gives later items by their :meth:`columns`
        instead (arrays of ``depth`` rows), as :meth:`add` had them: not hashed again.
        """
        columns = self.columns(items)
        parts = [*later_columns, *([self.columns(later)] if later is not None else [])]
        later_all = np.concatenate(parts, axis=1) if parts else np.zeros((self.depth, 0), dtype=np.int64)
        rows = []
        for row in range(self.depth):
            wanted = columns[row]
            # What the later items added to each wanted counter: a count of their columns (one pass, cheaper
            # than matching them against the wanted ones: later items repeat the wanted n-grams thousands of
            # times in a busy step).
            added = np.bincount(later_all[row], minlength=self.width)[wanted]
            rows.append(self.table[row, wanted] - added)
        return np.min(np.array(rows), axis=0)

    def merged(self, others: list[CountMinSketch]) -> CountMinSketch:
        """A new sketch counting this one's items and the others'."""
        out = CountMinSketch(self.width, self.depth)
        out._set(self.table.astype(np.int64) + sum((other.table for other in others), np.zeros(self.table.shape,
                                                                                               dtype=np.int64)))
        return out

    def _set(self, table: np.ndarray) -> None:
        """Hold ``table``'s counts in the narrowest of 16 and 32 bits that fits them."""
        self._top = int(table.max(initial=0))
        self.table = table.astype(_NARROW if self._top <= _NARROW_MAX else np.int32)

    def snapshot(self, *, compress: bool = True) -> dict[str, Any]:
        """JSON-ready state: the table in its narrowest unsigned type, base64, deflated if ``compress``.

        Deflating a busy table (zlib level 1) takes about 20 ms: worth it once
        for a bucket that no longer changes, not at every checkpoint for the
        one that still does (``compress=False``, about 2 ms).
        """
        top = int(self.table.max(initial=0))
        dtype = "uint8" if top < 1 << 8 else "uint16" if top < 1 << 16 else "uint32"
        raw = self.table.astype(np.dtype(dtype).newbyteorder("<")).tobytes()
        return {"format": FORMAT, "width": self.width, "depth": self.depth, "dtype": dtype,
                "compression": "zlib" if compress else "none",
                "table": base64.b64encode(zlib.compress(raw, 1) if compress else raw).decode("ascii")}

    @classmethod
    def restore(cls, state: dict[str, Any]) -> CountMinSketch:
        """Load a :meth:`snapshot` (``count_min.v2``, or ``count_min.v1``: int32, deflated)."""
        version = state.get("format")
        if version not in (FORMAT, _FORMAT_V1):
            raise ValueError(f"count-min snapshot format must be {FORMAT!r} or {_FORMAT_V1!r}; got {version!r}")
        sketch = cls(int(state["width"]), int(state["depth"]))
        raw = base64.b64decode(state["table"])
        if version == _FORMAT_V1:
            raw, dtype = zlib.decompress(raw), np.dtype("<i4")
        else:
            dtype_name, compression = state.get("dtype"), state.get("compression")
            if dtype_name not in ("uint8", "uint16", "uint32") or compression not in ("zlib", "none"):
                raise ValueError("count-min snapshot dtype must be uint8, uint16 or uint32 and compression zlib or "
                                 f"none; got {dtype_name!r} and {compression!r}")
            raw = zlib.decompress(raw) if state["compression"] == "zlib" else raw
            dtype = np.dtype(state["dtype"]).newbyteorder("<")
        table = np.frombuffer(raw, dtype=dtype)
        if table.size != sketch.depth * sketch.width:
            raise ValueError(f"count-min snapshot holds {table.size} counters; expected {sketch.depth * sketch.width}")
        sketch._set(table.reshape(sketch.depth, sketch.width))
        return sketch
