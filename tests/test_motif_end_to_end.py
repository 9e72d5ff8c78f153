"""The shipped pipeline finds an unknown trigger on its own: the drift stage's
refusal flags feed the motif miner, with no test-local flagging stage."""

from __future__ import annotations

import json
from pathlib import Path

from monitor.alerts import Findings
from monitor.registry import build_pipeline
from monitor.settings import load_settings
from tests.test_motifs import TRIGGER, planted_stream


def test_default_pipeline_mines_an_unknown_trigger_from_drift_flags(shared_data: Path, tmp_path: Path) -> None:
    events, planted = planted_stream(shared_data)
    # A small window so 7,000 events fill it; every other setting is the shipped default.
    settings = load_settings(store=f"chdb://{tmp_path}/s", motif_window_events=3000, motif_buckets=3,
                             motif_min_support=8, motif_min_entities=3)
    pipeline = build_pipeline(settings)
    findings = Findings()
    for start in range(0, len(events), 1024):
        findings.extend(pipeline.process(events[start:start + 1024]))

    motifs = [a for a in findings.alerts if a.detector == "motif"]
    assert motifs, "the motif miner raised nothing on drift-flagged refusals"
    ngrams = [json.loads(a.evidence)["ngram"] for a in motifs]
    assert all(TRIGGER in ngram or ngram in TRIGGER for ngram in ngrams), ngrams
    assert any(ngram == TRIGGER for ngram in ngrams), ngrams
    for alert in motifs:
        assert set(json.loads(alert.evidence)["event_ids"]) <= planted
    # The drift stage saw the same shift: its refusal flags are what the miner used.
    assert any(a.detector in ("changepoint", "divergence") and "refusal" in a.metric for a in findings.alerts)
    assert not [a for a in findings.alerts if a.detector in ("trigger", "canary")]  # no signature knows it
