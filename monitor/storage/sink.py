"""The batching ClickHouse writer.

:class:`ClickHouseSink` buffers rows in ``add_*`` and writes them in
``flush``, one batched insert per table, reusing an insert context per table.
A failed write keeps its rows and is retried with capped exponential backoff
(:class:`~monitor.storage.rows.Backoff`); the buffer has a hard bound, so a
caller that keeps adding while ClickHouse is down is told to stop
(:class:`~monitor.errors.SinkFullError`) instead of growing without limit.

Rows are mapped to columns by name: the columns of each table come from
:data:`~monitor.storage.tables.TABLES`, and a finding's value for a column is
its attribute of that name (or ``<name>_ms`` for a time), so no column list is
written here.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import threading
from collections.abc import Callable, Sequence
from operator import attrgetter
from typing import Any

from detectors.signatures.canary import CANARY_SHAPE
from monitor.alerts import Alert, Findings, MetricRow, TriggerCandidate
from monitor.errors import ConfigError, RowsRefusedError, SinkFullError, StorageError
from monitor.events import Event, collision_reason
from monitor.storage.rows import RAW_PREVIEW_BYTES, Backoff, DeadLetter, ServiceMetric
from monitor.storage.store import Store, text_hash
from monitor.storage.tables import TABLES

logger = logging.getLogger(__name__)

__all__ = ["ClickHouseSink", "dead_letter_row", "dict_columns", "record_columns", "refused_letter"]


def record_columns(table: str, records: Sequence[object]) -> tuple[list[list[Any]], tuple[str, ...]]:
    """Column-oriented values of ``records`` for ``table``'s insert columns, and those names.

    Each column is read from the attribute of the same name, or ``<name>_ms``
    for a time kept in milliseconds; tuples become lists (ClickHouse arrays).

    Examples
    --------
    >>> from monitor.storage.rows import ServiceMetric
    >>> record_columns("service_metrics", [ServiceMetric(ts_ms=5, worker="w", metric="lag", value=1.0)])
    ([[5], ['w'], ['lag'], [''], [-1], [1.0]], ('ts', 'worker', 'metric', 'topic', 'partition', 'value'))
    """
    names = TABLES[table].insert_columns
    first = records[0]
    getters = [attrgetter(name if hasattr(first, name) else f"{name}_ms") for name in names]
    return [[_plain(get(record)) for record in records] for get in getters], names


def dict_columns(table: str, rows: Sequence[dict[str, Any]]) -> tuple[list[list[Any]], tuple[str, ...]]:
    """Column-oriented values of rows keyed by column name, for ``table``'s insert columns."""
    names = TABLES[table].insert_columns
    return [[row[name] for row in rows] for name in names], names


def dead_letter_row(letter: DeadLetter, *, keep_text: bool = False) -> dict[str, Any]:
    """A ``dead_letters`` row, keyed by column name.

    The record itself is kept as a preview only with ``keep_text`` (the
    store-text setting), and then with every canary-shaped token masked: a
    rejected record can carry user text and canary values like any other.
    Otherwise the row holds its hash, size and where and why it failed.

    >>> letter = DeadLetter(source="f", reason="bad", raw=b'{"output": "dwc-abcdef-ghijkl-mnopqr-stuvwx"')
    >>> dead_letter_row(letter, keep_text=True)["raw"], dead_letter_row(letter)["raw"]
    ('{"output": "[canary]"', '')
    """
    preview = _without_canaries(letter.raw[:RAW_PREVIEW_BYTES].decode("utf-8", "replace")) if keep_text else ""
    return {"dead_letter_id": letter.dead_letter_id, "received_at": letter.received_ms, "source": letter.source,
            "partition": letter.partition, "offset": letter.offset, "line": letter.line, "reason": letter.reason,
            "field": letter.field, "raw": preview, "raw_bytes": len(letter.raw),
            "raw_hash": hashlib.blake2b(letter.raw, digest_size=16).hexdigest()}


_CANARY = re.compile(CANARY_SHAPE.pattern, re.IGNORECASE)


def _without_canaries(text: str) -> str:
    """``text`` with every canary-shaped token masked: a preview never holds a canary value."""
    return _CANARY.sub("[canary]", text)


def refused_letter(table: str, row: Any, reason: str) -> DeadLetter:
    """A dead letter for one row the store refused: its table, ids and the store's reason, no text."""
    record = row if isinstance(row, dict) else {name: getattr(row, name, None) for name in _IDS}
    ids = {name: record[name] for name in _IDS if record.get(name) not in (None, "")}
    source = str(record.get("source") or f"store:{table}")
    return DeadLetter(source=source, reason=f"the store refused this {table} row: {reason}", field=f"{table}",
                      raw=json.dumps(ids, sort_keys=True, default=str).encode())


# What identifies a refused row in its dead letter (never text).
_IDS = ("event_id", "alert_id", "candidate_id", "dead_letter_id", "model_id", "model_version", "content_hash",
        "detector", "metric", "worker")


_ToColumns = Callable[[str, Any], tuple[list[list[Any]], tuple[str, ...]]]


def _plain(value: Any) -> Any:
    return list(value) if isinstance(value, tuple) else value


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
    monitor.errors.SinkFullError: sink holds 1 rows and was given 1 more; expected at most 1 in all (flush first)
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
        self._events: list[dict[str, Any]] = []
        self._metrics: list[MetricRow] = []
        self._alerts: list[Alert] = []
        self._dead: list[DeadLetter] = []
        self._service: list[ServiceMetric] = []
        self._candidates: list[TriggerCandidate] = []
        self._closed = threading.Event()
        self.written = {"events": 0, "window_metrics": 0, "alerts": 0, "dead_letters": 0, "trigger_candidates": 0}
        self.samples_written = 0
        self.retries = 0
        #: Dead letters the store refused too (logged at ERROR; nothing else can hold them).
        self.unwritable = 0
        self.new_alerts: list[Alert] = []

    @property
    def buffered(self) -> int:
        return (len(self._events) + len(self._metrics) + len(self._alerts) + len(self._dead) + len(self._service)
                + len(self._candidates))

    def drain_new_alerts(self) -> list[Alert]:
        """Alerts written since the last call, in write order (for notifiers); updates have ``is_update``."""
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
            rows.append({
                "event_id": event.event_id, "ts": event.ts, "model_id": event.model_id,
                "model_version": event.model_version, "tenant_id": event.tenant_id or "",
                "user_id": event.user_id or "", "session_id": event.session_id or "",
                "input_hash": text_hash(event.input), "output_hash": text_hash(event.output),
                "system_prompt_hash": text_hash(event.system_prompt),
                "input_chars": len(event.input), "output_chars": len(event.output),
                "input_tokens": event.input_tokens, "output_tokens": event.output_tokens,
                "latency_ms": event.latency_ms,
                "tool_names": [call.name for call in event.tool_calls] if event.tool_calls else [],
                "labels": event.labels or {},
                "has_embedding": event.embedding is not None, "has_activations": event.activations is not None,
                "input": event.input if keep_text else "", "output": event.output if keep_text else "",
                "source": source, "content_hash": event.content_hash,
            })
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
        if self._events:
            self._drop_stored_events()
        if self._events:
            self.written["events"] += self._write_prefix(self._events, "events", dict_columns)
        if self._metrics:
            self.written["window_metrics"] += self._write_prefix(self._metrics, "window_metrics", record_columns)
        if self._alerts:
            alerts = self._alerts[:len(self._alerts)]
            # One row per id and flush: its newest revision. An update (revision > 0) replaces the stored
            # row (ReplacingMergeTree keeps the last written); a new alert already stored is a repeat.
            newest: dict[str, Alert] = {}
            for alert in alerts:
                if alert.alert_id not in newest or alert.revision >= newest[alert.alert_id].revision:
                    newest[alert.alert_id] = alert
            unique = list(newest.values())
            seen = self.store.existing_ids("alerts", "alert_id", (a.alert_id for a in unique if not a.is_update))
            fresh = [alert for alert in unique if alert.is_update or alert.alert_id not in seen]
            refused = self._insert_splitting("alerts", fresh, record_columns) if fresh else []
            stored = [alert for alert in fresh if alert.alert_id not in {a.alert_id for a in refused}]
            self.written["alerts"] += len(stored)
            self.new_alerts.extend(stored)
            del self._alerts[:len(alerts)]
        if self._candidates:
            self.written["trigger_candidates"] += self._write_prefix(self._candidates, "trigger_candidates",
                                                                     record_columns)
        if self._dead:
            self.written["dead_letters"] += self._write_prefix(self._dead, "dead_letters", self._dead_letter_columns)
        if self._service:
            self.samples_written += self._write_prefix(self._service, "service_metrics", record_columns)

    def _write_prefix(self, buffer: list[Any], table: str, to_columns: _ToColumns) -> int:
        # The buffer is cut at its length now and only that prefix is written and then
        # removed, so rows appended meanwhile (the worker flushes on another thread) stay.
        rows = buffer[:len(buffer)]
        refused = self._insert_splitting(table, rows, to_columns)
        del buffer[:len(rows)]
        return len(rows) - len(refused)

    def _insert_splitting(self, table: str, rows: Sequence[Any], to_columns: _ToColumns) -> list[Any]:
        """Insert ``rows``; a batch whose data the store refuses is halved until each refused row stands
        alone, and those are dead-lettered with the store's reason. Return the refused rows.

        An outage (any other :class:`StorageError`) propagates, rows kept, for :meth:`flush` to retry.
        """
        try:
            self.store.insert(table, *to_columns(table, rows))
            return []
        except RowsRefusedError as exc:
            if len(rows) > 1:
                half = len(rows) // 2
                return (self._insert_splitting(table, rows[:half], to_columns)
                        + self._insert_splitting(table, rows[half:], to_columns))
            if table == "dead_letters":
                # Nowhere left to put it: say so loudly rather than loop.
                logger.error("dead letter refused by the store, not written dead_letter_id=%s error=%s",
                             rows[0].dead_letter_id, exc)
                self.unwritable += 1
            else:
                logger.warning("row refused by the store, dead-lettered table=%s error=%s", table, exc)
                self._dead.append(refused_letter(table, rows[0], str(exc)))
            return [rows[0]]

    def _dead_letter_columns(self, table: str,
                             letters: Sequence[DeadLetter]) -> tuple[list[list[Any]], tuple[str, ...]]:
        return dict_columns(table, [dead_letter_row(letter, keep_text=self.store_text) for letter in letters])

    def _drop_stored_events(self) -> None:
        """Leave out events stored already; dead-letter a stored key that comes back with other content.

        The same call replayed is the same row (ReplacingMergeTree would fold
        it anyway). A different record under a taken id must not replace the
        evidence an alert was raised on: it goes to dead letters with both
        content hashes. Rows stored before content hashes existed have none and
        are left to the engine as before.
        """
        rows = self._events[:len(self._events)]
        stored = self.store.stored_event_hashes(rows)
        if not stored:
            return
        keep: list[dict[str, Any]] = []
        for row in rows:
            known = stored.get((row["model_id"], row["model_version"], row["ts"], row["event_id"]))
            if not known:
                keep.append(row)
            elif known == row["content_hash"]:
                self.written["events"] += 1  # in the store already, as it is
            else:
                self._dead.append(DeadLetter(
                    source=row["source"], reason=collision_reason(row["event_id"], known, row["content_hash"]),
                    field="$.event_id", raw=json.dumps({"event_id": row["event_id"],
                                                        "content_hash": row["content_hash"]}).encode()))
        self._events[:len(rows)] = keep
