"""Every ClickHouse table, described once as data.

The DDL, the migrations, the sink's insert columns, the SIEM export's query,
the dashboards' column checks and the test fixtures are all derived from
:data:`TABLES`. A column added after its table shipped carries the migration
version that added it (``Column(..., since=5)``); :mod:`monitor.storage.schema`
turns it into an ``ALTER TABLE ... ADD COLUMN IF NOT EXISTS`` of that
migration, and the dashboards see it like any other column.

Examples
--------
>>> TABLES["alerts"].insert_columns[:3]
('alert_id', 'ts', 'model_id')
>>> print(TABLES["acknowledgements"].columns[0].sql())
    target_id String COMMENT 'an alert_id, incident_id or rollback decision_id'
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

__all__ = ["TABLES", "Column", "Table"]


@dataclass(frozen=True)
class Column:
    """One column: name, ClickHouse type, comment and default expression.

    ``since`` is the migration that added the column to an existing table;
    ``None`` means it came with the table.
    """

    name: str
    type: str
    comment: str = ""
    default: str = ""
    since: int | None = None

    def sql(self) -> str:
        """The column's line in ``CREATE TABLE`` (indented) or ``ADD COLUMN``."""
        text = f"    {self.name} {self.type}"
        if self.default:
            text += f" DEFAULT {self.default}"
        if self.comment:
            text += " COMMENT '" + self.comment.replace("'", "\\'") + "'"
        return text

    @property
    def is_time(self) -> bool:
        return self.type.startswith(("DateTime64", "Nullable(DateTime64"))


@dataclass(frozen=True)
class Table:
    """One ``ReplacingMergeTree`` (or other) table and the migration that created it."""

    name: str
    since: int
    columns: tuple[Column, ...]
    engine: str
    order_by: str
    partition_by: str = ""
    ttl: str = ""

    @property
    def column_names(self) -> tuple[str, ...]:
        return tuple(column.name for column in self.columns)

    @property
    def insert_columns(self) -> tuple[str, ...]:
        """Columns a writer supplies: every one without a server-side default."""
        return tuple(column.name for column in self.columns if not column.default)

    @property
    def engine_name(self) -> str:
        return self.engine.split("(", 1)[0]

    def create(self) -> str:
        """``CREATE TABLE IF NOT EXISTS`` with the columns it was created with."""
        body = ",\n".join(c.sql() for c in self.columns if c.since is None)
        lines = [f"CREATE TABLE IF NOT EXISTS {self.name}", "(", body, ")", f"ENGINE = {self.engine}"]
        if self.partition_by:
            lines.append(f"PARTITION BY {self.partition_by}")
        lines.append(f"ORDER BY {self.order_by}")
        if self.ttl:
            lines.append(f"TTL {self.ttl}")
        return "\n".join(lines)

    def added_in(self, version: int) -> tuple[str, ...]:
        """``ALTER TABLE`` statements for the columns migration ``version`` adds."""
        return tuple(f"ALTER TABLE {self.name} ADD COLUMN IF NOT EXISTS {c.sql().strip()}"
                     for c in self.columns if c.since == version)


_TIME = "DateTime64(3, 'UTC')"
_LOW = "LowCardinality(String)"
# Columns several tables share, in the place each table has them.
_MODEL = (Column("model_id", _LOW), Column("model_version", _LOW))
_WINDOW = (Column("window_start", _TIME), Column("window_end", _TIME))
_CREATED_AT = Column("created_at", _TIME, default="now64(3)")
_UPDATED_AT = Column("updated_at", _TIME, default="now64(3)")

MIGRATIONS_TABLE = Table(
    "schema_migrations", 0,
    (
        Column("version", "UInt32"),
        Column("description", "String"),
        Column("applied_at", _TIME, default="now64(3)"),
    ),
    engine="ReplacingMergeTree", order_by="version",
)

_TABLES = (
    Table(
        "events", 1,
        (
            Column("event_id", "String"),
            Column("ts", _TIME),
            *_MODEL,
            Column("tenant_id", "String"),
            Column("user_id", "String"),
            Column("session_id", "String"),
            Column("input_hash", "String", "blake2b-128 of the input text"),
            Column("output_hash", "String", "blake2b-128 of the output text"),
            Column("system_prompt_hash", "String"),
            Column("input_chars", "UInt32"),
            Column("output_chars", "UInt32"),
            Column("input_tokens", "Nullable(UInt32)"),
            Column("output_tokens", "Nullable(UInt32)"),
            Column("latency_ms", "Nullable(Float64)"),
            Column("tool_names", "Array(LowCardinality(String))"),
            Column("labels", "Map(LowCardinality(String), String)"),
            Column("has_embedding", "UInt8"),
            Column("has_activations", "UInt8"),
            Column("input", "String", "raw text, empty unless store_text is on"),
            Column("output", "String", "raw text, empty unless store_text is on"),
            Column("source", "String", "file:line or topic/partition/offset"),
            Column("ingested_at", _TIME, default="now64(3)"),
            Column("content_hash", "String", "blake2b-128 of the whole record (driftwatch.event.v2)", since=5),
        ),
        engine="ReplacingMergeTree", partition_by="toYYYYMM(ts)", order_by="(model_id, model_version, ts, event_id)",
    ),
    Table(
        "window_metrics", 1,
        (
            *_MODEL,
            Column("tenant_id", "String"),
            Column("detector", _LOW),
            Column("metric", _LOW),
            *_WINDOW,
            Column("value", "Float64"),
            Column("count", "UInt64"),
            Column("extra", "Map(LowCardinality(String), Float64)"),
            _CREATED_AT,
        ),
        engine="ReplacingMergeTree", partition_by="toYYYYMM(window_end)",
        order_by="(model_id, model_version, detector, metric, tenant_id, window_end, window_start)",
    ),
    Table(
        "alerts", 1,
        (
            Column("alert_id", "String", "deterministic: a hash of what raised it"),
            Column("ts", _TIME, "event time that raised it"),
            *_MODEL,
            Column("tenant_id", "String"),
            Column("detector", _LOW),
            Column("metric", "String"),
            Column("severity", _LOW, "info, low, medium, high or critical"),
            Column("score", "Float64"),
            Column("threshold", "Float64"),
            *_WINDOW,
            Column("evidence", "String", "JSON: event ids and values"),
            _CREATED_AT,
            Column("revision", "UInt32", "0 when raised; each update of the same alert (new evidence of a "
                   "sustained change) adds 1: the highest revision is the current one", since=6),
        ),
        engine="ReplacingMergeTree", partition_by="toYYYYMM(ts)",
        order_by="(model_id, model_version, detector, alert_id)",
    ),
    Table(
        "dead_letters", 1,
        (
            Column("dead_letter_id", "String"),
            Column("received_at", _TIME),
            Column("source", "String", "file path or Kafka topic"),
            Column("partition", "Int32", "-1 for files"),
            Column("offset", "Int64", "Kafka offset, -1 for files"),
            Column("line", "UInt64", "line number in a file, 0 for Kafka"),
            Column("reason", "String"),
            Column("field", "String"),
            Column("raw", "String", "the first bytes of the record, as text; empty unless store_text is on"),
            Column("raw_bytes", "UInt64"),
            Column("raw_hash", "String", "blake2b-128 of the whole record", since=5),
        ),
        engine="ReplacingMergeTree", order_by="(source, partition, offset, line, dead_letter_id)",
    ),
    Table(
        "signatures", 2,
        (
            Column("signature_id", "String"),
            Column("kind", _LOW, "literal, regex, token_set or canary"),
            Column("pattern", "String", "the pattern; empty for canaries, which keep only pattern_hash"),
            Column("pattern_hash", "String", "keyed hash of the pattern (canaries) or blake2b-128"),
            Column("applies_to", _LOW, "input, output or both"),
            Column("scope", "String", "global, or the tenant_id it applies to"),
            Column("severity", _LOW),
            Column("description", "String"),
            Column("source", "String", "citation or who minted it"),
            Column("active", "UInt8"),
            Column("created_at", _TIME),
            Column("rotated_at", "Nullable(DateTime64(3, 'UTC'))"),
            Column("version", "UInt64", "ReplacingMergeTree version: the newest row per id wins"),
        ),
        engine="ReplacingMergeTree(version)", order_by="signature_id",
    ),
    Table(
        "trigger_candidates", 2,
        (
            Column("candidate_id", "String", "deterministic: hash of model, version, n-gram, window"),
            *_MODEL,
            Column("ngram", "String"),
            Column("kind", _LOW, "word or char n-gram"),
            *_WINDOW,
            Column("support", "UInt64", "events in the window whose input holds the n-gram"),
            Column("anomalous_support", "UInt64", "of those, events whose output was flagged anomalous"),
            Column("distinct_users", "UInt64"),
            Column("distinct_tenants", "UInt64"),
            Column("lift", "Float64"),
            Column("p_value", "Float64", "one-sided Fisher exact test"),
            Column("q_value", "Float64", "Benjamini-Hochberg adjusted"),
            Column("example_event_ids", "Array(String)"),
            Column("tenant_ids", "Array(String)"),
            _CREATED_AT,
        ),
        engine="ReplacingMergeTree", partition_by="toYYYYMM(window_end)",
        order_by="(model_id, model_version, ngram, candidate_id)",
    ),
    Table(
        "incidents", 3,
        (
            Column("incident_id", "String", "deterministic: model, version, detector family, window"),
            *_MODEL,
            Column("family", _LOW, "detector family the alerts belong to"),
            Column("severity", _LOW, "the highest severity among its alerts"),
            *_WINDOW,
            Column("first_ts", _TIME),
            Column("last_ts", _TIME),
            Column("alert_count", "UInt64"),
            Column("alert_ids", "Array(String)"),
            _UPDATED_AT,
        ),
        engine="ReplacingMergeTree(updated_at)", partition_by="toYYYYMM(window_start)",
        order_by="(model_id, model_version, family, incident_id)",
    ),
    Table(
        "acknowledgements", 3,
        (
            Column("target_id", "String", "an alert_id, incident_id or rollback decision_id"),
            Column("target_kind", _LOW, "alert, incident or rollback"),
            Column("state", _LOW, "open, acknowledged, resolved or suppressed"),
            Column("actor", "String"),
            Column("note", "String"),
            _UPDATED_AT,
        ),
        engine="ReplacingMergeTree(updated_at)", order_by="(target_kind, target_id)",
    ),
    Table(
        "rollback_decisions", 3,
        (
            Column("decision_id", "String", "deterministic: policy rule, model, version, alert ids"),
            Column("ts", _TIME, "event time of the newest alert behind it"),
            *_MODEL,
            Column("decision", _LOW, "rollback or healthy"),
            Column("rule", "String", "the policy rule that fired"),
            Column("reasons", "Array(String)"),
            Column("alert_ids", "Array(String)"),
            _CREATED_AT,
        ),
        engine="ReplacingMergeTree", partition_by="toYYYYMM(ts)", order_by="(model_id, model_version, ts, decision_id)",
    ),
    Table(
        "service_metrics", 4,
        (
            Column("ts", _TIME, "wall-clock time of the sample"),
            Column("worker", "String", "worker id (host:pid)"),
            Column("metric", _LOW, "events_per_s, consumer_lag, sink_buffered_rows, sink_retries, ..."),
            Column("topic", _LOW),
            Column("partition", "Int32", "-1 when not per partition"),
            Column("value", "Float64"),
        ),
        engine="ReplacingMergeTree", partition_by="toYYYYMM(ts)",
        order_by="(metric, worker, topic, partition, ts)", ttl="toDateTime(ts) + INTERVAL 30 DAY",
    ),
)
TABLES: Mapping[str, Table] = MappingProxyType({table.name: table for table in _TABLES})
