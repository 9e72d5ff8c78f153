"""Reading the YAML (or JSON) configuration files: signatures, policies.

Examples
--------
>>> import tempfile, pathlib
>>> path = pathlib.Path(tempfile.mkdtemp()) / "p.yaml"
>>> _ = path.write_text("rules: []\\n")
>>> read_yaml(path, "policy")
{'rules': []}
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from monitor.errors import ConfigError

__all__ = ["read_yaml"]


def read_yaml(path: str | Path, kind: str) -> Any:
    """The parsed document at ``path``; errors say which ``kind`` of file and why (JSON is YAML)."""
    path = Path(path)
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"cannot read {kind} file {path}: {exc.strerror}") from exc
    except yaml.YAMLError as exc:
        raise ConfigError(f"{kind} file {path} is not valid YAML: {exc}") from exc
