"""Where the running signature set comes from, and how to tell it changed.

A :class:`SignatureRegistry` merges sources in order (later wins on an equal
id): the starter pack or a signature file, then the ClickHouse
``signatures`` table. Each source has a cheap ``fingerprint`` (a file's
mtime and size, the table's row count and newest version); the signature
stage polls it at most every ``signature_reload_s`` seconds and reloads when
it changed, so new signatures and minted canaries take effect without a
restart.

Examples
--------
>>> registry = SignatureRegistry([StaticSignatures(default_signatures())])
>>> len(registry.poll()) > 5, registry.poll()
(True, None)
"""

from __future__ import annotations

import json
import logging
from collections.abc import Hashable, Sequence
from importlib import resources
from pathlib import Path
from typing import Protocol

from detectors.signatures.confusables import cased_fold_table, fold_table
from detectors.signatures.normalize import Normalizer
from detectors.signatures.signature import Signature
from monitor.errors import ConfigError, DriftwatchError
from monitor.signature_files import default_signatures, load_signatures
from monitor.storage.signatures import SignatureTable
from monitor.storage.store import Store

logger = logging.getLogger(__name__)

__all__ = ["FileSignatures", "SignatureRegistry", "SignatureSource", "StaticSignatures",
           "TableSignatures", "load_normalizer"]


def load_normalizer() -> Normalizer:
    """The normaliser with Unicode's confusables (from the confusable-homoglyphs package)."""
    try:
        text = resources.files("confusable_homoglyphs").joinpath("confusables.json").read_text(encoding="utf-8")
    except (ModuleNotFoundError, FileNotFoundError) as exc:
        raise ConfigError("the confusables data is missing: install confusable-homoglyphs>=3.3,<4") from exc
    pairs = {key: [entry["c"] for entry in entries] for key, entries in json.loads(text).items()}
    return Normalizer(fold_table(pairs), cased_fold=cased_fold_table(pairs))


class SignatureSource(Protocol):
    required: bool  # a required source failing on the first load is a configuration error

    def fingerprint(self) -> Hashable: ...

    def load(self) -> list[Signature]: ...


class StaticSignatures:
    """A fixed list: never changes."""

    required = True

    def __init__(self, signatures: Sequence[Signature]) -> None:
        self.signatures = list(signatures)

    def fingerprint(self) -> Hashable:
        return 0

    def load(self) -> list[Signature]:
        return list(self.signatures)


class FileSignatures:
    """A YAML/JSON file, reloaded when its mtime or size changes."""

    required = True

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    def fingerprint(self) -> Hashable:
        try:
            info = self.path.stat()
        except OSError:
            return None
        return (info.st_mtime_ns, info.st_size)

    def load(self) -> list[Signature]:
        return load_signatures(self.path)


class TableSignatures:
    """The ``signatures`` table of the store at ``dsn``.

    Each poll opens a client and closes it again: a poll comes at most every
    ``signature_reload_s`` seconds, and no handle outlives it. Optional: while
    the table cannot be read, the registry keeps what it last read from it.
    """

    required = False

    def __init__(self, dsn: str) -> None:
        self.dsn = dsn

    def fingerprint(self) -> Hashable:
        with Store(self.dsn) as store:
            return SignatureTable(store).fingerprint()

    def load(self) -> list[Signature]:
        with Store(self.dsn) as store:
            return SignatureTable(store).load()


class SignatureRegistry:
    """Signatures merged from several sources; later sources win on an equal id."""

    def __init__(self, sources: Sequence[SignatureSource]) -> None:
        self.sources = list(sources)
        self._fingerprints: dict[int, Hashable] = {}
        self._loaded: dict[int, list[Signature]] = {}

    def poll(self, *, required_only: bool = False) -> list[Signature] | None:
        """The merged signatures if any source changed since the last poll, else ``None``.

        A source that fails keeps what it last gave, with a warning; a
        required source failing on its first load raises.
        """
        changed = False
        for number, source in enumerate(self.sources):
            if required_only and not source.required:
                continue
            try:
                fingerprint = source.fingerprint()
                if number in self._fingerprints and self._fingerprints[number] == fingerprint:
                    continue
                signatures = source.load()
            except DriftwatchError as exc:
                if source.required and number not in self._loaded:
                    raise
                logger.warning("signature source unreadable, keeping the last set source=%s reason=%s",
                               type(source).__name__, exc)
                continue
            self._fingerprints[number] = fingerprint
            self._loaded[number] = signatures
            changed = True
        if not changed:
            return None
        merged: dict[str, Signature] = {}
        for number in sorted(self._loaded):
            for signature in self._loaded[number]:
                merged[signature.id] = signature
        return list(merged.values())

    @classmethod
    def from_files(cls, path: str | Path | None, *, dsn: str | None = None) -> SignatureRegistry:
        """The file at ``path`` (the starter pack when ``None``), then the table at ``dsn`` if given."""
        sources: list[SignatureSource] = [FileSignatures(path) if path else StaticSignatures(default_signatures())]
        if dsn:
            sources.append(TableSignatures(dsn))
        return cls(sources)
