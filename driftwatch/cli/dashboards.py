"""``driftwatch dashboards build|publish``: Grafana dashboards as code.

:mod:`dashboards` is imported inside the commands, when one runs, so the rest
of the CLI starts without it.
"""

from __future__ import annotations

from pathlib import Path

import click

from driftwatch.cli.options import run_guarded

__all__ = ["dashboards_group"]


@click.group("dashboards")
def dashboards_group() -> None:
    """Grafana dashboards, alert rules and provisioning files, generated from the schema."""


@dashboards_group.command("build")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Folder to write into (default: the dashboards/ package, where the files are committed).")
@click.option("--check", is_flag=True, help="Write nothing; exit 1 if a committed file differs from the code.")
def build_command(out: Path | None, check: bool) -> None:
    """Write the dashboard JSON, alert rules and provisioning YAML."""
    from dashboards.build import OUTPUT_DIR, stale, write

    def body() -> int:
        folder = out or OUTPUT_DIR
        if check:
            differ = stale(folder)
            for relative in differ:
                click.echo(f"stale: {folder / relative}", err=True)
            if differ:
                click.echo("run `driftwatch dashboards build` and commit the result", err=True)
            return 1 if differ else 0
        for path in write(folder):
            click.echo(str(path))
        return 0
    run_guarded(body)


@dashboards_group.command("publish")
@click.option("--url", envvar="GRAFANA_URL", required=True, help="Grafana base URL. Env: GRAFANA_URL.")
@click.option("--token", envvar="GRAFANA_TOKEN", required=True,
              help="Service-account token (Editor, plus alert-rule write for rules). Env: GRAFANA_TOKEN.")
@click.option("--datasource-uid", default=None,
              help="uid of the ClickHouse datasource to use (default: the provisioned driftwatch-clickhouse).")
@click.option("--alert-rules/--no-alert-rules", default=True, show_default=True,
              help="Also replace the driftwatch alert rule group.")
@click.option("--timeout", "timeout_s", type=float, default=30.0, show_default=True, help="Seconds per request.")
def publish_command(url: str, token: str, datasource_uid: str | None, alert_rules: bool, timeout_s: float) -> None:
    """Push the dashboards (and alert rules) to a Grafana server."""
    from dashboards.alert_rules import alert_rules as build_rules
    from dashboards.catalog import boards
    from dashboards.model import DATASOURCE_UID
    from dashboards.publish import publish
    from dashboards.tables import tables
    from driftwatch.cli.options import run_guarded

    def body() -> int:
        rules = build_rules(tables()) if alert_rules else ()
        report = publish(url, token, [b.to_json() for b in boards()], rules,
                         datasource_uid=datasource_uid or DATASOURCE_UID, timeout_s=timeout_s)
        click.echo(f"published to {url}: {report.describe()}")
        return 0
    run_guarded(body)
