"""``driftwatch report``: an offline HTML report of one model."""

from __future__ import annotations

import time
from pathlib import Path

import click

from driftwatch.cli.options import run_guarded, store_option
from monitor.errors import ConfigError
from monitor.settings import load_settings
from monitor.storage.store import Store

__all__ = ["report_command"]


def _instant(text: str, option: str, now_ms: int) -> int:
    from monitor.policy.config import parse_duration, parse_instant

    try:
        return now_ms - parse_duration(text, where=option)
    except ConfigError:
        return parse_instant(text, where=f"{option} (a duration like 7d or an RFC 3339 time)")


@click.command("report")
@click.option("--model", "model_id", required=True)
@click.option("--version", "model_version", default=None, help="One version only (default: all).")
@click.option("--since", default="7d", show_default=True, help="A duration back from now (7d) or an RFC 3339 time.")
@click.option("--until", default=None, help="End of the range (default: now); a duration back or a time.")
@click.option("-o", "--output", type=click.Path(dir_okay=False, writable=True), default=None,
              help="HTML file to write (default: report-<model>.html).")
@store_option
def report_command(model_id: str, model_version: str | None, since: str, until: str | None,
                   output: str | None, store: str | None) -> None:
    """Write a self-contained offline HTML report of MODEL: metrics, change points, alerts, incidents."""
    from monitor.report.build import ReportRange, build_report

    def body() -> int:
        settings = load_settings(store=store)
        now_ms = int(time.time() * 1000)
        span = ReportRange(model_id, _instant(since, "--since", now_ms),
                           _instant(until, "--until", now_ms) if until else now_ms + 1, model_version)
        started = time.perf_counter()
        with Store(settings.store.dsn) as handle:
            page, _ = build_report(handle, span)
        path = Path(output or f"report-{model_id}.html")
        path.write_text(page, encoding="utf-8")
        click.echo(f"report written to {path} ({len(page) / 1024:.0f} KiB, {time.perf_counter() - started:.2f} s)")
        return 0
    run_guarded(body)
