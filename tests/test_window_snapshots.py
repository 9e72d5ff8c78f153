"""Rolling-window snapshots: exact round trip as bytes, the old list layout still read."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from detectors.windows import RollingWindow


def test_round_trip_keeps_every_bit_nan_included() -> None:
    rng = np.random.default_rng(2)
    window = RollingWindow(("a", "b"), max_count=50)
    for ts in range(80):
        window.append(1000 * ts, (float(rng.normal()), math.nan if ts % 7 == 0 else float(rng.random()) / 3))
    again = RollingWindow.from_snapshot(json.loads(json.dumps(window.snapshot())))
    assert repr(again.rows()) == repr(window.rows()) and again.max_count == 50
    assert len(RollingWindow.from_snapshot(RollingWindow(("a",), 5).snapshot())) == 0


def test_version_one_lists_are_still_read_and_unknown_formats_refused() -> None:
    old = {"format": "rolling_window.v1", "columns": ["a"], "max_count": 3, "rows": [[1000.0, None], [2000.0, 0.5]]}
    window = RollingWindow.from_snapshot(old)
    assert window.timestamps().tolist() == [1000.0, 2000.0] and math.isnan(window.column("a")[0])
    with pytest.raises(ValueError, match=r"rolling_window\.v2.*got 'rolling_window\.v9'"):
        RollingWindow.from_snapshot({**old, "format": "rolling_window.v9"})
    with pytest.raises(ValueError, match="multiple of the row width"):
        RollingWindow.from_snapshot({**window.snapshot(), "rows": "AAAAAAAAAAA="})
