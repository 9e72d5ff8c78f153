"""``driftwatch query`` (read-only SQL) and ``driftwatch schema`` (DDL, apply, roles)."""

from __future__ import annotations

import csv
import json
import sys

import click

from driftwatch.cli.options import run_guarded, store_option, table
from monitor.settings import load_settings
from monitor.storage.schema import ddl
from monitor.storage.store import Store

__all__ = ["query_command", "schema_command"]


@click.command("query")
@click.argument("sql")
@store_option
@click.option("--format", "fmt", type=click.Choice(["table", "json", "csv"]), default="table", show_default=True)
@click.option("--final/--no-final", default=True, show_default=True,
              help="Read tables as merged, so a row stored twice shows once.")
def query_command(sql: str, store: str | None, fmt: str, final: bool) -> None:
    """Run a read-only SQL query (readonly=1) against the store."""
    def body() -> int:
        settings = load_settings(store=store)
        with Store(settings.store.dsn) as handle:
            names, rows = handle.query(sql, readonly=True, final=final)
        if fmt == "json":
            for row in rows:
                click.echo(json.dumps(dict(zip(names, row, strict=False)), default=str, ensure_ascii=False))
        elif fmt == "csv":
            writer = csv.writer(sys.stdout, lineterminator="\n")
            writer.writerow(names)
            writer.writerows(rows)
        else:
            click.echo(table([names, *rows]) if names else "")
        return 0
    run_guarded(body)


@click.command("schema")
@store_option
@click.option("--apply", is_flag=True, help="Create the schema in the store instead of printing it.")
@click.option("--roles", is_flag=True, help="Print least-privilege users and grants (writer, analyst, grafana).")
@click.option("--database", default="default", show_default=True, help="Database the grants name (with --roles).")
def schema_command(store: str | None, apply: bool, roles: bool, database: str) -> None:
    """Print the ClickHouse DDL (or apply it with --apply, or print users and grants with --roles)."""
    def body() -> int:
        if roles:
            from monitor.policy.roles import roles_sql

            click.echo(roles_sql(database), nl=False)
            return 0
        if not apply:
            click.echo(ddl(), nl=False)
            return 0
        settings = load_settings(store=store)
        with Store(settings.store.dsn) as handle:
            version = handle.ensure_schema()
            click.echo(f"schema version {version} in {handle.describe()}")
        return 0
    run_guarded(body)
