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

SIGNATURES = """\
CREATE TABLE IF NOT EXISTS signatures
(
    signature_id String,
    kind LowCardinality(String) COMMENT 'literal, regex, token_set or canary',
    pattern String COMMENT 'the pattern; empty for canaries, which keep only pattern_hash',
    pattern_hash String COMMENT 'keyed hash of the pattern (canaries) or blake2b-128',
    applies_to LowCardinality(String) COMMENT 'input, output or both',
    scope String COMMENT 'global, or the tenant_id it applies to',
    severity LowCardinality(String),
    description String,
    source String COMMENT 'citation or who minted it',
    active UInt8,
    created_at DateTime64(3, 'UTC'),
    rotated_at Nullable(DateTime64(3, 'UTC')),
    version UInt64 COMMENT 'ReplacingMergeTree version: the newest row per id wins'
)
ENGINE = ReplacingMergeTree(version)
ORDER BY signature_id"""

TRIGGER_CANDIDATES = """\
CREATE TABLE IF NOT EXISTS trigger_candidates
(
    candidate_id String COMMENT 'deterministic: hash of model, version, n-gram, window',
    model_id LowCardinality(String),
    model_version LowCardinality(String),
    ngram String,
    kind LowCardinality(String) COMMENT 'word or char n-gram',
    window_start DateTime64(3, 'UTC'),
    window_end DateTime64(3, 'UTC'),
    support UInt64 COMMENT 'events in the window whose input holds the n-gram',
    anomalous_support UInt64 COMMENT 'of those, events whose output was flagged anomalous',
    distinct_users UInt64,
    distinct_tenants UInt64,
    lift Float64,
    p_value Float64 COMMENT 'one-sided Fisher exact test',
    q_value Float64 COMMENT 'Benjamini-Hochberg adjusted',
    example_event_ids Array(String),
    tenant_ids Array(String),
    created_at DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMM(window_end)
ORDER BY (model_id, model_version, ngram, candidate_id)"""

INCIDENTS = """\
CREATE TABLE IF NOT EXISTS incidents
(
    incident_id String COMMENT 'deterministic: model, version, detector family, window',
    model_id LowCardinality(String),
    model_version LowCardinality(String),
    family LowCardinality(String) COMMENT 'detector family the alerts belong to',
    severity LowCardinality(String) COMMENT 'the highest severity among its alerts',
    window_start DateTime64(3, 'UTC'),
    window_end DateTime64(3, 'UTC'),
    first_ts DateTime64(3, 'UTC'),
    last_ts DateTime64(3, 'UTC'),
    alert_count UInt64,
    alert_ids Array(String),
    updated_at DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = ReplacingMergeTree(updated_at)
PARTITION BY toYYYYMM(window_start)
ORDER BY (model_id, model_version, family, incident_id)"""

ACKNOWLEDGEMENTS = """\
CREATE TABLE IF NOT EXISTS acknowledgements
(
    target_id String COMMENT 'an alert_id, incident_id or rollback decision_id',
    target_kind LowCardinality(String) COMMENT 'alert, incident or rollback',
    state LowCardinality(String) COMMENT 'open, acknowledged, resolved or suppressed',
    actor String,
    note String,
    updated_at DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = ReplacingMergeTree(updated_at)
ORDER BY (target_kind, target_id)"""

ROLLBACK_DECISIONS = """\
CREATE TABLE IF NOT EXISTS rollback_decisions
(
    decision_id String COMMENT 'deterministic: policy rule, model, version, alert ids',
    ts DateTime64(3, 'UTC') COMMENT 'event time of the newest alert behind it',
    model_id LowCardinality(String),
    model_version LowCardinality(String),
    decision LowCardinality(String) COMMENT 'rollback or healthy',
    rule String COMMENT 'the policy rule that fired',
    reasons Array(String),
    alert_ids Array(String),
    created_at DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMM(ts)
ORDER BY (model_id, model_version, ts, decision_id)"""

SERVICE_METRICS = """\
CREATE TABLE IF NOT EXISTS service_metrics
(
    ts DateTime64(3, 'UTC') COMMENT 'wall-clock time of the sample',
    worker String COMMENT 'worker id (host:pid)',
    metric LowCardinality(String) COMMENT 'events_per_s, consumer_lag, sink_buffered_rows, sink_retries, ...',
    topic LowCardinality(String),
    partition Int32 COMMENT '-1 when not per partition',
    value Float64
)
ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMM(ts)
ORDER BY (metric, worker, topic, partition, ts)
TTL toDateTime(ts) + INTERVAL 30 DAY"""

MIGRATIONS: tuple[Migration, ...] = (
    Migration(1, "events, window_metrics, alerts, dead_letters",
              (EVENTS, WINDOW_METRICS, ALERTS, DEAD_LETTERS)),
    Migration(2, "signatures, trigger_candidates", (SIGNATURES, TRIGGER_CANDIDATES)),
    Migration(3, "incidents, acknowledgements, rollback_decisions",
              (INCIDENTS, ACKNOWLEDGEMENTS, ROLLBACK_DECISIONS)),
    Migration(4, "service_metrics", (SERVICE_METRICS,)),
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
