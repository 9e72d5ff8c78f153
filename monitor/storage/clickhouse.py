"""ClickHouse access through clickhouse-connect: embedded (chdb) or a server.

One DSN chooses the backend:

- ``chdb:///abs/path``: the embedded engine, storing under that folder;
- ``http(s)://user:password@host:8123/database``: a ClickHouse server.

:class:`Store` owns the one client of a process; :class:`ClickHouseSink`
buffers rows in ``add_*`` and writes them in ``flush``, one batched insert per
table, reusing an insert context per table. A failed write keeps its rows and
is retried with capped exponential backoff (:class:`Backoff`); the buffer has a
hard bound, so a caller that keeps adding while ClickHouse is down is told to
stop (:class:`SinkFullError`) instead of growing without limit.
"""

from __future__ import annotations

import hashlib
import logging
import threading
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import clickhouse_connect
from clickhouse_connect.driver.exceptions import ClickHouseError

from monitor.alerts import Alert, Findings, MetricRow, TriggerCandidate
from monitor.errors import ConfigError, StorageError
from monitor.events import Event
from monitor.storage.dsn import default_dsn, validate_dsn
from monitor.storage.dsn import redact as _redact
from monitor.storage.rows import RAW_PREVIEW_BYTES, Backoff, DeadLetter, ServiceMetric, SinkFullError
from monitor.storage.schema import MIGRATIONS, MIGRATIONS_TABLE

logger = logging.getLogger(__name__)

__all__ = ["RAW_PREVIEW_BYTES", "Backoff", "ClickHouseSink", "DeadLetter", "ServiceMetric", "SinkFullError", "Store",
           "default_dsn", "validate_dsn"]

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
            raise StorageError(f"cannot open ClickHouse at {_redact(dsn)}: {exc}") from exc

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
        try:
            return self.client.command(sql, **kwargs)
        except ClickHouseError as exc:
            raise StorageError(f"ClickHouse refused {sql.split(None, 3)[:3]}: {exc}") from exc

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
        try:
            context = self._insert_contexts.get(key)
            if context is None:
                context = self.client.create_insert_context(table, column_names=list(names), column_oriented=True)
                self._insert_contexts[key] = context
            context.data = [list(column) for column in columns]
            self.client.insert(context=context)
        except ClickHouseError as exc:
            raise StorageError(f"insert into {table} failed: {exc}") from exc

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
        try:
            result = self.client.query(sql, parameters=parameters, settings=settings)
        except ClickHouseError as exc:
            raise StorageError(f"query failed: {exc}") from exc
        return list(result.column_names), [tuple(row) for row in result.result_rows]

    def existing_ids(self, table: str, id_column: str, ids: Iterable[str]) -> set[str]:
        wanted = list(set(ids))
        if not wanted:
            return set()
        _, rows = self.query(
            f"SELECT DISTINCT {id_column} FROM {table} WHERE {id_column} IN {{ids:Array(String)}}",
            readonly=False, final=False, parameters={"ids": wanted},
        )
        return {row[0] for row in rows}


EVENT_COLUMNS = (
    "event_id", "ts", "model_id", "model_version", "tenant_id", "user_id", "session_id",
    "input_hash", "output_hash", "system_prompt_hash", "input_chars", "output_chars",
    "input_tokens", "output_tokens", "latency_ms", "tool_names", "labels",
    "has_embedding", "has_activations", "input", "output", "source",
)
METRIC_COLUMNS = (
    "model_id", "model_version", "tenant_id", "detector", "metric", "window_start",
    "window_end", "value", "count", "extra",
)
ALERT_INSERT_COLUMNS = (
    "alert_id", "ts", "model_id", "model_version", "tenant_id", "detector", "metric",
    "severity", "score", "threshold", "window_start", "window_end", "evidence",
)
CANDIDATE_COLUMNS = (
    "candidate_id", "model_id", "model_version", "ngram", "kind", "window_start", "window_end",
    "support", "anomalous_support", "distinct_users", "distinct_tenants", "lift", "p_value",
    "q_value", "example_event_ids", "tenant_ids",
)
DEAD_LETTER_COLUMNS = (
    "dead_letter_id", "received_at", "source", "partition", "offset", "line", "reason",
    "field", "raw", "raw_bytes",
)


SERVICE_METRIC_COLUMNS = ("ts", "worker", "metric", "topic", "partition", "value")


class ClickHouseSink:
    """Buffers rows per table and writes each table in one insert on flush.

    Alerts already stored (same deterministic id) are dropped before the
    insert, so a replayed file or a retried batch re-raises nothing; the
    ReplacingMergeTree engine is the backstop for concurrent writers.

    A table's buffer is emptied only once its insert succeeded, so a flush
    that fails part-way retries only what is left, and every id is
    deterministic, so a retried insert cannot duplicate a logical row.

    Parameters
    ----------
    store
        The process's :class:`Store`.
    store_text
        Keep raw input and output text in ``events``; off by default.
    flush_rows
        ``add_*`` flushes by itself once this many rows are buffered; ``None``
        leaves every flush to the caller (the streaming worker flushes off the
        event loop).
    max_rows
        Hard bound on buffered rows; ``add_*`` past it raises
        :class:`SinkFullError`. Defaults to ``max(flush_rows, 200_000)``.
    retry
        Backoff between tries of a failed flush; ``None`` fails at once.

    Examples
    --------
    A full sink refuses more rows instead of growing (no store is touched here):

    >>> sink = ClickHouseSink(store=None, flush_rows=None, max_rows=1)  # type: ignore[arg-type]
    >>> sink.add_dead_letters([DeadLetter(source="f", reason="bad", raw=b"x")])
    >>> sink.add_dead_letters([DeadLetter(source="f", reason="bad", raw=b"y")])
    Traceback (most recent call last):
    ...
    monitor.storage.rows.SinkFullError: sink holds 1 rows and was given 1 more; expected at most 1 in all (flush first)
    """

    def __init__(self, store: Store, *, store_text: bool = False, flush_rows: int | None = 50_000,
                 max_rows: int | None = None, retry: Backoff | None = None) -> None:
        if flush_rows is not None and flush_rows <= 0:
            raise ConfigError(f"flush_rows must be > 0 or None; got {flush_rows!r}")
        self.max_rows = max(flush_rows or 0, 200_000) if max_rows is None else max_rows
        if self.max_rows <= 0 or (flush_rows is not None and flush_rows > self.max_rows):
            raise ConfigError(f"max_rows must be > 0 and >= flush_rows; got {max_rows!r} (flush_rows {flush_rows!r})")
        self.store = store
        self.store_text = store_text
        self.flush_rows = flush_rows
        self.retry = retry
        self._events: list[tuple[Any, ...]] = []
        self._metrics: list[MetricRow] = []
        self._alerts: list[Alert] = []
        self._dead: list[DeadLetter] = []
        self._service: list[ServiceMetric] = []
        self._candidates: list[TriggerCandidate] = []
        self._closed = threading.Event()
        self.written = {"events": 0, "window_metrics": 0, "alerts": 0, "dead_letters": 0, "trigger_candidates": 0}
        self.samples_written = 0
        self.retries = 0
        self.new_alerts: list[Alert] = []

    @property
    def buffered(self) -> int:
        return (len(self._events) + len(self._metrics) + len(self._alerts) + len(self._dead) + len(self._service)
                + len(self._candidates))

    def drain_new_alerts(self) -> list[Alert]:
        """Alerts written since the last call, in write order (for notifiers)."""
        fresh, self.new_alerts = self.new_alerts, []
        return fresh

    def _make_room(self, adding: int) -> None:
        if self.buffered + adding > self.max_rows:
            raise SinkFullError(f"sink holds {self.buffered} rows and was given {adding} more; "
                                f"expected at most {self.max_rows} in all (flush first)")

    def add_events(self, events: Sequence[Event], sources: Sequence[str]) -> None:
        self._make_room(len(events))
        rows = self._events
        keep_text = self.store_text
        for event, source in zip(events, sources, strict=True):
            rows.append((
                event.event_id, event.ts, event.model_id, event.model_version,
                event.tenant_id or "", event.user_id or "", event.session_id or "",
                text_hash(event.input), text_hash(event.output), text_hash(event.system_prompt),
                len(event.input), len(event.output), event.input_tokens, event.output_tokens,
                event.latency_ms,
                [call.name for call in event.tool_calls] if event.tool_calls else [],
                event.labels or {},
                event.embedding is not None, event.activations is not None,
                event.input if keep_text else "", event.output if keep_text else "",
                source,
            ))
        self._maybe_flush()

    def add_findings(self, findings: Findings) -> None:
        self._make_room(len(findings.metrics) + len(findings.alerts) + len(findings.candidates))
        self._metrics.extend(findings.metrics)
        self._alerts.extend(findings.alerts)
        self._candidates.extend(findings.candidates)
        self._maybe_flush()

    def add_dead_letters(self, letters: Sequence[DeadLetter]) -> None:
        self._make_room(len(letters))
        self._dead.extend(letters)
        self._maybe_flush()

    def add_service_metrics(self, samples: Sequence[ServiceMetric]) -> None:
        self._make_room(len(samples))
        self._service.extend(samples)

    def _maybe_flush(self) -> None:
        if self.flush_rows is not None and self.buffered >= self.flush_rows:
            self.flush()

    def close(self) -> None:
        """Stop retrying: a flush waiting out an outage raises at its next try."""
        self._closed.set()

    def flush(self) -> None:
        """Write everything buffered, retrying with backoff; rows stay buffered until written."""
        failures = 0
        while True:
            try:
                self._flush_once()
                return
            except StorageError as exc:
                failures += 1
                if self.retry is None or self.retry.gives_up(failures) or self._closed.is_set():
                    raise
                delay = self.retry.delay(failures)
                self.retries += 1
                logger.warning("clickhouse write failed attempt=%d retry_in_s=%.2f buffered_rows=%d error=%s",
                               failures, delay, self.buffered, exc)
                if self._closed.wait(delay):
                    raise StorageError(f"sink closed while ClickHouse was failing; {self.buffered} rows "
                                       "not written") from exc

    def _flush_once(self) -> None:
        # Each buffer is cut at its length now and only that prefix is written and then
        # removed, so rows appended meanwhile (the worker flushes on another thread) stay.
        if self._events:
            rows = self._events[:len(self._events)]
            self.store.insert("events", _columns(rows), EVENT_COLUMNS)
            self.written["events"] += len(rows)
            del self._events[:len(rows)]
        if self._metrics:
            metrics = self._metrics[:len(self._metrics)]
            self.store.insert("window_metrics", _columns(
                (m.model_id, m.model_version, m.tenant_id, m.detector, m.metric, m.window_start_ms,
                 m.window_end_ms, m.value, m.count, m.extra) for m in metrics), METRIC_COLUMNS)
            self.written["window_metrics"] += len(metrics)
            del self._metrics[:len(metrics)]
        if self._alerts:
            alerts = self._alerts[:len(self._alerts)]
            unique = list({alert.alert_id: alert for alert in alerts}.values())
            seen = self.store.existing_ids("alerts", "alert_id", (a.alert_id for a in unique))
            fresh = [alert for alert in unique if alert.alert_id not in seen]
            if fresh:
                self.store.insert("alerts", _columns(
                    (a.alert_id, a.ts_ms, a.model_id, a.model_version, a.tenant_id, a.detector,
                     a.metric, a.severity, a.score, a.threshold, a.window_start_ms, a.window_end_ms,
                     a.evidence) for a in fresh), ALERT_INSERT_COLUMNS)
            self.written["alerts"] += len(fresh)
            self.new_alerts.extend(fresh)
            del self._alerts[:len(alerts)]
        if self._candidates:
            candidates = self._candidates[:len(self._candidates)]
            self.store.insert("trigger_candidates", _columns(
                (c.candidate_id, c.model_id, c.model_version, c.ngram, c.kind, c.window_start_ms,
                 c.window_end_ms, c.support, c.anomalous_support, c.distinct_users, c.distinct_tenants,
                 c.lift, c.p_value, c.q_value, list(c.example_event_ids), list(c.tenant_ids)) for c in candidates),
                CANDIDATE_COLUMNS)
            self.written["trigger_candidates"] += len(candidates)
            del self._candidates[:len(candidates)]
        if self._dead:
            dead = self._dead[:len(self._dead)]
            self.store.insert("dead_letters", _columns(
                (d.dead_letter_id, d.received_ms, d.source, d.partition, d.offset, d.line,
                 d.reason, d.field, d.raw[:RAW_PREVIEW_BYTES].decode("utf-8", "replace"),
                 len(d.raw)) for d in dead), DEAD_LETTER_COLUMNS)
            self.written["dead_letters"] += len(dead)
            del self._dead[:len(dead)]
        if self._service:
            samples = self._service[:len(self._service)]
            self.store.insert("service_metrics", _columns(
                (m.ts_ms, m.worker, m.metric, m.topic, m.partition, m.value) for m in samples),
                SERVICE_METRIC_COLUMNS)
            self.samples_written += len(samples)
            del self._service[:len(samples)]


def _columns(rows: Iterable[Sequence[Any]]) -> list[list[Any]]:
    """Transpose rows into columns for a column-oriented insert."""
    return [list(column) for column in zip(*rows, strict=True)]
