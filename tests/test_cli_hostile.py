"""The CLI as an attacker or a careless operator uses it (issue 14, items 1, 6, 7, 8): real processes, chdb."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest

from tests.conftest import make_event, write_jsonl

FORMULAS = ["=HYPERLINK(\"http://x\")", "+1+1", "-2+3", "@SUM(A1)", "\tcmd", "\rcmd"]
CONTROLS = ["\x1b[2J\x1b[H", "\x1b]0;owned\x07", "\x1b]8;;http://evil\x1b\\link", "a\u202eb", "\x9b31m", "x\x08y"]


@pytest.fixture
def hostile_store(cli, tmp_path: Path, store_dsn: str) -> str:
    records = [make_event(i, model_id=m, tenant_id=t, event_id=f"e{i}")
               for i, (m, t) in enumerate(zip(FORMULAS + CONTROLS, CONTROLS + FORMULAS, strict=True))]
    cli("replay", "--store", store_dsn, str(write_jsonl(tmp_path / "hostile.jsonl", [json.dumps(r) for r in records])))
    return store_dsn


def test_csv_cells_never_start_a_formula(cli, hostile_store: str) -> None:
    out = cli("query", "--store", hostile_store, "--format", "csv",
              "SELECT model_id, tenant_id FROM events ORDER BY event_id").stdout
    cells = [cell for row in csv.reader(io.StringIO(out)) for cell in row]
    assert not [cell for cell in cells if cell[:1] in ("=", "+", "-", "@", "\t", "\r")]
    assert {"'=HYPERLINK(\"http://x\")", "'+1+1", "'-2+3", "'@SUM(A1)"} <= set(cells)


@pytest.mark.parametrize("fmt", ["table", "json", "csv"])
def test_query_prints_no_control_sequence(cli, hostile_store: str, fmt: str) -> None:
    out = cli("query", "--store", hostile_store, "--format", fmt, "SELECT model_id, tenant_id FROM events").stdout
    if fmt == "csv":  # a CSV file keeps the values (neutralised for spreadsheets), not a terminal rendering
        return
    assert not any(ch in out for ch in ("\x1b", "\x07", "\x08", "\x9b", "\u202e"))


def test_demo_and_incidents_print_no_control_sequence(cli, hostile_store: str) -> None:
    out = cli("incidents", "--store", hostile_store).stdout + cli("replay", "--store", hostile_store,
                                                                  "--no-progress", "/dev/null").stdout
    assert "\x1b" not in out and "\u202e" not in out


@pytest.mark.parametrize("sql", [
    "SELECT file('/etc/passwd')",
    "SELECT * FROM file('/proc/self/environ', 'RawBLOB')",
    "SELECT 'x' INTO OUTFILE 'written.txt' APPEND",
    "SELECT * FROM system.settings",
])
def test_query_refuses_the_filesystem(cli, tmp_path: Path, store_dsn: str, sql: str) -> None:
    result = cli("query", "--store", store_dsn, sql, check=False)
    assert result.returncode == 2, result.stderr
    assert "root:" not in result.stdout and not (tmp_path / "written.txt").exists()


@pytest.mark.parametrize("args", [
    ("report", "--model", "a", "--since", "99999999999d"),
    ("report", "--model", "a", "--since", "1e400d"),
    ("report", "--model", "a", "--until", "99999-01-01T00:00:00Z"),
    ("bench", "replay", "--events", "0"),
    ("bench", "replay", "--repeat", "0"),
    ("bench", "pipeline", "--events", "-5"),
    ("demo", "--events", "0"),
    ("ack", "no-such-alert"),
    ("ack", "--kind", "incident", "' OR 1=1 --"),
])
def test_bad_arguments_are_a_clear_error_not_a_traceback(cli, store_dsn: str, args: tuple[str, ...]) -> None:
    result = cli(*args, "--store", store_dsn, check=False) if args[0] != "bench" else cli(*args, check=False)
    assert result.returncode == 2, (result.stdout, result.stderr)
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("model", ["a/b", "../../etc/x", "x\x1b[2J", ".."])
def test_report_file_name_stays_in_the_working_directory(cli, tmp_path: Path, store_dsn: str, model: str) -> None:
    cli("replay", "--store", store_dsn, str(write_jsonl(tmp_path / "one.jsonl", [json.dumps(make_event(1))])))
    result = cli("report", "--store", store_dsn, "--model", model)
    written = [p for p in tmp_path.iterdir() if p.name.startswith("report-")]
    assert len(written) == 1 and written[0].parent == tmp_path and "\x1b" not in result.stdout


@pytest.mark.parametrize("dsn", ["http://user:S3cretPW@:8123/db", "ftp://u:S3cretPW@h/x",
                                 "http://u@h:1/db?password=S3cretPW"])
def test_credentials_never_echoed(cli, dsn: str) -> None:
    result = cli("query", "--store", dsn, "SELECT 1", check=False)
    assert result.returncode != 0 and "S3cretPW" not in result.stdout + result.stderr
