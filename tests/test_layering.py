"""Dependencies point one way: detectors <- monitor <- streams."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
STREAMING_ONLY = {"faust", "aiokafka", "mode"}
PACKAGES = ("detectors", "monitor", "streams", "dashboards")


def imported_roots(path: Path) -> set[str]:
    roots = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            roots.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            roots.add(node.module.split(".")[0])
    return roots


def files(package: str) -> list[Path]:
    return sorted((REPO / package).rglob("*.py"))


@pytest.mark.parametrize("package", PACKAGES)
def test_only_streams_imports_kafka_libraries(package: str) -> None:
    if package == "streams":
        return
    offenders = {str(p.relative_to(REPO)): sorted(imported_roots(p) & STREAMING_ONLY) for p in files(package)}
    assert not {k: v for k, v in offenders.items() if v}


def test_detectors_are_pure() -> None:
    forbidden = {"monitor", "streams", "dashboards", "clickhouse_connect", "chdb", "kafka"} | STREAMING_ONLY
    offenders = {str(p.relative_to(REPO)): sorted(imported_roots(p) & forbidden) for p in files("detectors")}
    assert not {k: v for k, v in offenders.items() if v}


def test_monitor_does_not_import_streams_at_module_level() -> None:
    # The `run` command may import streams lazily inside a function; module level may not.
    offenders = []
    for path in files("monitor"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in tree.body:
            if isinstance(node, ast.Import | ast.ImportFrom):
                names = [node.module] if isinstance(node, ast.ImportFrom) else [a.name for a in node.names]
                if any(name and name.split(".")[0] == "streams" for name in names):
                    offenders.append(str(path.relative_to(REPO)))
    assert not offenders


def test_the_layering_check_sees_files() -> None:
    assert len(files("monitor")) > 5 and len(files("detectors")) >= 2
