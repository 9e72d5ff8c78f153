"""Check (b): run every dashboard query against ClickHouse, without Grafana.

Grafana never sees raw SQL run as written: the dashboard fills its template
variables, then the ClickHouse plugin's backend expands its macros. This
module does both the way they do, so the text sent to ClickHouse here is the
text Grafana would send:

1. Template variables, in dashboard order, are themselves queries: each is run
   (after expanding the variables before it) and every value it returns is
   selected, as "All" does. ``${name:singlequote}`` becomes ``'a','b'`` with
   quotes escaped; ``${name:csv}`` ``a,b``; ``${name}`` and ``$name`` the values
   joined by commas. An unknown variable is an error.
2. Macros, as in the plugin's ``pkg/macros/macros.go``:
   ``$__timeFilter(c)`` -> ``c >= toDateTime(FROM) AND c <= toDateTime(TO)``
   (seconds), ``$__timeFilter_ms(c)`` the same with
   ``fromUnixTimestamp64Milli`` (milliseconds), ``$__fromTime``/``$__toTime``
   (``_ms``), ``$__dateFilter(c)``, ``$__timeInterval(c)`` ->
   ``toStartOfInterval(toDateTime(c), INTERVAL N second)``,
   ``$__timeInterval_ms(c)`` and ``$__interval_s`` -> ``N``, with ``N`` at
   least 1 as the plugin clamps it. An unknown macro is an error.

The interval ``N`` is what Grafana would pick for a panel of
``max_data_points`` points over the range.

Examples
--------
>>> ctx = Context(start_ms=1_000_000, end_ms=4_600_000, variables={"model": ["a", "b'c"]})
>>> expand("SELECT 1 WHERE $__timeFilter(ts) AND m IN (${model:singlequote})", ctx)
"SELECT 1 WHERE ts >= toDateTime(1000) AND ts <= toDateTime(4600) AND m IN ('a','b\\\\'c')"
>>> expand("$__timeInterval(ts) / $__interval_s", ctx)
'toStartOfInterval(toDateTime(ts), INTERVAL 3 second) / 3'
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field, replace

from dashboards.alert_rules import alert_rules
from dashboards.catalog import boards
from dashboards.tables import tables
from monitor.errors import MacroError, StorageError
from monitor.storage.store import Store

__all__ = ["Context", "MacroError", "Outcome", "Query", "check", "expand", "queries"]

_MACRO = re.compile(r"\$__(\w+)(?:\(([^()]*)\))?")
_VARIABLE = re.compile(r"\$\{(\w+)(?::(\w+))?\}|\$(?!__)(\w+)")


@dataclass(frozen=True)
class Context:
    """The time range, interval and variable values a query is expanded with.

    Examples
    --------
    >>> Context(start_ms=0, end_ms=3_600_000).interval_ms  # 1200 points over an hour
    3000
    """

    start_ms: int
    end_ms: int
    variables: dict[str, list[str]] = field(default_factory=dict)
    max_data_points: int = 1200

    @property
    def interval_ms(self) -> int:
        return max((self.end_ms - self.start_ms) // self.max_data_points, 1)


def _quote(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _variable(match: re.Match[str], ctx: Context) -> str:
    name, fmt = (match.group(1), match.group(2)) if match.group(1) else (match.group(3), None)
    if name not in ctx.variables:
        raise MacroError(f"query uses variable ${name}, which the dashboard does not define; "
                         f"defined: {sorted(ctx.variables)}")
    values = ctx.variables[name]
    if fmt == "singlequote":
        return ",".join(_quote(v) for v in values)
    if fmt in (None, "csv", "raw"):
        return ",".join(values)
    raise MacroError(f"variable format ${{{name}:{fmt}}} is not one this check expands")


def _macro(match: re.Match[str], ctx: Context) -> str:
    name, arg = match.group(1), (match.group(2) or "").strip()
    start_s, end_s = ctx.start_ms // 1000, ctx.end_ms // 1000
    interval_s = max(ctx.interval_ms // 1000, 1)
    with_column: dict[str, Callable[[str], str]] = {
        "timeFilter": lambda c: f"{c} >= toDateTime({start_s}) AND {c} <= toDateTime({end_s})",
        "timeFilter_ms": lambda c: (f"{c} >= fromUnixTimestamp64Milli({ctx.start_ms}) AND "
                                    f"{c} <= fromUnixTimestamp64Milli({ctx.end_ms})"),
        "dateFilter": lambda c: f"{c} >= toDate('{_day(ctx.start_ms)}') AND {c} <= toDate('{_day(ctx.end_ms)}')",
        "timeInterval": lambda c: f"toStartOfInterval(toDateTime({c}), INTERVAL {interval_s} second)",
        "timeInterval_ms": lambda c: f"toStartOfInterval(toDateTime64({c}, 3), INTERVAL {ctx.interval_ms} millisecond)",
    }
    bare = {"fromTime": f"toDateTime({start_s})", "toTime": f"toDateTime({end_s})",
            "fromTime_ms": f"fromUnixTimestamp64Milli({ctx.start_ms})",
            "toTime_ms": f"fromUnixTimestamp64Milli({ctx.end_ms})", "interval_s": str(interval_s)}
    if name in with_column:
        if not arg:
            raise MacroError(f"macro $__{name} needs one column argument; got {match.group(0)!r}")
        return with_column[name](arg)
    if name in bare:
        return bare[name] + (f"({match.group(2)})" if match.group(2) is not None else "")
    raise MacroError(f"unknown macro $__{name} in {match.group(0)!r}")


def _day(ms: int) -> str:
    return dt.datetime.fromtimestamp(ms / 1000, dt.UTC).strftime("%Y-%m-%d")


def expand(sql: str, ctx: Context) -> str:
    """``sql`` as the plugin would send it: variables filled, then macros expanded."""
    filled = _VARIABLE.sub(lambda m: _variable(m, ctx), sql)
    return _MACRO.sub(lambda m: _macro(m, ctx), filled)


@dataclass(frozen=True)
class Query:
    """One query of a dashboard or alert rule, and the columns it must return.

    ``columns`` is empty for a template variable, which may return one column of any name.
    """

    where: str
    sql: str
    columns: tuple[str, ...]
    variable: str | None = None


@dataclass(frozen=True)
class Outcome:
    """What running one :class:`Query` gave."""

    query: Query
    sql: str
    columns: tuple[str, ...] = ()
    rows: int = 0
    error: str | None = None
    types: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        if self.error is not None:
            return False
        if self.query.variable is not None:
            return len(self.columns) == 1
        if self.columns != self.query.columns:
            return False
        # Grafana's time series need a time column of a date-time type.
        return "time" not in self.columns or self.types[self.columns.index("time")].startswith("DateTime")

    def describe(self) -> str:
        if self.error is not None:
            return f"{self.query.where}: {self.error}\n  sql: {self.sql}"
        want = "one column" if self.query.variable is not None else f"{list(self.query.columns)}"
        got = [f"{name} {kind}" for name, kind in zip(self.columns, self.types, strict=False)]
        return f"{self.query.where}: expected {want}, got {got} ({self.rows} rows)"


def queries() -> Iterator[Query]:
    """Every query: per dashboard its variables (in order), panels and annotations; then alert rules."""
    for board in boards():
        for variable in board.variables:
            yield Query(f"{board.uid} variable {variable.name}", variable.sql, (), variable=variable.name)
        for panel in board.panels:
            yield Query(f"{board.uid} panel {panel.title!r}", panel.sql, panel.columns)
        for annotation in board.annotations:
            yield Query(f"{board.uid} annotation {annotation.name!r}", annotation.sql, annotation.columns)
    for rule in alert_rules(tables()):
        yield Query(f"alert rule {rule.uid}", rule.sql, rule.columns)


def check(store: Store, ctx: Context, to_run: Iterable[Query] | None = None) -> list[Outcome]:
    """Run ``to_run`` (default: every query) against ``store``.

    Template variables are filled from their own queries, per dashboard, as Grafana does.
    """
    outcomes = []
    board_of = ""
    local = ctx
    for query in queries() if to_run is None else to_run:
        board = query.where.split(" ", 1)[0]
        if board != board_of:
            board_of, local = board, ctx
        try:
            sql = expand(query.sql, local)
        except MacroError as exc:
            outcomes.append(Outcome(query, query.sql, error=str(exc)))
            continue
        try:
            _, rows = store.query(sql, readonly=True, final=False)
            # DESCRIBE names the columns even when the query returns no rows
            # (an empty result carries no column names back from chdb).
            _, described = store.query(f"DESCRIBE ({sql})", readonly=True, final=False)
        except StorageError as exc:
            outcomes.append(Outcome(query, sql, error=str(exc)))
            continue
        names = tuple(str(row[0]) for row in described)
        types = tuple(str(row[1]) for row in described)
        outcomes.append(Outcome(query, sql, names, len(rows), types=types))
        if query.variable is not None:
            values = [str(row[0]) for row in rows]
            local = replace(local, variables={**local.variables, query.variable: values})
    return outcomes
