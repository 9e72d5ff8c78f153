"""The ``driftwatch`` command line.

Every command takes ``--store DSN`` (default: embedded ClickHouse under
``./driftwatch-data``). Exit codes: 0 success, 1 a fatal error, 2 bad usage
or configuration.
"""

from __future__ import annotations

import csv
import datetime as dt
import json
import logging
import sys
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

import click

from monitor.alerts import SEVERITIES, Alert, severity_rank
from monitor.errors import ConfigError, DriftwatchError
from monitor.events import EventDecoder
from monitor.ingest import Ingestor
from monitor.registry import build_pipeline
from monitor.replay import ReplaySummary, replay
from monitor.settings import Settings, load_settings
from monitor.storage.schema import ddl
from monitor.storage.sink import ClickHouseSink
from monitor.storage.store import Store

logger = logging.getLogger(__name__)
F = TypeVar("F", bound=Callable[..., Any])


def store_option(func: F) -> F:
    return click.option(
        "--store", "store", metavar="DSN", default=None,
        help="chdb:///path (embedded, default ./driftwatch-data) or http(s)://user:pass@host:8123/db. "
             "Env: DRIFTWATCH_STORE.",
    )(func)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("-v", "--verbose", count=True, help="-v for lifecycle logs, -vv for debug.")
def main(verbose: int) -> None:
    """Watch deployed language models for backdoor triggers, canary leaks and drift."""
    level = logging.WARNING if verbose == 0 else logging.INFO if verbose == 1 else logging.DEBUG
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s %(message)s")


def run_guarded(func: Callable[[], int | None]) -> None:
    """Run a command body, turning our errors into a message and an exit code."""
    try:
        code = func()
    except ConfigError as exc:
        click.echo(f"driftwatch: configuration error: {exc}", err=True)
        sys.exit(2)
    except DriftwatchError as exc:
        click.echo(f"driftwatch: error: {exc}", err=True)
        sys.exit(1)
    sys.exit(code or 0)


def run_replay(settings: Settings, paths: Sequence[str], *, detectors: bool = True,
               progress: bool = False) -> tuple[ReplaySummary, str]:
    """Replay ``paths`` into the settings' store; return the summary and where data lives."""
    decoder = EventDecoder(settings.ingest.limits)
    pipeline = build_pipeline(settings, detectors=detectors)
    with Store(settings.store.dsn) as store:
        store.ensure_schema()
        sink = ClickHouseSink(store, store_text=settings.store.text, flush_rows=settings.store.flush_rows)
        summary = replay(paths, Ingestor(decoder, pipeline), sink,
                         batch_size=settings.ingest.batch_size, progress=progress)
        if detectors:
            from monitor.policy.engine import engine_from_settings

            outcome = engine_from_settings(settings).handle(store, summary.alerts, notify_ids=summary.fresh_ids)
            summary.incidents, summary.decisions = len(outcome.incidents), outcome.decisions
        return summary, store.describe()


def format_summary(summary: ReplaySummary) -> str:
    rate = summary.events / summary.seconds if summary.seconds > 0 else 0.0
    lines = [f"events: {summary.events}  rejected: {summary.rejected}  "
             f"alerts: {len(summary.alerts)} ({summary.new_alerts} new in store)  "
             f"({summary.seconds:.2f} s, {rate:,.0f} events/s)"]
    by = summary.alerts_by()
    for detector in sorted({d for d, _ in by}):
        counts = ", ".join(f"{sev} {by[(detector, sev)]}" for sev in reversed(SEVERITIES)
                           if by[(detector, sev)])
        lines.append(f"  {detector:<12} {counts}")
    if summary.incidents or summary.decisions:
        versions = sorted({f"{d.model_id}@{d.model_version}" for d in summary.decisions})
        lines.append(f"incidents: {summary.incidents}  rollback decisions: {len(summary.decisions)}"
                     + (f" ({', '.join(versions)})" if versions else ""))
    return "\n".join(lines)


def format_alerts(alerts: Sequence[Alert], limit: int = 20) -> str:
    """One row per (model version, detector, metric, severity): the first alert and how many.

    Thirty-eight hits of one trigger are one line to an analyst, and a single
    change point next to them stays visible.
    """
    groups: dict[tuple[str, str, str, str, str], list[Alert]] = {}
    for alert in sorted(alerts, key=lambda a: (a.ts_ms, a.alert_id)):
        key = (alert.model_id, alert.model_version, alert.detector, alert.metric, alert.severity)
        groups.setdefault(key, []).append(alert)
    ordered = sorted(groups.values(), key=lambda g: (-severity_rank(g[0].severity), g[0].ts_ms, g[0].alert_id))
    rows = [("first (UTC)", "severity", "model@version", "detector", "metric", "alerts", "first event")]
    for group in ordered[:limit]:
        first = group[0]
        event = ",".join(json.loads(first.evidence).get("event_ids", [])[:2])
        when = dt.datetime.fromtimestamp(first.ts_ms / 1000, dt.UTC).strftime("%Y-%m-%d %H:%M:%S")
        rows.append((when, first.severity, f"{first.model_id}@{first.model_version}",
                     first.detector, first.metric, str(len(group)), event))
    text = _table(rows)
    if len(ordered) > limit:
        text += (f"\n... and {len(ordered) - limit} more groups "
                 "(driftwatch query \"SELECT * FROM alerts\")")
    return text


def _table(rows: Sequence[Sequence[Any]]) -> str:
    cells = [[str(c) for c in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(cells[0]))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=False)).rstrip() for row in cells)


@main.command("replay")
@click.argument("files", nargs=-1, required=True)
@store_option
@click.option("--store-text/--no-store-text", default=None, help="Keep raw text in events (off by default).")
@click.option("--batch-size", type=int, default=None, help="Events per pipeline batch (default 2048).")
@click.option("--signatures", type=click.Path(dir_okay=False), default=None,
              help="Signature YAML/JSON file (default: the shipped starter pack).")
@click.option("--progress/--no-progress", default=None, help="Progress bar (default: when stderr is a TTY).")
def replay_command(files: tuple[str, ...], store: str | None, store_text: bool | None,
                   batch_size: int | None, signatures: str | None, progress: bool | None) -> None:
    """Replay JSONL FILES (.gz too, - for stdin) through the detectors into the store."""
    def body() -> int:
        settings = load_settings(store=store, store_text=store_text, batch_size=batch_size,
                                 signatures=signatures)
        show = sys.stderr.isatty() if progress is None else progress
        summary, where = run_replay(settings, files, progress=show)
        click.echo(format_summary(summary))
        click.echo(f"data: {where}")
        return 0
    run_guarded(body)


@main.command("demo")
@store_option
@click.option("--events", "n_events", type=int, default=3000, show_default=True, help="Events to generate.")
@click.option("--trigger-at", type=int, default=2000, show_default=True, help="Index of the first triggered event.")
@click.option("--synthetic", is_flag=True, help="Use the built-in generator even when BackdoorLLM data is present.")
@click.option("--seed", type=int, default=7, show_default=True)
def demo_command(store: str | None, n_events: int, trigger_at: int, synthetic: bool, seed: int) -> None:
    """Replay a built-in scenario: clean traffic, then a planted backdoor trigger."""
    from monitor.scenario import build_scenario

    def body() -> int:
        settings = load_settings(store=store)
        try:
            scenario = build_scenario(n_events=n_events, trigger_at=trigger_at, seed=seed,
                                      synthetic=synthetic)
        except ValueError as exc:
            raise ConfigError(str(exc)) from exc
        with tempfile.TemporaryDirectory(prefix="driftwatch-demo-") as tmp:
            path = scenario.write_jsonl(Path(tmp) / f"{scenario.name}.jsonl")
            click.echo(f"scenario {scenario.name}: {len(scenario.events)} events, trigger "
                       f"{scenario.trigger!r} planted from event #{scenario.trigger_at} "
                       f"at {scenario.trigger_rate:.0%} of {scenario.events[scenario.trigger_at]['model_id']} traffic")
            summary, where = run_replay(settings, [str(path)], progress=sys.stderr.isatty())
        index = {event["event_id"]: i for i, event in enumerate(scenario.events)}
        firsts = [min((index.get(e, -1) for e in json.loads(a.evidence).get("event_ids", [])), default=-1)
                  for a in summary.alerts]
        before = sum(1 for i in firsts if 0 <= i < scenario.trigger_at)
        click.echo(format_summary(summary))
        if summary.alerts:
            click.echo("\n" + format_alerts(summary.alerts, limit=12))
            click.echo(f"\nfirst alert at event #{min(i for i in firsts if i >= 0)}; "
                       f"alerts before the trigger: {before}")
        else:
            click.echo("no alerts raised")
        model = scenario.events[scenario.trigger_at]
        from monitor.policy.status import rollback_status

        with Store(settings.store.dsn) as handle:
            status = rollback_status(handle, model["model_id"], model["model_version"], evidence_limit=5)
        click.echo("\n" + status.to_text())
        click.echo(f"\ndata: {where}")
        click.echo(f"try: {_program()} query{_store_flag(store)} "
                   "\"SELECT detector, severity, count() FROM alerts GROUP BY ALL\"")
        click.echo(f"     {_program()} rollback-status{_store_flag(store)} --model {model['model_id']}"
                   f"   # exit {status.exit_code}: {status.state}")
        since = dt.datetime.fromtimestamp(scenario.events[0]["ts"] / 1000, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        click.echo(f"     {_program()} report{_store_flag(store)} --model {model['model_id']} --since {since}")
        return 0
    run_guarded(body)


def _program() -> str:
    """How the user started us, so hints can be pasted as they are."""
    name = sys.argv[0]
    return name if name.endswith("driftwatch") else "driftwatch"


def _store_flag(store: str | None) -> str:
    return f" --store {store}" if store else ""


@main.command("query")
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
            click.echo(_table([names, *rows]) if names else "")
        return 0
    run_guarded(body)


@main.command("schema")
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


@main.group("bench")
def bench_group() -> None:
    """Benchmarks, reported as ratios against a baseline from the same run."""


@bench_group.command("replay")
@click.option("--events", "n_events", type=int, default=200_000, show_default=True)
@click.option("--repeat", type=int, default=3, show_default=True, help="Runs; the best is reported.")
@store_option
def bench_replay_command(n_events: int, repeat: int, store: str | None) -> None:
    """Replay throughput (decode, validate, store; no detectors) against json.loads."""
    from monitor.bench import bench_replay

    def body() -> int:
        click.echo(bench_replay(n_events=n_events, repeat=repeat, store=store))
        return 0
    run_guarded(body)


def _register_commands() -> None:
    from monitor.commands import register_all

    register_all(main)


_register_commands()

if __name__ == "__main__":  # pragma: no cover
    main()
