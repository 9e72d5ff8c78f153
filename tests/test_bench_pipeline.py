"""``driftwatch bench pipeline --memory``: one model version's state per stage, measured with tracemalloc."""

from __future__ import annotations

import re

from driftwatch.bench.pipeline import bench_pipeline


def test_memory_reports_each_stage_state_of_one_model_version() -> None:
    out = bench_pipeline(n_events=600, batch=256, full_window=False, memory=True)
    line = next(line for line in out.splitlines() if line.startswith("state of one model version"))
    sizes = {name: float(mib) for name, mib in re.findall(r"(\w+) (\d+\.\d+)", line.split("(", 1)[1])}
    assert {"behaviour", "drift", "signatures", "motifs"} <= set(sizes)
    # The motif miner holds at least its open step's count-min sketch (4 x 131,072 16-bit counters: 1 MiB).
    assert sizes["motifs"] >= 1.0
    total = float(re.search(r"\): (\d+\.\d+) MiB", line).group(1))
    assert abs(total - sum(sizes.values())) < 0.02
