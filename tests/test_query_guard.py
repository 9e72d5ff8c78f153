"""The analyst's SQL surface (``Store.analyst_query``) on the real engine: no filesystem, network or environment."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from monitor.errors import RefusedQueryError, StorageError
from monitor.policy.roles import roles_sql
from monitor.storage.store import Store

SECRET = "driftwatch-secret-canary"


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Store]:
    with Store(f"chdb://{tmp_path_factory.mktemp('guard') / 'store'}") as handle:
        handle.ensure_schema()
        handle.command("INSERT INTO alerts (alert_id, ts, model_id, model_version, detector, metric, severity, "
                       "evidence) VALUES ('a1', now64(3), 'm', '1', 'trigger', 'signature:x', 'high', '{}')")
        handle.command("INSERT INTO events (event_id, ts, model_id, model_version) VALUES ('e1', now64(3), 'm', '1')")
        handle.command("INSERT INTO trigger_candidates (candidate_id, model_id, model_version, ngram) "
                       "VALUES ('c1', 'm', '1', 'x')")
        yield handle


@pytest.fixture(scope="module")
def secret_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("secret") / "key.txt"
    path.write_text(SECRET, encoding="utf-8")
    return path


READS = [
    "SELECT file('{path}')",
    "SELECT lower(file('{path}')) AS x",
    "SELECT * FROM file('{path}', 'LineAsString')",
    "SELECT * FROM file('{path}', 'RawBLOB')",
    "SELECT * FROM alerts WHERE alert_id IN (SELECT * FROM file('{path}', 'LineAsString'))",
    "WITH s AS (SELECT * FROM file('{path}', 'LineAsString')) SELECT * FROM s",
    "SELECT 1 UNION ALL SELECT length(file('{path}'))",
    "SELECT a.alert_id FROM alerts AS a JOIN (SELECT * FROM file('{path}', 'LineAsString')) AS b ON 1",
    "SELECT * FROM file('/proc/self/environ', 'RawBLOB')",
    "SELECT file('/etc/passwd')",
    "select FILE('{path}')",
    "SELECT * FROM executable('cat {path}', 'LineAsString', 'x String')",
    "SELECT * FROM url('http://127.0.0.1:9/x', 'CSV', 'a String')",
    "SELECT * FROM remote('127.0.0.1', 'system', 'one')",
    "SELECT * FROM s3('http://127.0.0.1:9/b/k', 'CSV', 'a String')",
    "SELECT * FROM hdfs('hdfs://127.0.0.1:9/x', 'CSV', 'a String')",
    "SELECT * FROM mysql('127.0.0.1:9', 'd', 't', 'u', 'p')",
    "SELECT * FROM numbers(10)",
    "SELECT * FROM system.settings",
    "SELECT * FROM system.processes",
    "SELECT * FROM information_schema.tables",
    "SELECT name FROM system.tables",
    "SELECT getSetting('readonly')",
    "SELECT hostName()",
    "SELECT currentUser()",
    "SELECT getMacro('shard')",
    "SELECT dictGet('d', 'a', 1)",
    "SELECT 1 SETTINGS readonly = 0",
    "SELECT sleep(3)",
]
WRITES = [
    "SELECT '{secret}' INTO OUTFILE '{out}'",
    "SELECT '{secret}' INTO OUTFILE '{out}' APPEND",
    "SELECT '{secret}' INTO OUTFILE '{out}' TRUNCATE",
    "SELECT '{secret}' INTO OUTFILE '{out}' FORMAT CSV",
    "SELECT * FROM alerts INTO OUTFILE '{out}' AND STDOUT",
]
STATEMENTS = [
    "SHOW TABLES", "DESCRIBE alerts", "EXPLAIN SELECT 1", "INSERT INTO alerts (alert_id) VALUES ('x')",
    "SET readonly = 0", "CREATE TABLE t (a UInt8) ENGINE = Memory", "DROP TABLE alerts", "SYSTEM FLUSH LOGS",
    "OPTIMIZE TABLE alerts", "ALTER TABLE alerts DELETE WHERE 1", "SELECT 1; SELECT file('/etc/passwd')",
    "SELECT 1 FORMAT CSV",
]


@pytest.mark.parametrize("template", READS)
def test_no_read_outside_the_tables(store: Store, secret_file: Path, template: str) -> None:
    sql = template.format(path=secret_file)
    with pytest.raises((RefusedQueryError, StorageError)) as caught:
        store.analyst_query(sql)
    assert SECRET not in str(caught.value)
    assert isinstance(caught.value, RefusedQueryError), caught.value


@pytest.mark.parametrize("template", WRITES)
def test_no_write_to_any_path(store: Store, tmp_path: Path, template: str) -> None:
    out = tmp_path / "out.txt"
    with pytest.raises(RefusedQueryError):
        store.analyst_query(template.format(secret=SECRET, out=out))
    assert not out.exists()


@pytest.mark.parametrize("sql", STATEMENTS)
def test_only_one_select_statement(store: Store, sql: str) -> None:
    with pytest.raises((RefusedQueryError, StorageError)):
        store.analyst_query(sql)
    _, rows = store.analyst_query("SELECT count() FROM alerts")
    assert rows == [(1,)]


@pytest.mark.parametrize("sql", [
    "SELECT detector, severity, count() FROM alerts GROUP BY ALL ORDER BY 3 DESC",
    "SELECT ts, model_id, metric, evidence FROM alerts WHERE severity IN ('high','critical') ORDER BY ts DESC LIMIT 20",
    "SELECT ngram, support, anomalous_support, lift, q_value FROM trigger_candidates ORDER BY window_end DESC LIMIT 20",
    "SELECT count() FROM alerts",
    "WITH recent AS (SELECT * FROM default.alerts WHERE ts > now() - INTERVAL 7 DAY) "
    "SELECT toStartOfHour(ts) AS hour, countIf(severity = 'high'), quantileExact(0.9)(score), "
    "uniqExact(model_id), any(JSONExtractString(evidence, 'metric')) FROM recent GROUP BY hour ORDER BY hour",
    "SELECT model_id, argMax(severity, ts), groupArray(alert_id)[1], row_number() OVER (ORDER BY model_id) "
    "FROM alerts GROUP BY model_id -- the latest per model",
    "SELECT e.model_id, count() FROM events AS e LEFT JOIN alerts AS a ON a.model_id = e.model_id GROUP BY ALL",
])
def test_analyst_queries_still_answer(store: Store, sql: str) -> None:
    names, rows = store.analyst_query(sql)
    assert names and rows


@pytest.mark.parametrize("role", ["driftwatch_analyst_role", "driftwatch_grafana_role", "driftwatch_writer_role"])
def test_server_roles_grant_no_file_url_remote_or_sources(role: str) -> None:
    # On a server the engine's own grants are the first control; `query` should connect as driftwatch_analyst.
    grants = [line for line in roles_sql("driftwatch").splitlines() if line.startswith("GRANT") and role in line]
    assert grants
    for line in grants:
        privileges = line.removeprefix("GRANT ").split(" ON ")[0].upper()
        assert not {"FILE", "URL", "REMOTE", "SOURCES", "ALL", "S3", "HDFS", "INTROSPECTION"} & set(
            p.strip() for p in privileges.split(",")), line
        assert " ON *.*" not in line and "system." not in line, line
