"""Check (a): every dashboard type-checks against @grafana/schema with tsc --noEmit,
and a broken dashboard does not."""

from __future__ import annotations

import copy
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from dashboards.catalog import boards
from dashboards.typecheck import TYPECHECK_DIR, ensure_installed, run_tsc, write_sources


@pytest.fixture(scope="module")
def workdir() -> Iterator[Path]:
    # No skip: without node and npm this errors, as CI must (the Makefile's `npm ci` runs first there).
    ensure_installed()
    folder = TYPECHECK_DIR / "generated" / uuid.uuid4().hex[:12]
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


def test_every_dashboard_type_checks(workdir: Path) -> None:
    files = write_sources([b.to_json() for b in boards()], workdir / "ok")
    assert len(files) == 4
    result = run_tsc(files)
    assert result.ok, result.output


def _broken() -> dict[str, dict[str, Any]]:
    """Dashboards each with one mistake the schema knows about."""
    fleet = boards()[0].to_json()
    cases = {}
    typo = copy.deepcopy(fleet)
    typo["panels"][0]["gridpos"] = typo["panels"][0].pop("gridPos")  # misspelt key
    cases["typo"] = typo
    mode = copy.deepcopy(fleet)
    mode["panels"][0]["options"]["colorMode"] = "rainbow"  # not a BigValueColorMode
    cases["mode"] = mode
    query = copy.deepcopy(fleet)
    del query["panels"][1]["targets"][0]["rawSql"]  # a ClickHouse SQL query without SQL
    cases["query"] = query
    version = copy.deepcopy(fleet)
    version["schemaVersion"] = "41"  # a string where the schema wants a number
    cases["version"] = version
    for name, board in cases.items():
        board["uid"] = f"broken-{name}"
    return cases


def test_a_broken_dashboard_fails_the_check(workdir: Path) -> None:
    cases = _broken()
    files = write_sources(list(cases.values()), workdir / "broken")
    result = run_tsc(files)
    assert not result.ok
    for name in cases:  # each mistake is caught on its own, in its own file
        assert f"broken-{name}.ts(" in result.output, f"{name} passed:\n{result.output}"
    assert "gridpos" in result.output and "rainbow" in result.output and "rawSql" in result.output


def test_missing_npm_fails_loudly(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from dashboards import typecheck

    monkeypatch.setattr(typecheck, "TYPECHECK_DIR", tmp_path)  # nothing installed there
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    with pytest.raises(typecheck.TypecheckError, match=r"needs Node\.js and npm"):
        typecheck.ensure_installed()
