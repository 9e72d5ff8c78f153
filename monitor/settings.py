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
from monitor.storage.clickhouse import default_dsn, validate_dsn

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
        default="gzip", description="Compression of what the worker produces (dead letters carry record previews).")
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
