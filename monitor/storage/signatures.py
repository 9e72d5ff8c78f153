"""The ``signatures`` table: where signatures and minted canaries are kept.

Rows are versioned (``ReplacingMergeTree(version)``): writing a signature
again with a higher version replaces it, so rotating or revoking is an
insert. Canary rows hold only the keyed hash (``pattern`` is empty).

Examples
--------
>>> SIGNATURE_COLUMNS[:3]
('signature_id', 'kind', 'pattern')
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from typing import Any

from detectors.signatures.signature import Signature
from monitor.storage.store import Store, text_hash
from monitor.storage.tables import TABLES

logger = logging.getLogger(__name__)

__all__ = ["SIGNATURE_COLUMNS", "SignatureTable"]

SIGNATURE_COLUMNS = TABLES["signatures"].column_names


class SignatureTable:
    """Read and write the ``signatures`` table of a :class:`Store`.

    Parameters
    ----------
    store
        An open store whose schema is in place.
    """

    def __init__(self, store: Store) -> None:
        self.store = store

    def write(self, signatures: Sequence[Signature], *, active: bool = True, rotated_ms: int | None = None) -> None:
        """Insert (or replace, by a newer version) these signatures; ``active=False`` revokes them."""
        if not signatures:
            return
        version = time.time_ns()
        rows = [(s.id, s.kind, "" if s.kind == "canary" else s.pattern, s.pattern_hash or text_hash(s.pattern),
                 s.applies_to, s.scope, s.severity, s.description, s.source, int(active),
                 s.created_ms or version // 1_000_000, rotated_ms or s.rotated_ms, version + offset)
                for offset, s in enumerate(signatures)]
        self.store.insert("signatures", [list(c) for c in zip(*rows, strict=True)], SIGNATURE_COLUMNS)

    def fingerprint(self) -> tuple[Any, ...]:
        """Changes whenever a row is written: count and newest version."""
        _, rows = self.store.query("SELECT count(), max(version) FROM signatures", readonly=True, final=False)
        return tuple(rows[0]) if rows else ()

    def rows(self, *, active_only: bool = True) -> list[dict[str, Any]]:
        """The newest row of every signature, as dicts keyed by column."""
        where = "WHERE active = 1" if active_only else ""
        names, rows = self.store.query(
            f"SELECT {', '.join(SIGNATURE_COLUMNS)} FROM signatures {where} ORDER BY signature_id",
            readonly=True, final=True)
        return [dict(zip(names, row, strict=True)) for row in rows]

    def load(self) -> list[Signature]:
        """Active signatures; a row that does not make a valid signature is skipped with a warning."""
        signatures = []
        for row in self.rows():
            try:
                signatures.append(self.load_row(row))
            except ValueError as exc:
                logger.warning("signature row skipped signature_id=%r reason=%s", row["signature_id"], exc)
        return signatures

    @staticmethod
    def load_row(row: dict[str, Any]) -> Signature:
        """The signature of one row of :meth:`rows`; ``ValueError`` if it is not valid."""
        return Signature(
            id=row["signature_id"], kind=row["kind"], pattern=row["pattern"],
            pattern_hash=row["pattern_hash"] if row["kind"] == "canary" else "",
            applies_to=row["applies_to"], scope=row["scope"] or "global",
            severity=row["severity"], description=row["description"], source=row["source"],
            created_ms=_ms(row["created_at"]) or 0, rotated_ms=_ms(row["rotated_at"]),
        )


def _ms(value: Any) -> int | None:
    if value is None:
        return None
    return int(value.timestamp() * 1000)
