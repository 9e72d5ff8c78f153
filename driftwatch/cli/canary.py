"""``driftwatch canary``: mint, list and revoke canaries.

``canary new --tenant T`` prints a fresh canary once, for the operator to
plant in a system prompt or a document, and stores only its keyed hash in
the ``signatures`` table; a running worker picks it up at its next reload.
"""

from __future__ import annotations

import secrets
import time

import click

from detectors.signatures.canary import keyed_hash, mint_canary
from detectors.signatures.signature import Signature
from driftwatch.cli.options import run_guarded, store_option, table
from monitor.canary_keys import canary_key_path, resolve_canary_key
from monitor.errors import ConfigError
from monitor.settings import load_settings
from monitor.storage.signatures import SignatureTable
from monitor.storage.store import Store

__all__ = ["canary_group"]


@click.group("canary")
def canary_group() -> None:
    """Canary tokens: plant one, and any output that holds it raises a critical alert."""


@canary_group.command("new")
@click.option("--tenant", required=True, help="Tenant that plants the canary (its owner).")
@click.option("--description", default="", help="Where it is planted, for the analyst.")
@click.option("--severity", type=click.Choice(["high", "critical"]), default="critical", show_default=True)
@store_option
def canary_new(tenant: str, description: str, severity: str, store: str | None) -> None:
    """Mint a canary for TENANT; print it once; store only its keyed hash."""
    def body() -> int:
        if not tenant.strip():
            raise ConfigError("--tenant must be non-empty")
        settings = load_settings(store=store)
        key = resolve_canary_key(settings, create=True)
        if key is None:  # resolve_canary_key creates one when asked
            raise ConfigError(f"no canary key at {canary_key_path(settings)}")
        value = mint_canary(secrets.randbits)
        digest = keyed_hash(key, value)
        now_ms = int(time.time() * 1000)
        signature = Signature(
            id=f"canary-{digest[:12]}", pattern="", kind="canary", applies_to="output", scope=tenant,
            severity=severity, description=description or f"canary planted by {tenant}",
            source="driftwatch canary new", pattern_hash=digest, created_ms=now_ms,
        )
        with Store(settings.store.dsn) as handle:
            handle.ensure_schema()
            SignatureTable(handle).write([signature])
        click.echo(value)
        click.echo(f"canary id: {signature.id}  tenant: {tenant}  (only its keyed hash is stored; "
                   "this is the one time the value is shown)", err=True)
        return 0
    run_guarded(body)


@canary_group.command("list")
@store_option
def canary_list(store: str | None) -> None:
    """Canaries in the table: id, owner, hash prefix, state. Never their values."""
    def body() -> int:
        settings = load_settings(store=store)
        with Store(settings.store.dsn) as handle:
            handle.ensure_schema()
            rows = [r for r in SignatureTable(handle).rows(active_only=False) if r["kind"] == "canary"]
        lines = [("id", "tenant", "hash", "active", "created (UTC)", "description")]
        lines += [(r["signature_id"], r["scope"], r["pattern_hash"][:16], r["active"],
                   str(r["created_at"])[:19], r["description"]) for r in rows]
        click.echo(table(lines))
        return 0
    run_guarded(body)


@canary_group.command("revoke")
@click.argument("canary_id")
@store_option
def canary_revoke(canary_id: str, store: str | None) -> None:
    """Stop matching CANARY_ID (after a rotation, say)."""
    def body() -> int:
        settings = load_settings(store=store)
        with Store(settings.store.dsn) as handle:
            handle.ensure_schema()
            table = SignatureTable(handle)
            row = next((r for r in table.rows(active_only=False) if r["signature_id"] == canary_id), None)
            if row is None or row["kind"] != "canary":
                raise ConfigError(f"no canary {canary_id!r} in the signatures table")
            signature = table.load_row(row)
            table.write([signature], active=False, rotated_ms=int(time.time() * 1000))
        click.echo(f"revoked {canary_id}")
        return 0
    run_guarded(body)
