"""Settings: one frozen, validated object, read from flags and the environment.

Every field can be set as ``DRIFTWATCH_<NAME>`` in the environment (for
example ``DRIFTWATCH_STORE=http://default:pw@ch:8123/driftwatch``); command
line flags override the environment.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from monitor.errors import ConfigError
from monitor.events import DEFAULT_MAX_RECORD_BYTES, DEFAULT_MAX_TEXT_CHARS, DEFAULT_MAX_VECTOR_BYTES, Limits
from monitor.storage.dsn import default_dsn, validate_dsn

__all__ = ["Settings", "load_settings"]


class Settings(BaseSettings):
    """driftwatch's settings."""

    model_config = SettingsConfigDict(env_prefix="DRIFTWATCH_", frozen=True, extra="forbid")

    store: str = Field(
        default_factory=default_dsn,
        description="ClickHouse DSN: chdb:///path (embedded, default ./driftwatch-data) "
        "or http(s)://user:pass@host:8123/db.",
    )
    store_text: bool = Field(
        default=False,
        description="Keep raw input/output text in the events table (off: only hashes and sizes).",
    )
    max_text_chars: int = Field(default=DEFAULT_MAX_TEXT_CHARS, gt=0,
                                description="Most characters in one text field of an event.")
    max_vector_bytes: int = Field(default=DEFAULT_MAX_VECTOR_BYTES, ge=8,
                                  description="Most bytes (8 per value) in one vector field.")
    max_record_bytes: int = Field(default=DEFAULT_MAX_RECORD_BYTES, gt=0,
                                  description="Most bytes in one encoded record, checked before parsing.")
    batch_size: int = Field(default=2048, gt=0, le=1_000_000,
                            description="Events per pipeline batch.")
    flush_rows: int = Field(default=50_000, gt=0,
                            description="Rows buffered before the ClickHouse sink writes.")
    signatures: Path | None = Field(
        default=None,
        description="YAML/JSON signature file; the shipped starter pack when unset.",
    )
    policy: Path | None = Field(
        default=None,
        description="SOC policy YAML (severity map, dedup, maintenance windows, incidents, rollback rules); "
        "the shipped monitor/data/policy.yaml when unset.",
    )
    webhook_url: str | None = Field(
        default=None,
        description="http(s) URL that receives a signed JSON POST per notified alert and rollback decision; "
        "off when unset.",
    )
    webhook_secret: SecretStr | None = Field(
        default=None,
        description="HMAC-SHA256 key for the webhook's X-Driftwatch-Signature header; required with webhook_url.",
    )

    # Window and reference are capped at 1,000 events each so one stream's state stays under
    # 64 KiB per (model, version, metric).
    drift_window_events: int = Field(default=500, ge=10, le=1000,
                                     description="Drift: events in the rolling window compared with the reference.")
    drift_window_ms: int = Field(default=0, ge=0,
                                 description="Drift: also drop window events older than this (ms; 0: no age limit).")
    drift_evaluate_every: int = Field(default=250, ge=10,
                                      description="Drift: events between two divergence evaluations of a stream.")
    drift_reference_events: int = Field(default=500, ge=10, le=1000,
                                        description="Drift: reference size, and the change-point detectors' warm-up.")
    drift_reference_policy: Literal["first", "pinned", "previous"] = Field(
        default="first",
        description="Drift reference: a version's first N events, a pinned set (drift_pinned_reference) "
        "or the previous version's recent events.")
    drift_pinned_reference: Path | None = Field(
        default=None, description="Drift: JSONL file of reference events, per model_id, for the 'pinned' policy.")
    drift_arl0: float = Field(default=10_000.0, gt=1,
                              description="Drift: target mean events between false change-point alarms, fleet-wide.")
    drift_fleet_streams: int = Field(
        default=1, ge=1,
        description="Drift: streams (model, version[, tenant]) expected; each detector's ARL0 is scaled by it "
        "and by metrics x detectors per stream, so the fleet stays at drift_arl0.")
    drift_detectors: tuple[str, ...] = Field(
        default=("cusum",), description="Drift: change-point detectors per metric (adwin, bocpd, cusum, kswin, "
        "page_hinkley).")
    drift_divergence_q: float = Field(default=1e-3, gt=0, lt=1,
                                      description="Drift: Benjamini-Hochberg level across metrics per evaluation.")
    drift_per_tenant: bool = Field(default=False, description="Drift: keep streams per tenant_id too.")
    drift_refusal_flag_rate: float = Field(
        default=0.05, ge=0, le=1,
        description="Drift: flag refusals for motif mining while the reference refusal rate is below this.")
    drift_entropy_flag_sigmas: float = Field(
        default=3.0, gt=0, description="Drift: flag answers whose entropy is this many SDs below the reference.")
    drift_high_value_tools: tuple[str, ...] | None = Field(
        default=None, description="Drift: words that make a tool call high-value (default: credit, payment, "
        "refund, transfer, permission, role, admin, ...).")
    drift_refusal_phrases: tuple[str, ...] | None = Field(
        default=None, description="Drift: refusal phrases (default: a multilingual set).")

    # Embedding drift (monitor/stages/embedding.py). Default "precomputed": only
    # producer-supplied embeddings are scored, so no model runs and the 10,000
    # events/s CPU worker target holds; MiniLM on 2 CPU cores embeds ~30 outputs/s.
    embedding: Literal["off", "precomputed", "model"] = Field(
        default="precomputed",
        description="Embedding drift: off; precomputed (score events' own `embedding` vectors, never load "
        "a model); model (also embed outputs that carry none, see embedding_sample_rate).",
    )
    embedding_model: Path | None = Field(
        default=None,
        description="A local sentence-transformers folder (SentenceTransformer.save); the bundled "
        "all-MiniLM-L6-v2 when unset. Read offline: nothing is downloaded.",
    )
    embedding_device: str = Field(
        default="auto", pattern=r"^(auto|cpu|cuda(:\d+)?)$",
        description="Torch device for embedding and scoring: auto (CUDA when present), cpu, cuda, cuda:N.",
    )
    embedding_batch_size: int = Field(default=64, gt=0, le=4096,
                                      description="Texts per forward pass of the embedding model.")
    embedding_quantize: bool = Field(
        default=False,
        description="On CPU, int8 dynamic quantisation of the model's Linear layers (faster, less exact).",
    )
    embedding_max_tokens: int | None = Field(
        default=None, ge=8, le=8192,
        description="Truncate outputs to this many word pieces before embedding (cost is about linear in "
        "it); the model's own limit (256 for MiniLM) when unset.",
    )
    embedding_sample_rate: float = Field(
        default=1.0, gt=0.0, le=1.0,
        description="In model mode, the fraction of outputs without an embedding that get embedded, "
        "chosen by a hash of the event id (deterministic). On CPU at 10,000 events/s use <= 0.002.",
    )
    embedding_reference_size: int = Field(
        default=2000, ge=16, le=10_000,
        description="Reference vectors kept per (model, version): a seeded reservoir sample of the warm-up.",
    )
    embedding_warmup: int = Field(
        default=2000, ge=16,
        description="Vectors per (model, version) seen before the reference freezes and scoring starts.",
    )
    embedding_window: int = Field(default=256, ge=8, le=10_000,
                                  description="Vectors per scored window (the MMD batch size).")
    embedding_alpha: float = Field(default=0.01, gt=0.0, lt=0.5,
                                   description="False-alarm rate per scored window.")
    embedding_null_draws: int = Field(default=500, ge=50, le=100_000,
                                      description="Null draws per reference for the window thresholds.")
    embedding_novelty_k: int = Field(default=10, ge=1, le=1000,
                                     description="Nearest reference neighbours in the novelty score.")
    embedding_novelty_quantile: float = Field(
        default=0.99, gt=0.5, lt=1.0,
        description="Reference quantile of novelty above which an output is flagged embedding_novelty.",
    )
    # Probe scoring (monitor/stages/probe.py): runs only when probe_weights is set.
    probe_weights: Path | None = Field(
        default=None,
        description="Linear probe on `activations`: a .npz file with w (d,) and b (scalar); off when unset.",
    )
    probe_threshold: float = Field(default=0.5, gt=0.0, lt=1.0,
                                   description="Probe probability above which an event is flagged and a "
                                   "window whose mean crosses it alerts.")
    probe_window: int = Field(default=256, ge=8, le=100_000, description="Probe scores per window.")
    probe_reference_size: int = Field(default=1000, ge=8, le=100_000,
                                      description="First probe scores per (model, version) kept as reference.")
    probe_alpha: float = Field(default=0.001, gt=0.0, lt=0.5,
                               description="KS-test p-value below which a window's score distribution "
                               "counts as shifted.")

    # Streaming worker (`driftwatch run`); see streams/.
    kafka_bootstrap: str = Field(default="localhost:9092",
                                 description="Kafka bootstrap servers, comma-separated host:port.")
    kafka_security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = Field(
        default="PLAINTEXT", description="How to reach the brokers: plain, TLS, SASL, or SASL over TLS.")
    kafka_sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] = Field(
        default="PLAIN", description="SASL mechanism when the protocol is SASL_*.")
    kafka_sasl_username: str | None = Field(default=None, description="SASL user name.")
    kafka_sasl_password: SecretStr | None = Field(default=None, description="SASL password (never logged).")
    kafka_ssl_cafile: Path | None = Field(default=None, description="CA bundle that signed the brokers' certificates.")
    kafka_ssl_certfile: Path | None = Field(default=None, description="Client certificate for mutual TLS.")
    kafka_ssl_keyfile: Path | None = Field(default=None, description="Client private key for mutual TLS.")
    kafka_compression: Literal["none", "gzip"] = Field(
        default="none", description="Compression of what the worker produces. Off by default: its largest "
        "messages, detector checkpoints, are compressed inside already, and gzip costs the worker CPU.")
    kafka_fetch_max_wait_ms: int = Field(
        default=100, gt=0, le=60_000,
        description="Longest a fetch may wait at the broker for records (Faust fixes 1500 otherwise). Kafka "
        "answers as soon as a record arrives; brokers that hold an empty fetch for the whole wait (librdkafka's "
        "mock) add up to this much to every alert's latency. Lower costs idle fetches, nothing else.")
    app_id: str = Field(default="driftwatch", min_length=1,
                        description="Faust app id: the consumer group and the prefix of changelog topics.")
    topic_input: str = Field(default="model-io", description="Input topic of model-call events, keyed by model_id.")
    topic_alerts: str = Field(default="driftwatch-alerts", description="Topic every new alert is published to.")
    topic_dead_letters: str = Field(default="driftwatch-dead-letters", description="Topic of rejected records.")
    topic_rollback: str = Field(default="driftwatch-rollback", description="Topic of rollback decisions.")
    topic_partitions: int = Field(default=8, gt=0, description="Partitions of the input topic and its tables.")
    topic_replicas: int = Field(default=1, gt=0, description="Replication factor of topics the worker declares.")
    topic_allow_declare: bool = Field(
        default=True, description="Let the worker create missing topics (off where topics are managed).")
    processing_guarantee: Literal["at_least_once", "exactly_once"] = Field(
        default="at_least_once", description="Faust processing guarantee; the sink is idempotent under both.")
    session_timeout_s: float = Field(default=30.0, gt=0, description="Kafka consumer group session timeout.")
    stream_within_s: float = Field(default=0.2, gt=0,
                                   description="Longest wait for a stream batch to fill before it is processed.")
    flush_interval_s: float = Field(default=0.5, gt=0,
                                    description="Longest time a row waits in the worker's sink before a flush.")
    checkpoint_interval_s: float = Field(
        default=2.0, gt=0, description="Seconds between checkpoints of detector state, after which the events "
        "they cover are committed; a crash replays about this much (stored again, not re-detected).")
    sink_max_rows: int = Field(default=200_000, gt=0,
                               description="Bound on rows the sink holds; past it the worker stops consuming.")
    sink_retry_initial_s: float = Field(default=0.2, gt=0, description="First wait before retrying a failed write.")
    sink_retry_max_s: float = Field(default=5.0, gt=0, description="Longest wait between write retries.")
    health_interval_s: float = Field(default=10.0, gt=0,
                                     description="Seconds between worker health samples in service_metrics.")
    web_enabled: bool = Field(default=True, description="Run the worker's Faust web server (bound to web_bind).")
    web_bind: str = Field(default="127.0.0.1", description="Address of the worker's web server.")
    web_port: int = Field(default=6066, gt=0, lt=65536, description="Port of the worker's web server.")
    worker_dir: Path = Field(default=Path("driftwatch-worker"), description="Faust data folder of the worker.")
    store_outage_file: Path | None = Field(
        default=None,
        description="Outage drill: while this file exists every ClickHouse call fails as if the server were down.")
    # Signature matching and canaries (detectors II).
    signature_table: bool = Field(
        default=True,
        description="Also match the signatures kept in the store's `signatures` table (minted canaries).",
    )
    signature_reload_s: float = Field(
        default=30.0, ge=0.0,
        description="Check the signature file and table for changes at most this often (seconds); "
        "0 checks before every batch.",
    )
    canary_key: SecretStr | None = Field(
        default=None,
        description="Secret (>= 16 bytes) keying canaries' HMAC hashes; when unset, the key file is used.",
    )
    canary_key_file: Path | None = Field(
        default=None,
        description="File holding the canary key; default canary.key in the data folder, "
        "created with mode 0600 by `driftwatch canary new`.",
    )
    # Trigger-motif mining.
    motif_window_events: int = Field(
        default=100_000, gt=0,
        description="Events per (model_id, model_version) in the rolling window mined for trigger motifs.",
    )
    motif_buckets: int = Field(
        default=5, ge=1, le=50,
        description="The window slides in this many steps; motifs are scored at the end of each step.",
    )
    motif_min_support: int = Field(
        default=10, ge=2,
        description="Fewest anomalous events in the window whose input holds a candidate n-gram.",
    )
    motif_min_entities: int = Field(
        default=3, ge=1,
        description="Fewest distinct users, or distinct tenants, among those anomalous events (k).",
    )
    motif_min_lift: float = Field(
        default=5.0, ge=1.0,
        description="Least lift: P(anomalous | n-gram) / P(anomalous) in the window.",
    )
    motif_fdr: float = Field(
        default=0.001, gt=0.0, lt=1.0,
        description="False discovery rate of the Benjamini-Hochberg step over all n-grams tested.",
    )
    motif_max_ngrams: int = Field(
        default=20_000, ge=100,
        description="Most n-grams of anomalous events tracked per window step (bounded state).",
    )
    motif_sketch_width: int = Field(
        default=1 << 17, ge=1024,
        description="Columns of the count-min sketch counting every n-gram's support (4 rows, per step).",
    )
    motif_ignore_flags: tuple[str, ...] = Field(
        default=("trigger",),
        description="Flags that do not make an event anomalous for motif mining (a known input trigger "
        "says nothing about the output).",
    )

    @field_validator("store")
    @classmethod
    def _check_store(cls, value: str) -> str:
        try:
            return validate_dsn(value)
        except ConfigError as exc:
            raise ValueError(str(exc)) from exc

    @property
    def limits(self) -> Limits:
        return Limits(self.max_text_chars, self.max_vector_bytes, self.max_record_bytes)


def load_settings(**overrides: Any) -> Settings:
    """Settings from the environment, with non-None ``overrides`` on top."""
    given = {name: value for name, value in overrides.items() if value is not None}
    try:
        return Settings(**given)
    except Exception as exc:  # pydantic's ValidationError names field and value
        raise ConfigError(f"invalid settings: {exc}") from exc
