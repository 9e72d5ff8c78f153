"""Every module imports on its own, in a fresh interpreter: no import cycle depends on what came first."""

from __future__ import annotations

import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PACKAGES = ("detectors", "monitor", "streams", "dashboards", "driftwatch")


def modules() -> list[str]:
    """Dotted names of every module of our packages (``__main__`` is a script: importing it runs the CLI)."""
    names = []
    for package in PACKAGES:
        for path in sorted((REPO / package).rglob("*.py")):
            parts = path.relative_to(REPO).with_suffix("").parts
            if parts[-1] == "__main__":
                continue
            names.append(".".join(parts[:-1] if parts[-1] == "__init__" else parts))
    return names


def import_alone(module: str) -> tuple[str, int, str]:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    result = subprocess.run([sys.executable, "-c", f"import {module}"], cwd=REPO, env=env,
                            capture_output=True, text=True, timeout=300)
    return module, result.returncode, (result.stderr.strip().splitlines() or [""])[-1]


def test_every_module_imports_on_its_own() -> None:
    names = modules()
    assert len(names) > 100 and {"driftwatch.cli.app", "driftwatch.bench.registry", "streams.baseline"} <= set(names)
    with ThreadPoolExecutor(max_workers=min(8, os.cpu_count() or 1)) as pool:
        failures = {module: error for module, code, error in pool.map(import_alone, names) if code != 0}
    assert not failures
