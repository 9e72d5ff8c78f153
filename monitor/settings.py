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
