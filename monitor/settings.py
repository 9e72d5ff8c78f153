"""Settings: one frozen, validated object, read from flags and the environment.

Every field can be set as ``DRIFTWATCH_<NAME>`` in the environment (for
example ``DRIFTWATCH_STORE=http://default:pw@ch:8123/driftwatch``); command
line flags override the environment.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

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
