"""Dashboards as code: the committed files are what the code generates, built from the schema."""

from __future__ import annotations

import ast
import json
import re
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from dashboards.alert_rules import alert_rules
from dashboards.build import OUTPUT_DIR, render, stale
from dashboards.catalog import boards
from dashboards.tables import SchemaNameError, tables
from driftwatch.cli.app import build_cli

REPO = Path(__file__).resolve().parents[1]


def test_committed_files_equal_what_the_code_generates() -> None:
    assert stale(OUTPUT_DIR) == [], "run `driftwatch dashboards build` and commit the result"


def test_build_check_reports_a_stale_file(tmp_path: Path) -> None:
    runner = CliRunner()
    assert runner.invoke(build_cli(), ["dashboards", "build", "--out", str(tmp_path)]).exit_code == 0
    (tmp_path / "json" / "fleet.json").write_text("{}\n", encoding="utf-8")
    result = runner.invoke(build_cli(), ["dashboards", "build", "--check", "--out", str(tmp_path)])
    assert result.exit_code == 1
    assert "json/fleet.json" in result.output


def test_the_four_dashboards_and_their_panels() -> None:
    built = {b.uid: b.to_json() for b in boards()}
    assert set(built) == {"driftwatch-fleet", "driftwatch-model", "driftwatch-canaries", "driftwatch-service"}
    for board in built.values():
        ids = [p["id"] for p in board["panels"]]
        assert len(ids) == len(set(ids)), board["uid"]
        for panel in board["panels"]:
            assert 0 <= panel["gridPos"]["x"] and panel["gridPos"]["x"] + panel["gridPos"]["w"] <= 24
            (target,) = panel["targets"]
            assert target["datasource"]["type"] == "grafana-clickhouse-datasource"
            assert target["editorType"] == "sql" and target["rawSql"].startswith("SELECT")
    names = {v["name"] for v in built["driftwatch-model"]["templating"]["list"]}
    assert {"datasource", "model", "version"} <= names


def test_replacing_tables_are_read_with_final() -> None:
    # events is the exception: the largest table, read only for rates, where a replayed row is still work done.
    reads = re.compile(r"\bFROM (\w+)(?: AS \w+)?( FINAL)?")
    unmerged = []
    for board in boards():
        for panel in board.panels:
            for table, final in reads.findall(panel.sql):
                if table != "events" and getattr(tables(), table).replacing and not final:
                    unmerged.append(f"{board.uid} {panel.title!r} reads {table}")
    assert not unmerged
    assert reads.findall(boards()[0].panels[0].sql) == [("alerts", " FINAL")]


def test_an_unknown_column_fails_the_build() -> None:
    with pytest.raises(SchemaNameError, match="no column 'sevrity'"):
        _ = tables().alerts.sevrity


def test_provisioning_files_parse_and_point_at_one_datasource() -> None:
    files = render()
    datasource = yaml.safe_load(files["provisioning/datasources/driftwatch.yaml"])["datasources"][0]
    assert datasource["type"] == "grafana-clickhouse-datasource"
    assert datasource["secureJsonData"]["password"].startswith("${")
    provider = yaml.safe_load(files["provisioning/dashboards/driftwatch.yaml"])["providers"][0]
    assert provider["type"] == "file" and provider["options"]["path"]
    rules = yaml.safe_load(files["provisioning/alerting/driftwatch-rules.yaml"])["groups"][0]["rules"]
    assert [r["uid"] for r in rules] == [r.uid for r in alert_rules(tables())]
    for rule in rules:
        query = rule["data"][0]
        assert query["datasourceUid"] == datasource["uid"]
        assert rule["labels"]["source"] == "driftwatch" and rule["labels"]["severity"]
    model = json.loads(files["json/model.json"])
    assert model["templating"]["list"][0]["current"]["value"] == datasource["uid"]


def test_monitor_does_not_import_dashboards_at_module_level() -> None:
    offenders = []
    for path in sorted((REPO / "monitor").rglob("*.py")):
        for node in ast.parse(path.read_text(encoding="utf-8")).body:
            if isinstance(node, ast.Import | ast.ImportFrom):
                names = [node.module] if isinstance(node, ast.ImportFrom) else [a.name for a in node.names]
                if any(name and name.split(".")[0] == "dashboards" for name in names):
                    offenders.append(str(path.relative_to(REPO)))
    assert not offenders
