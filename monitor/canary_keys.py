"""The secret key of canaries' keyed hashes.

From ``DRIFTWATCH_CANARY_KEY`` when set (at least 16 bytes), else from a key
file: ``DRIFTWATCH_CANARY_KEY_FILE``, or ``canary.key`` in the data folder (the
chdb path, or ``./driftwatch-data`` for a server). ``driftwatch canary new``
creates that file, mode 0600, on first use. Every worker that should detect
canaries needs the same key.

Examples
--------
>>> from monitor.settings import load_settings
>>> resolve_canary_key(load_settings(canary_key="0123456789abcdef0123"))
b'0123456789abcdef0123'
"""

from __future__ import annotations

import logging
import os
import secrets
import stat
from pathlib import Path

from monitor.errors import ConfigError
from monitor.settings import Settings
from monitor.storage.dsn import data_folder

logger = logging.getLogger(__name__)

__all__ = ["canary_key_path", "resolve_canary_key"]

MIN_KEY_BYTES = 16


def canary_key_path(settings: Settings) -> Path:
    """Where the key file is (whether or not it exists yet)."""
    if settings.signatures.canary_key_file is not None:
        return settings.signatures.canary_key_file
    return data_folder(settings.store.dsn) / "canary.key"


def resolve_canary_key(settings: Settings, *, create: bool = False) -> bytes | None:
    """The canary key; ``None`` when there is none and ``create`` is false."""
    if settings.signatures.canary_key is not None:
        key = settings.signatures.canary_key.get_secret_value().encode("utf-8")
        if len(key) < MIN_KEY_BYTES:
            raise ConfigError(f"DRIFTWATCH_CANARY_KEY must be at least {MIN_KEY_BYTES} bytes; got {len(key)}")
        return key
    path = canary_key_path(settings)
    if path.exists():
        mode = stat.S_IMODE(path.stat().st_mode)
        if mode & 0o077:
            logger.warning("canary key file readable by others path=%s mode=%o (want 0600)", path, mode)
        key = path.read_bytes().strip()
        if len(key) < MIN_KEY_BYTES:
            raise ConfigError(f"canary key file {path} must hold at least {MIN_KEY_BYTES} bytes; got {len(key)}")
        return key
    if not create:
        return None
    path.parent.mkdir(parents=True, exist_ok=True)
    key = secrets.token_hex(32).encode("ascii")
    # O_EXCL: two processes minting at once cannot overwrite each other's key.
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "wb") as handle:
        handle.write(key + b"\n")
    logger.info("canary key created path=%s", path)
    return key
