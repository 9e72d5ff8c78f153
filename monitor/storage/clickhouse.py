"""ClickHouse access through clickhouse-connect: embedded (chdb) or a server.

One DSN chooses the backend:

- ``chdb:///abs/path``: the embedded engine, storing under that folder;
- ``http(s)://user:password@host:8123/database``: a ClickHouse server.

:class:`Store` owns the one client of a process; :class:`ClickHouseSink`
buffers rows in ``add_*`` and writes them in ``flush``, one batched insert per
table, reusing an insert context per table.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import clickhouse_connect
from clickhouse_connect.driver.exceptions import ClickHouseError

from monitor.alerts import Alert, Findings, MetricRow, TriggerCandidate
from monitor.errors import ConfigError, StorageError
from monitor.events import Event
from monitor.storage.schema import MIGRATIONS, MIGRATIONS_TABLE

logger = logging.getLogger(__name__)

__all__ = ["ClickHouseSink", "DeadLetter", "Store", "default_dsn", "validate_dsn"]

RAW_PREVIEW_BYTES = 16 << 10


def default_dsn() -> str:
    """The embedded default: ``./driftwatch-data`` under the working directory."""
    return "chdb://" + str(Path("driftwatch-data").resolve())


def validate_dsn(dsn: str) -> str:
    """Check a DSN's scheme and shape; return it unchanged."""
    parts = urlsplit(dsn)
    if parts.scheme == "chdb":
        if not (parts.path or parts.netloc):
            raise ConfigError(f"chdb DSN needs a path, as chdb:///abs/path; got {dsn!r}")
        return dsn
    if parts.scheme in ("http", "https"):
        if not parts.hostname:
            raise ConfigError(f"ClickHouse DSN needs a host, as http://user:pass@host:8123/db; got {dsn!r}")
        return dsn
    raise ConfigError(f"store DSN must start with chdb://, http:// or https://; got {dsn!r}")


def _redact(dsn: str) -> str:
    parts = urlsplit(dsn)
    if parts.password:
        return dsn.replace(f":{parts.password}@", ":***@")
    return dsn


def text_hash(text: str | None) -> str:
    if not text:
        return ""
    return hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=16).hexdigest()


class DeadLetter:
    """A record that could not become an event, and where it came from."""

    __slots__ = ("field", "line", "offset", "partition", "raw", "reason", "received_ms", "source")

    def __init__(
        self,
        *,
        source: str,
        reason: str,
        raw: bytes,
        field: str | None = None,
        line: int = 0,
        partition: int = -1,
        offset: int = -1,
        received_ms: int | None = None,
    ) -> None:
        self.source = source
        self.reason = reason
        self.raw = raw
        self.field = field or ""
        self.line = line
        self.partition = partition
        self.offset = offset
        self.received_ms = int(time.time() * 1000) if received_ms is None else received_ms

    @property
    def dead_letter_id(self) -> str:
        # Position plus content: the same bad line replayed is the same row.
        digest = hashlib.blake2b(digest_size=16)
        digest.update(f"{self.source}\x1f{self.partition}\x1f{self.offset}\x1f{self.line}\x1f".encode())
        digest.update(self.raw[:RAW_PREVIEW_BYTES])
        return digest.hexdigest()


class Store:
    """The process's ClickHouse client, with the schema ensured.

    Parameters
    ----------
    dsn
        ``chdb:///path`` or ``http(s)://user:pass@host:port/db``.
    """

    def __init__(self, dsn: str) -> None:
        self.dsn = validate_dsn(dsn)
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

    def command(self, sql: str, **kwargs: Any) -> Any:
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


class ClickHouseSink:
    """Buffers rows per table and writes each table in one insert on flush.

    Alerts already stored (same deterministic id) are dropped before the
    insert, so a replayed file or a retried batch re-raises nothing; the
    ReplacingMergeTree engine is the backstop for concurrent writers.

    Parameters
    ----------
    store
        The process's :class:`Store`.
    store_text
        Keep raw input and output text in ``events``; off by default.
    flush_rows
        ``add_*`` flushes by itself once this many rows are buffered.
    """

    def __init__(self, store: Store, *, store_text: bool = False, flush_rows: int = 50_000) -> None:
        if flush_rows <= 0:
            raise ConfigError(f"flush_rows must be > 0; got {flush_rows!r}")
        self.store = store
        self.store_text = store_text
        self.flush_rows = flush_rows
        self._events: list[tuple[Any, ...]] = []
        self._metrics: list[MetricRow] = []
        self._alerts: list[Alert] = []
        self._dead: list[DeadLetter] = []
        self._candidates: list[TriggerCandidate] = []
        self.written = {"events": 0, "window_metrics": 0, "alerts": 0, "dead_letters": 0, "trigger_candidates": 0}
        self.new_alerts: list[Alert] = []

    @property
    def buffered(self) -> int:
        return (len(self._events) + len(self._metrics) + len(self._alerts) + len(self._dead)
                + len(self._candidates))

    def drain_new_alerts(self) -> list[Alert]:
        """Alerts written since the last call, in write order (for notifiers)."""
        fresh, self.new_alerts = self.new_alerts, []
        return fresh

    def add_events(self, events: Sequence[Event], sources: Sequence[str]) -> None:
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
        self._metrics.extend(findings.metrics)
        self._alerts.extend(findings.alerts)
        self._candidates.extend(findings.candidates)
        self._maybe_flush()

    def add_dead_letters(self, letters: Iterable[DeadLetter]) -> None:
        self._dead.extend(letters)
        self._maybe_flush()

    def _maybe_flush(self) -> None:
        if self.buffered >= self.flush_rows:
            self.flush()

    def flush(self) -> None:
        """Write everything buffered. On error the buffers are kept for a retry."""
        if self._events:
            self.store.insert("events", _columns(self._events), EVENT_COLUMNS)
            self.written["events"] += len(self._events)
            self._events = []
        if self._metrics:
            rows = self._metrics
            self.store.insert("window_metrics", _columns(
                (m.model_id, m.model_version, m.tenant_id, m.detector, m.metric, m.window_start_ms,
                 m.window_end_ms, m.value, m.count, m.extra) for m in rows), METRIC_COLUMNS)
            self.written["window_metrics"] += len(rows)
            self._metrics = []
        if self._alerts:
            unique = list({alert.alert_id: alert for alert in self._alerts}.values())
            seen = self.store.existing_ids("alerts", "alert_id", (a.alert_id for a in unique))
            fresh = [alert for alert in unique if alert.alert_id not in seen]
            if fresh:
                self.store.insert("alerts", _columns(
                    (a.alert_id, a.ts_ms, a.model_id, a.model_version, a.tenant_id, a.detector,
                     a.metric, a.severity, a.score, a.threshold, a.window_start_ms, a.window_end_ms,
                     a.evidence) for a in fresh), ALERT_INSERT_COLUMNS)
            self.written["alerts"] += len(fresh)
            self.new_alerts.extend(fresh)
            self._alerts = []
        if self._candidates:
            candidates = self._candidates
            self.store.insert("trigger_candidates", _columns(
                (c.candidate_id, c.model_id, c.model_version, c.ngram, c.kind, c.window_start_ms,
                 c.window_end_ms, c.support, c.anomalous_support, c.distinct_users, c.distinct_tenants,
                 c.lift, c.p_value, c.q_value, list(c.example_event_ids), list(c.tenant_ids)) for c in candidates),
                CANDIDATE_COLUMNS)
            self.written["trigger_candidates"] += len(candidates)
            self._candidates = []
        if self._dead:
            self.store.insert("dead_letters", _columns(
                (d.dead_letter_id, d.received_ms, d.source, d.partition, d.offset, d.line,
                 d.reason, d.field, d.raw[:RAW_PREVIEW_BYTES].decode("utf-8", "replace"),
                 len(d.raw)) for d in self._dead), DEAD_LETTER_COLUMNS)
            self.written["dead_letters"] += len(self._dead)
            self._dead = []


def _columns(rows: Iterable[Sequence[Any]]) -> list[list[Any]]:
    """Transpose rows into columns for a column-oriented insert."""
    return [list(column) for column in zip(*rows, strict=True)]
