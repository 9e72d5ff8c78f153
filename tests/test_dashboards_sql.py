"""Check (b): every dashboard and alert-rule query runs on chdb over a replayed scenario
and returns the columns its panel declares."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from dashboards.sqlcheck import Context, MacroError, Query, check, expand, queries
from monitor.errors import DriftwatchError
from monitor.scenario import START_MS
from monitor.storage.store import Store
from tests.dashboard_data import replayed_store, seed_other_tables


@pytest.fixture(scope="module")
def loaded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Store, Context]]:
    dsn, scenario = replayed_store(tmp_path_factory.mktemp("dashboards-sql"))
    # Dead letters and worker samples carry wall-clock times; the range reaches past now
    # because the plugin's $__timeFilter truncates its end to the second.
    now_ms = int(time.time() * 1000)
    with Store(dsn) as store:
        seed_other_tables(store, scenario, now_ms=now_ms)
        yield store, Context(START_MS, now_ms + 60_000)


def test_every_query_runs_and_returns_the_declared_columns(loaded: tuple[Store, Context]) -> None:
    outcomes = check(*loaded)
    assert len(outcomes) == len(list(queries())) > 30
    failures = [o.describe() for o in outcomes if not o.ok]
    assert not failures, "\n".join(failures)


def test_every_query_finds_rows_in_the_replayed_scenario(loaded: tuple[Store, Context]) -> None:
    # Rows, not only columns: the variables' values and the filters select the scenario's data.
    empty = [o.query.where for o in check(*loaded) if o.rows == 0]
    assert not empty


def test_a_wrong_column_or_bad_sql_is_reported(loaded: tuple[Store, Context]) -> None:
    store, ctx = loaded
    bad = [Query("wrong column", "SELECT count() AS n FROM alerts FINAL WHERE $__timeFilter(ts)", ("alerts",)),
           Query("bad sql", "SELECT count() FROM alerts FINAL WHERE $__timeFilter(no_such_column)", ("n",))]
    outcomes = check(store, ctx, bad)
    assert [o.ok for o in outcomes] == [False, False]
    assert "expected ['alerts'], got ['n UInt64']" in outcomes[0].describe()
    assert "no_such_column" in (outcomes[1].error or "")


def test_macros_expand_as_the_plugin_documents() -> None:
    ctx = Context(start_ms=1_415_792_726_123, end_ms=1_447_328_726_456, max_data_points=1_576_800)
    assert expand("$__timeFilter(time)", ctx) == "time >= toDateTime(1415792726) AND time <= toDateTime(1447328726)"
    assert expand("$__timeFilter_ms(time)", ctx) == ("time >= fromUnixTimestamp64Milli(1415792726123) AND "
                                                     "time <= fromUnixTimestamp64Milli(1447328726456)")
    assert expand("$__fromTime $__toTime_ms", ctx) == "toDateTime(1415792726) fromUnixTimestamp64Milli(1447328726456)"
    assert expand("$__timeInterval(column)", ctx) == "toStartOfInterval(toDateTime(column), INTERVAL 20 second)"
    assert expand("$__interval_s", Context(0, 10)) == "1"  # the plugin clamps the interval to 1 s


def test_unknown_macros_and_variables_are_errors() -> None:
    ctx = Context(0, 1000, variables={"model": ["a"]})
    with pytest.raises(MacroError, match="unknown macro"):
        expand("$__timeFilterr(ts)", ctx)
    with pytest.raises(MacroError, match="does not define"):
        expand("IN (${version:singlequote})", ctx)


def test_check_sees_every_dashboard_and_rule() -> None:
    wheres = [q.where for q in queries()]
    for uid in ("driftwatch-fleet", "driftwatch-model", "driftwatch-canaries", "driftwatch-service"):
        assert any(w.startswith(uid + " panel") for w in wheres)
    assert sum(w.startswith("alert rule") for w in wheres) == 5


def test_every_query_passes_the_analyst_sql_guard(loaded: tuple[Store, Context]) -> None:
    # The dashboards' SQL, as Grafana sends it, is what an analyst may also run through `driftwatch query`.
    store, _ = loaded
    refused = []
    for outcome in check(*loaded):
        try:
            store.analyst_query(outcome.sql, final=False)
        except DriftwatchError as exc:
            refused.append(f"{outcome.query.where}: {exc}")
    assert not refused, "\n".join(refused)
