"""Store DSNs: the embedded default, shape checks and redaction.

Kept apart from the ClickHouse client so that settings can validate a DSN
without importing clickhouse-connect.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

from monitor.errors import ConfigError
from monitor.redact import redact_text

__all__ = ["data_folder", "default_dsn", "redact", "validate_dsn"]


def default_dsn() -> str:
    """The embedded default: ``./driftwatch-data`` under the working directory."""
    return "chdb://" + str(Path("driftwatch-data").resolve())


def data_folder(dsn: str) -> Path:
    """The folder for driftwatch's own files (canary key, cached models): the chdb path, else ./driftwatch-data."""
    parts = urlsplit(dsn)
    return Path(parts.path) if parts.scheme == "chdb" else Path("driftwatch-data")


def validate_dsn(dsn: str) -> str:
    """Check a DSN's scheme and shape; return it unchanged."""
    try:
        parts = urlsplit(dsn)
        parts.port  # noqa: B018  # an unparseable port raises here, not in the client
    except ValueError:
        raise ConfigError(f"store DSN is not a URL (bad host or port); got {redact(dsn)!r}") from None
    if parts.scheme == "chdb":
        if not (parts.path or parts.netloc):
            raise ConfigError(f"chdb DSN needs a path, as chdb:///abs/path; got {redact(dsn)!r}")
        return dsn
    if parts.scheme in ("http", "https"):
        if not parts.hostname:
            raise ConfigError(f"ClickHouse DSN needs a host, as http://user:pass@host:8123/db; got {redact(dsn)!r}")
        return dsn
    raise ConfigError(f"store DSN must start with chdb://, http:// or https://; got {redact(dsn)!r}")


def redact(dsn: str) -> str:
    """``dsn`` with its credentials hidden, malformed or not (see :mod:`monitor.redact`)."""
    return redact_text(dsn)
