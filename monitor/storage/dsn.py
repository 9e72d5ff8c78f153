"""Store DSNs: the embedded default, shape checks and redaction.

Kept apart from the ClickHouse client so that settings can validate a DSN
without importing clickhouse-connect.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

from monitor.errors import ConfigError

__all__ = ["default_dsn", "redact", "validate_dsn"]


def default_dsn() -> str:
    """The embedded default: ``./driftwatch-data`` under the working directory."""
    return "chdb://" + str(Path("driftwatch-data").resolve())


def validate_dsn(dsn: str) -> str:
    """Check a DSN's scheme and shape; return it unchanged."""
    parts = urlsplit(dsn)
    if parts.scheme == "chdb":
        if not (parts.path or parts.netloc):
            raise ConfigError(f"chdb DSN needs a path, as chdb:///abs/path; got {dsn!r}")
        return dsn
    if parts.scheme in ("http", "https"):
        if not parts.hostname:
            raise ConfigError(f"ClickHouse DSN needs a host, as http://user:pass@host:8123/db; got {dsn!r}")
        return dsn
    raise ConfigError(f"store DSN must start with chdb://, http:// or https://; got {dsn!r}")


def redact(dsn: str) -> str:
    parts = urlsplit(dsn)
    if parts.password:
        return dsn.replace(f":{parts.password}@", ":***@")
    return dsn
