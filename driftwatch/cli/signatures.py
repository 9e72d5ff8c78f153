"""``driftwatch signatures``: the signature table that running workers reload.

``signatures load FILE`` copies a signature file into the table.
"""

from __future__ import annotations

import click

from driftwatch.cli.options import run_guarded, store_option, table
from monitor.settings import load_settings
from monitor.signature_files import load_signatures
from monitor.storage.signatures import SignatureTable
from monitor.storage.store import Store

__all__ = ["signatures_group"]


@click.group("signatures")
def signatures_group() -> None:
    """The signature table that running workers reload."""


@signatures_group.command("load")
@click.argument("path", type=click.Path(exists=True, dir_okay=False))
@store_option
def signatures_load(path: str, store: str | None) -> None:
    """Copy the signatures of a YAML/JSON file into the table."""
    def body() -> int:
        signatures = load_signatures(path)
        settings = load_settings(store=store)
        with Store(settings.store.dsn) as handle:
            handle.ensure_schema()
            SignatureTable(handle).write(signatures)
        click.echo(f"{len(signatures)} signatures written to the table")
        return 0
    run_guarded(body)


@signatures_group.command("list")
@store_option
def signatures_list(store: str | None) -> None:
    """Active signatures in the table (canaries show their hash prefix only)."""
    def body() -> int:
        settings = load_settings(store=store)
        with Store(settings.store.dsn) as handle:
            handle.ensure_schema()
            rows = SignatureTable(handle).rows()
        lines = [("id", "kind", "applies_to", "scope", "severity", "pattern")]
        lines += [(r["signature_id"], r["kind"], r["applies_to"], r["scope"], r["severity"],
                   r["pattern_hash"][:16] + "…" if r["kind"] == "canary" else r["pattern"]) for r in rows]
        click.echo(table(lines))
        return 0
    run_guarded(body)
