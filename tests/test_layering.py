"""Dependencies point one way: detectors <- monitor <- streams, dashboards <- driftwatch.

Every import counts, at module level or inside a function, absolute or
relative (resolved against the importing module's package).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
STREAMING_ONLY = {"faust", "aiokafka", "mode"}
# Each package and the packages of ours it may import (itself included).
MAY_IMPORT = {
    "detectors": {"detectors"},
    "monitor": {"detectors", "monitor"},
    "streams": {"detectors", "monitor", "streams"},
    "dashboards": {"detectors", "monitor", "dashboards"},
    "driftwatch": {"detectors", "monitor", "streams", "dashboards", "driftwatch"},
}
PACKAGES = tuple(MAY_IMPORT)


def module_name(path: Path) -> str:
    parts = path.relative_to(REPO).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(source: str, module: str, *, is_package: bool = False) -> set[str]:
    """Every module ``source`` (the text of ``module``) imports, anywhere, relative imports made absolute."""
    package = module.split(".") if is_package else module.split(".")[:-1]
    found = set()
    for node in ast.walk(ast.parse(source, module)):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - node.level + 1]
                found.add(".".join([*base, *([node.module] if node.module else [])]))
            elif node.module:
                found.add(node.module)
    return found


def imported_modules(path: Path) -> set[str]:
    return imports_of(path.read_text(encoding="utf-8"), module_name(path), is_package=path.name == "__init__.py")


def imported_roots(path: Path) -> set[str]:
    return {module.split(".")[0] for module in imported_modules(path)}


def files(package: str) -> list[Path]:
    return sorted((REPO / package).rglob("*.py"))


def test_relative_imports_resolve_against_the_package() -> None:
    source = "from . import alerts\nfrom .storage import store\nfrom ..streams import app\n"
    assert imports_of(source, "monitor.stages.probe") == {"monitor.stages", "monitor.stages.storage",
                                                          "monitor.streams"}
    assert imports_of("from . import tables\n", "dashboards", is_package=True) == {"dashboards"}
    assert imports_of("from ..streams import app\n", "dashboards.model") == {"streams"}


def test_imports_inside_functions_count() -> None:
    source = ("def run():\n    if True:\n        from streams.runner import run_worker\n"
              "        import dashboards.build\n")
    assert imports_of(source, "monitor.example") == {"streams.runner", "dashboards.build"}


@pytest.mark.parametrize("package", PACKAGES)
def test_imports_point_one_way(package: str) -> None:
    ours = set(PACKAGES)
    offenders = {str(p.relative_to(REPO)): sorted((imported_roots(p) & ours) - MAY_IMPORT[package])
                 for p in files(package)}
    assert not {k: v for k, v in offenders.items() if v}


@pytest.mark.parametrize("package", PACKAGES)
def test_only_streams_imports_kafka_libraries(package: str) -> None:
    if package == "streams":
        return
    offenders = {str(p.relative_to(REPO)): sorted(imported_roots(p) & STREAMING_ONLY) for p in files(package)}
    assert not {k: v for k, v in offenders.items() if v}


def test_detectors_are_pure() -> None:
    forbidden = {"monitor", "streams", "dashboards", "driftwatch", "clickhouse_connect", "chdb",
                 "kafka"} | STREAMING_ONLY
    offenders = {str(p.relative_to(REPO)): sorted(imported_roots(p) & forbidden) for p in files("detectors")}
    assert not {k: v for k, v in offenders.items() if v}


def test_monitor_does_not_import_streams_at_module_level() -> None:
    offenders = []
    for path in files("monitor"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in tree.body:
            if isinstance(node, ast.Import | ast.ImportFrom):
                names = [node.module] if isinstance(node, ast.ImportFrom) else [a.name for a in node.names]
                if any(name and name.split(".")[0] == "streams" for name in names):
                    offenders.append(str(path.relative_to(REPO)))
    assert not offenders


@pytest.mark.parametrize("package", PACKAGES)
def test_the_layering_check_sees_files(package: str) -> None:
    assert len(files("monitor")) > 5 and len(files("detectors")) >= 2
    found = files(package)
    assert len(found) >= 2
    # And it sees their imports: every package but detectors imports one of ours somewhere.
    if package != "detectors":
        assert any(imported_roots(p) & (MAY_IMPORT[package] - {package}) for p in found)
