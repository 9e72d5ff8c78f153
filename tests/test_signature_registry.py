"""Live signature reload (file and table), minted canaries end to end, never their value."""

from __future__ import annotations

import json
import logging
import os
import stat
from collections.abc import Callable
from pathlib import Path

import pytest

from detectors.signatures.canary import keyed_hash, mint_canary
from detectors.signatures.signature import Signature
from monitor.events import EventDecoder
from monitor.pipeline import KeyBatch
from monitor.signature_files import default_signatures
from monitor.signature_registry import FileSignatures, SignatureRegistry, StaticSignatures, TableSignatures
from monitor.stages.signatures import SignatureStage
from monitor.storage.signatures import SignatureTable
from monitor.storage.store import Store
from tests.conftest import make_event

DECODER = EventDecoder()
KEY = b"test-canary-key-0123456789"


def batch_of(*events: dict) -> KeyBatch:
    decoded = [DECODER.decode(json.dumps(e).encode()) for e in events]
    return KeyBatch((decoded[0].model_id, decoded[0].model_version), decoded)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def write_file(path: Path, patterns: list[str], *, bump_ns: int = 0) -> None:
    entries = [{"id": f"sig-{i}", "pattern": p, "applies_to": "input"} for i, p in enumerate(patterns)]
    path.write_text(json.dumps({"signatures": entries}), encoding="utf-8")
    if bump_ns:  # a distinct mtime even on coarse-grained file systems
        info = path.stat()
        os.utime(path, ns=(info.st_atime_ns, info.st_mtime_ns + bump_ns))


def test_file_signatures_reload_without_restart_at_most_every_interval(tmp_path: Path,
                                                                        caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "signatures.json"
    write_file(path, ["velvet orchard"])
    clock = Clock()
    stage = SignatureStage(SignatureRegistry([FileSignatures(path)]), reload_seconds=10, clock=clock)
    event = make_event(1, input="the velvet orchard and the copper lantern")
    assert [a.metric for a in stage.process(batch_of(event)).alerts] == ["signature:sig-0"]

    write_file(path, ["velvet orchard", "copper lantern"], bump_ns=5_000_000_000)
    clock.now += 5  # within the interval: not checked yet
    assert len(stage.process(batch_of(event)).alerts) == 1
    clock.now += 6
    assert sorted(a.metric for a in stage.process(batch_of(event)).alerts) == ["signature:sig-0", "signature:sig-1"]
    assert stage.reloads == 1  # the first load is at start-up

    path.write_text("signatures: [ {id: broken", encoding="utf-8")  # a bad edit keeps the last good set
    clock.now += 11
    with caplog.at_level(logging.WARNING):
        assert len(stage.process(batch_of(event)).alerts) == 2
    assert "keeping the last set" in caplog.text


def test_minted_canary_in_the_table_is_caught_and_never_revealed(store_dsn: str) -> None:
    canary = mint_canary(__import__("random").Random(4).getrandbits)
    digest = keyed_hash(KEY, canary)
    signature = Signature(id=f"canary-{digest[:12]}", pattern="", kind="canary", applies_to="output",
                          scope="acme", severity="critical", pattern_hash=digest)
    with Store(store_dsn) as store:
        store.ensure_schema()
        registry = SignatureRegistry([StaticSignatures(default_signatures()), TableSignatures(store_dsn)])
        stage = SignatureStage(registry, canary_key=KEY, reload_seconds=0)
        leak = make_event(1, tenant_id="globex",
                          output=f"My instructions say: {canary.upper().replace('-', ' ')} and more")
        assert stage.process(batch_of(leak)).alerts == []  # not in the table yet

        SignatureTable(store).write([signature])
        batch = batch_of(leak)
        [alert] = stage.process(batch).alerts
        assert (alert.detector, alert.severity, alert.metric) == ("canary", "critical", f"canary:{signature.id}")
        assert batch.flags == [{"canary"}]
        evidence = json.loads(alert.evidence)
        assert evidence["owner_tenant"] == "acme" and evidence["cross_tenant"] is True
        assert evidence["canary_hash"] == digest[:16]
        body = leak["output"]
        assert body[evidence["offsets"][0]:evidence["offsets"][1]].lower().replace(" ", "-") == canary
        # The value appears nowhere we keep: not in the alert, not in the table.
        stored = json.dumps(SignatureTable(store).rows(active_only=False), default=str)
        for where in (json.dumps(alert.to_json()), stored):
            assert canary[4:10] not in where.lower() and canary.upper()[4:10] not in where

        SignatureTable(store).write([signature], active=False)  # revoked: matched no more
        assert stage.process(batch_of(leak)).alerts == []


def test_canary_command_prints_once_stores_only_the_hash(cli: Callable, tmp_path: Path) -> None:
    store = f"chdb://{tmp_path / 'store'}"
    minted = cli("canary", "new", "--tenant", "acme", "--store", store)
    canary = minted.stdout.strip()
    assert canary.startswith("dwc-") and "canary id:" in minted.stderr
    key_file = tmp_path / "store" / "canary.key"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    events = tmp_path / "events.jsonl"
    events.write_text(json.dumps(make_event(1, tenant_id="acme", output=f"leaked {canary}")) + "\n")
    replayed = cli("replay", "--store", store, str(events))
    assert "canary       critical 1" in replayed.stdout
    with Store(store) as handle:
        dumped = json.dumps(handle.query("SELECT * FROM signatures")[1], default=str)
        alerts = json.dumps(handle.query("SELECT * FROM alerts")[1], default=str)
    assert "canary:canary-" in alerts
    for text in (dumped, alerts, minted.stderr):
        assert canary not in text and canary[4:].replace("-", "") not in text
