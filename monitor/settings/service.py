"""The sections around the pipeline: ingest limits, the store, the streaming worker, the SOC policy."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import SettingsConfigDict

from monitor.errors import ConfigError
from monitor.events import (
    DEFAULT_MAX_LABEL_KEY_CHARS,
    DEFAULT_MAX_LABEL_VALUE_CHARS,
    DEFAULT_MAX_LABELS,
    DEFAULT_MAX_RECORD_BYTES,
    DEFAULT_MAX_TEXT_CHARS,
    DEFAULT_MAX_VECTOR_BYTES,
    Limits,
)
from monitor.settings.section import Section, env
from monitor.storage.dsn import default_dsn, validate_dsn

__all__ = ["IngestSettings", "KafkaSettings", "SocSettings", "StoreSettings"]


class IngestSettings(Section):
    """How records are read: batch size and the size limits of one record (``DRIFTWATCH_*``)."""

    section = "ingest"

    batch_size: int = Field(default=2048, gt=0, le=1_000_000, description="Events per pipeline batch.")
    max_text_chars: int = Field(default=DEFAULT_MAX_TEXT_CHARS, gt=0,
                                description="Most characters in one text field of an event.")
    max_vector_bytes: int = Field(default=DEFAULT_MAX_VECTOR_BYTES, ge=8,
                                  description="Most bytes (8 per value) in one vector field.")
    max_record_bytes: int = Field(default=DEFAULT_MAX_RECORD_BYTES, gt=0,
                                  description="Most bytes in one encoded record, checked before parsing.")
    max_labels: int = Field(default=DEFAULT_MAX_LABELS, ge=0, description="Most entries in an event's labels.")
    max_label_key_chars: int = Field(default=DEFAULT_MAX_LABEL_KEY_CHARS, gt=0,
                                     description="Most characters in one label key.")
    max_label_value_chars: int = Field(default=DEFAULT_MAX_LABEL_VALUE_CHARS, ge=0,
                                       description="Most characters in one label value.")
    math_threads: int = Field(default=1, ge=1, le=256,
                              description="Threads of the numeric libraries (BLAS) in the pipeline; scale out "
                                          "with workers instead: on small matrices extra threads only spin.")

    @property
    def limits(self) -> Limits:
        return Limits(max_text_chars=self.max_text_chars, max_vector_bytes=self.max_vector_bytes,
                      max_record_bytes=self.max_record_bytes, max_labels=self.max_labels,
                      max_label_key_chars=self.max_label_key_chars, max_label_value_chars=self.max_label_value_chars)


class StoreSettings(Section):
    """Where findings are kept (``DRIFTWATCH_STORE``, ``DRIFTWATCH_STORE_*``)."""

    model_config = SettingsConfigDict(env_prefix="DRIFTWATCH_STORE_")
    section = "store"

    dsn: str = Field(
        default_factory=default_dsn, validation_alias=env("store"),
        description="ClickHouse DSN: chdb:///path (embedded, default ./driftwatch-data) "
        "or http(s)://user:pass@host:8123/db.",
    )
    text: bool = Field(
        default=False,
        description="Keep raw input/output text in the events table (off: only hashes and sizes).",
    )
    flush_rows: int = Field(default=50_000, gt=0, validation_alias=env("flush_rows"),
                            description="Rows buffered before the ClickHouse sink writes.")

    @field_validator("dsn")
    @classmethod
    def _check_dsn(cls, value: str) -> str:
        try:
            return validate_dsn(value)
        except ConfigError as exc:
            raise ValueError(str(exc)) from exc


class KafkaSettings(Section):
    """The streaming worker (`driftwatch run`, see streams/): brokers, topics, timings (``DRIFTWATCH_*``)."""

    section = "kafka"

    bootstrap: str = Field(default="localhost:9092", validation_alias=env("kafka_bootstrap"),
                           description="Kafka bootstrap servers, comma-separated host:port.")
    security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = Field(
        default="PLAINTEXT", validation_alias=env("kafka_security_protocol"),
        description="How to reach the brokers: plain, TLS, SASL, or SASL over TLS.")
    sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] = Field(
        default="PLAIN", validation_alias=env("kafka_sasl_mechanism"),
        description="SASL mechanism when the protocol is SASL_*.")
    sasl_username: str | None = Field(default=None, validation_alias=env("kafka_sasl_username"),
                                      description="SASL user name.")
    sasl_password: SecretStr | None = Field(default=None, validation_alias=env("kafka_sasl_password"),
                                            description="SASL password (never logged).")
    ssl_cafile: Path | None = Field(default=None, validation_alias=env("kafka_ssl_cafile"),
                                    description="CA bundle that signed the brokers' certificates.")
    ssl_certfile: Path | None = Field(default=None, validation_alias=env("kafka_ssl_certfile"),
                                      description="Client certificate for mutual TLS.")
    ssl_keyfile: Path | None = Field(default=None, validation_alias=env("kafka_ssl_keyfile"),
                                     description="Client private key for mutual TLS.")
    compression: Literal["none", "gzip"] = Field(
        default="none", validation_alias=env("kafka_compression"),
        description="Compression of what the worker produces. Off by default: its largest "
        "messages, detector checkpoints, are compressed inside already, and gzip costs the worker CPU.")
    fetch_max_wait_ms: int = Field(
        default=100, gt=0, le=60_000, validation_alias=env("kafka_fetch_max_wait_ms"),
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
    detect_process: bool = Field(
        default=False, description="Run the detectors in one child process of the worker, so detection and "
        "Kafka/Faust use two cores (streams.detection). Off by default: the two processes take about 1.5 GiB, "
        "and with an embedded chdb store the child cannot read the signatures and acknowledgements tables (one "
        "process per chdb folder), so use it with a ClickHouse server.")
    health_interval_s: float = Field(default=10.0, gt=0,
                                     description="Seconds between worker health samples in service_metrics.")
    web_enabled: bool = Field(default=True, description="Run the worker's Faust web server (bound to web_bind).")
    web_bind: str = Field(default="127.0.0.1", description="Address of the worker's web server.")
    web_port: int = Field(default=6066, gt=0, lt=65536, description="Port of the worker's web server.")
    worker_dir: Path = Field(default=Path("driftwatch-worker"), description="Faust data folder of the worker.")
    store_outage_file: Path | None = Field(
        default=None,
        description="Outage drill: while this file exists every ClickHouse call fails as if the server were down.")


class SocSettings(Section):
    """What happens to alerts: the SOC policy and the webhook (``DRIFTWATCH_*``)."""

    section = "soc"

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
