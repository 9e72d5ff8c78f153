"""The ClickHouse schema, as numbered migrations.

Every table is created with ``IF NOT EXISTS`` and each migration is recorded
in ``schema_migrations``, so opening a store twice, or from two workers at
once, is harmless. Add a table or column by appending a migration; never edit
one that has shipped.

Tables keep one row per deterministic id (``ReplacingMergeTree``): a retried
insert or a replayed file adds no logical rows. Until a background merge runs,
read with ``FINAL`` (``driftwatch query`` sets ``final=1`` for you).

Column contract of ``alerts`` (dashboards and playbooks rely on it): see
:data:`ALERT_COLUMNS`.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["ALERT_COLUMNS", "MIGRATIONS", "SCHEMA_VERSION", "Migration", "ddl"]


@dataclass(frozen=True)
class Migration:
    version: int
    description: str
    statements: tuple[str, ...]


MIGRATIONS_TABLE = """\
CREATE TABLE IF NOT EXISTS schema_migrations
(
    version UInt32,
    description String,
    applied_at DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = ReplacingMergeTree
ORDER BY version"""

EVENTS = """\
CREATE TABLE IF NOT EXISTS events
(
    event_id String,
    ts DateTime64(3, 'UTC'),
    model_id LowCardinality(String),
    model_version LowCardinality(String),
    tenant_id String,
    user_id String,
    session_id String,
    input_hash String COMMENT 'blake2b-128 of the input text',
    output_hash String COMMENT 'blake2b-128 of the output text',
    system_prompt_hash String,
    input_chars UInt32,
    output_chars UInt32,
    input_tokens Nullable(UInt32),
    output_tokens Nullable(UInt32),
    latency_ms Nullable(Float64),
    tool_names Array(LowCardinality(String)),
    labels Map(LowCardinality(String), String),
    has_embedding UInt8,
    has_activations UInt8,
    input String COMMENT 'raw text, empty unless store_text is on',
    output String COMMENT 'raw text, empty unless store_text is on',
    source String COMMENT 'file:line or topic/partition/offset',
    ingested_at DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMM(ts)
ORDER BY (model_id, model_version, ts, event_id)"""

WINDOW_METRICS = """\
CREATE TABLE IF NOT EXISTS window_metrics
(
    model_id LowCardinality(String),
    model_version LowCardinality(String),
    tenant_id String,
    detector LowCardinality(String),
    metric LowCardinality(String),
    window_start DateTime64(3, 'UTC'),
    window_end DateTime64(3, 'UTC'),
    value Float64,
    count UInt64,
    extra Map(LowCardinality(String), Float64),
    created_at DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMM(window_end)
ORDER BY (model_id, model_version, detector, metric, tenant_id, window_end, window_start)"""

ALERTS = """\
CREATE TABLE IF NOT EXISTS alerts
(
    alert_id String COMMENT 'deterministic: a hash of what raised it',
    ts DateTime64(3, 'UTC') COMMENT 'event time that raised it',
    model_id LowCardinality(String),
    model_version LowCardinality(String),
    tenant_id String,
    detector LowCardinality(String),
    metric String,
    severity LowCardinality(String) COMMENT 'info, low, medium, high or critical',
    score Float64,
    threshold Float64,
    window_start DateTime64(3, 'UTC'),
    window_end DateTime64(3, 'UTC'),
    evidence String COMMENT 'JSON: event ids and values',
    created_at DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMM(ts)
ORDER BY (model_id, model_version, detector, alert_id)"""

DEAD_LETTERS = """\
CREATE TABLE IF NOT EXISTS dead_letters
(
    dead_letter_id String,
    received_at DateTime64(3, 'UTC'),
    source String COMMENT 'file path or Kafka topic',
    partition Int32 COMMENT '-1 for files',
    offset Int64 COMMENT 'Kafka offset, -1 for files',
    line UInt64 COMMENT 'line number in a file, 0 for Kafka',
    reason String,
    field String,
    raw String COMMENT 'the first bytes of the record, as text',
    raw_bytes UInt64
)
ENGINE = ReplacingMergeTree
ORDER BY (source, partition, offset, line, dead_letter_id)"""

MIGRATIONS: tuple[Migration, ...] = (
    Migration(1, "events, window_metrics, alerts, dead_letters",
              (EVENTS, WINDOW_METRICS, ALERTS, DEAD_LETTERS)),
)
SCHEMA_VERSION = MIGRATIONS[-1].version

ALERT_COLUMNS = (
    "alert_id", "ts", "model_id", "model_version", "tenant_id", "detector", "metric",
    "severity", "score", "threshold", "window_start", "window_end", "evidence",
)


def ddl() -> str:
    """Every statement of the current schema, as one SQL script."""
    statements = [MIGRATIONS_TABLE]
    for migration in MIGRATIONS:
        header = f"-- migration {migration.version}: {migration.description}\n"
        statements.append(header + migration.statements[0])
        statements.extend(migration.statements[1:])
    return ";\n\n".join(statements) + ";\n"
