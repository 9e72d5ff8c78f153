"""The ClickHouse client through clickhouse-connect: embedded (chdb) or a server.

One DSN chooses the backend:

- ``chdb:///abs/path``: the embedded engine, storing under that folder;
- ``http(s)://user:password@host:8123/database``: a ClickHouse server.

:class:`Store` owns the one client of a process: it applies the schema,
inserts column-oriented batches and runs queries. :func:`translated` is the one
place a clickhouse-connect error becomes a :class:`~monitor.errors.StorageError`.
The batching writer is :class:`monitor.storage.sink.ClickHouseSink`.
"""

from __future__ import annotations

import hashlib
import logging
import re
import struct
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import clickhouse_connect
from clickhouse_connect.driver.exceptions import ClickHouseError, DatabaseError, DataError, OperationalError

from monitor.errors import RowsRefusedError, StorageError
from monitor.redact import redact_text
from monitor.storage.dsn import redact as _redact
from monitor.storage.dsn import validate_dsn
from monitor.storage.schema import MIGRATIONS, MIGRATIONS_TABLE
from monitor.storage.sql_guard import CATALOGUE_SQL, COMBINATORS_SQL, SqlGuard, parse_explain
from monitor.storage.tables import TABLES

logger = logging.getLogger(__name__)

__all__ = ["Store", "text_hash", "translated"]

_EXPLAIN_FORMAT = "TabSeparatedRaw"


@contextmanager
def translated(what: str, *, encoding: bool = False) -> Iterator[None]:
    """Raise a ClickHouse driver error met inside as ``StorageError(f"{what}: {error}")``.

    ``encoding``: the block encodes values for an insert, where the driver's column writers raise some
    refusals bare (``ValueError``, ``struct.error`` ...); those are the data's fault, not the store's.

    Examples
    --------
    >>> with translated("query failed"):
    ...     raise ClickHouseError("boom")
    Traceback (most recent call last):
    ...
    monitor.errors.StorageError: query failed: boom
    """
    try:
        yield
    except ClickHouseError as exc:
        kind = RowsRefusedError if refuses_data(exc) else StorageError
        raise kind(f"{what}: {redact_text(str(exc))}") from exc
    except (ValueError, TypeError, OverflowError, struct.error) as exc:
        if not encoding:
            raise
        raise RowsRefusedError(f"{what}: a value cannot be encoded for its column: {exc}") from exc


# ClickHouse error codes that reject what an insert carries, not the connection or the server:
# CANNOT_PARSE_TEXT, CANNOT_PARSE_INPUT_ASSERTION_FAILED, CANNOT_PARSE_DATETIME, TYPE_MISMATCH,
# ARGUMENT_OUT_OF_BOUND, CANNOT_CONVERT_TYPE, CANNOT_PARSE_NUMBER, INCORRECT_DATA, TOO_LARGE_STRING_SIZE,
# TOO_MANY_PARTS (too many partitions in one block), VALUE_IS_OUT_OF_RANGE_OF_DATA_TYPE, DECIMAL_OVERFLOW.
_DATA_CODES = frozenset({6, 27, 41, 53, 69, 70, 72, 117, 131, 252, 321, 407})
_CODE = re.compile(r"\bCode: (\d+)\b")


def refuses_data(exc: ClickHouseError) -> bool:
    """Whether ``exc`` rejects the data sent (retrying it cannot help) rather than the connection."""
    if isinstance(exc, OperationalError):
        return False
    if isinstance(exc, DataError):  # the driver could not encode a value for its column
        return True
    code = _CODE.search(str(exc))
    return isinstance(exc, DatabaseError) and code is not None and int(code.group(1)) in _DATA_CODES


def text_hash(text: str | None) -> str:
    if not text:
        return ""
    return hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=16).hexdigest()


class Store:
    """The process's ClickHouse client, with the schema ensured.

    Parameters
    ----------
    dsn
        ``chdb:///path`` or ``http(s)://user:pass@host:port/db``.
    outage_file
        Outage drill: while this file exists, every call fails with the
        :class:`StorageError` an unreachable server gives. The embedded engine
        cannot be stopped under a running worker, so drills and tests use this.
    """

    def __init__(self, dsn: str, *, outage_file: Path | None = None) -> None:
        self.dsn = validate_dsn(dsn)
        self.outage_file = outage_file
        self.embedded = dsn.startswith("chdb:")
        if self.embedded:
            Path(urlsplit(dsn).path or "/").mkdir(parents=True, exist_ok=True)
        # One insert context per (table, columns): the column types are looked
        # up once, not on every batch.
        self._insert_contexts: dict[tuple[str, tuple[str, ...]], Any] = {}
        try:
            self.client = clickhouse_connect.get_client(dsn=dsn)
        except Exception as exc:  # the driver raises several unrelated types
            raise StorageError(f"cannot open ClickHouse at {_redact(dsn)}: {redact_text(str(exc))}") from exc
        self._guard: SqlGuard | None = None

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        self.client.close()

    def describe(self) -> str:
        """Where the data lives, for humans."""
        if self.embedded:
            return f"embedded ClickHouse (chdb) at {urlsplit(self.dsn).path}"
        return f"ClickHouse server at {_redact(self.dsn)}"

    def _check_reachable(self) -> None:
        if self.outage_file is not None and self.outage_file.exists():
            raise StorageError(f"ClickHouse at {_redact(self.dsn)} unreachable: outage drill "
                               f"({self.outage_file} exists)")

    def command(self, sql: str, **kwargs: Any) -> Any:
        self._check_reachable()
        with translated(f"ClickHouse refused {sql.split(None, 3)[:3]}"):
            return self.client.command(sql, **kwargs)

    def ensure_schema(self) -> int:
        """Apply pending migrations; return the schema version now in force."""
        self.command(MIGRATIONS_TABLE)
        applied = {row[0] for row in self.client.query("SELECT version FROM schema_migrations").result_rows}
        for migration in MIGRATIONS:
            if migration.version in applied:
                continue
            for statement in migration.statements:
                self.command(statement)
            self.insert("schema_migrations", [[migration.version], [migration.description]],
                        ["version", "description"])
            logger.info("schema migration applied version=%d description=%r",
                        migration.version, migration.description)
        return MIGRATIONS[-1].version

    def insert(self, table: str, columns: Sequence[Sequence[Any]], names: Sequence[str]) -> None:
        key = (table, tuple(names))
        self._check_reachable()
        with translated(f"insert into {table} failed", encoding=True):
            context = self._insert_contexts.get(key)
            if context is None:
                context = self.client.create_insert_context(table, column_names=list(names), column_oriented=True)
                self._insert_contexts[key] = context
            context.data = [list(column) for column in columns]
            self.client.insert(context=context)

    def query(self, sql: str, *, readonly: bool = True, final: bool = True,
              parameters: dict[str, Any] | None = None) -> tuple[list[str], list[tuple[Any, ...]]]:
        """Run a query; return (column names, rows).

        ``readonly`` refuses anything but reads; ``final`` reads every
        ReplacingMergeTree table as if merged, so no row shows twice.
        """
        settings: dict[str, Any] = {}
        if readonly:
            settings["readonly"] = 1
        if final:
            settings["final"] = 1
        self._check_reachable()
        with translated("query failed"):
            result = self.client.query(sql, parameters=parameters, settings=settings)
        return list(result.column_names), [tuple(row) for row in result.result_rows]

    def analyst_query(self, sql: str, *, final: bool = True) -> tuple[list[str], list[tuple[Any, ...]]]:
        """Run SQL a person typed: a plain SELECT over the store's own tables, or
        :class:`~monitor.errors.RefusedQueryError`.

        ``readonly=1`` stops writes; the engine's own parse tree (``EXPLAIN AST``,
        which runs nothing) is then checked against an allow-list
        (:mod:`monitor.storage.sql_guard`), so no function, table function or
        clause reaches the filesystem, the network or the process environment.
        """
        SqlGuard.precheck(sql)
        self._check_reachable()
        # The driver would append a FORMAT of its own; name one, on a line of its own (after any comment).
        with translated("query failed"):
            # EXPLAIN AST parses and runs nothing.
            tree = self.client.raw_query(f"EXPLAIN AST {sql}\nFORMAT {_EXPLAIN_FORMAT}")
        lines = tree.decode("utf-8", "replace").splitlines()
        self._sql_guard().check(parse_explain(lines), explain_format=_EXPLAIN_FORMAT)
        return self.query(sql, readonly=True, final=final)

    def _sql_guard(self) -> SqlGuard:
        if self._guard is None:
            with translated("reading the function catalogue failed"):
                functions = self.client.query(CATALOGUE_SQL).result_rows
                combinators = self.client.query(COMBINATORS_SQL).result_rows
                database = self.client.command("SELECT currentDatabase()")
            self._guard = SqlGuard({name: category for name, category in functions},
                                   (row[0] for row in combinators),
                                   tables=[*TABLES, "schema_migrations"], database=str(database))
        return self._guard

    def stored_event_hashes(self, rows: Sequence[dict[str, Any]]) -> dict[tuple[str, str, int, str], str]:
        """Content hashes already stored under the sorting keys of ``rows`` (empty for rows written before hashes).

        Only a row with the same (model, version, ts, id) would be replaced by the engine, so only those are
        looked up: the query reads the batch's models over its time span (the table's key prefix and
        partitions), not the whole table.
        """
        if not rows:
            return {}
        models = sorted({row["model_id"] for row in rows})
        low, high = min(row["ts"] for row in rows), max(row["ts"] for row in rows)
        _, found = self.query(
            "SELECT model_id, model_version, toUnixTimestamp64Milli(ts), event_id, max(content_hash) FROM events "
            "WHERE model_id IN {models:Array(String)} AND ts >= fromUnixTimestamp64Milli({low:Int64}) "
            "AND ts <= fromUnixTimestamp64Milli({high:Int64}) GROUP BY ALL",
            readonly=False, final=False, parameters={"models": models, "low": low, "high": high})
        return {(model, version, int(ts), event_id): digest for model, version, ts, event_id, digest in found}

    def existing_ids(self, table: str, id_column: str, ids: Iterable[str]) -> set[str]:
        wanted = list(set(ids))
        if not wanted:
            return set()
        _, rows = self.query(
            f"SELECT DISTINCT {id_column} FROM {table} WHERE {id_column} IN {{ids:Array(String)}}",
            readonly=False, final=False, parameters={"ids": wanted},
        )
        return {row[0] for row in rows}
