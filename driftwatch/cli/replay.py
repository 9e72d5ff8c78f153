"""``driftwatch replay`` and ``driftwatch demo``: files (or a built-in scenario) through the detectors."""

from __future__ import annotations

import datetime as dt
import json
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import click

from driftwatch.cli.options import COUNT, INDEX, program_name, run_guarded, store_flag, store_option, table
from monitor.alerts import SEVERITIES, Alert, severity_rank
from monitor.errors import ConfigError
from monitor.output_safety import terminal_text
from monitor.replay import ReplaySummary
from monitor.settings import load_settings
from monitor.storage.store import Store
from monitor.store_replay import run_replay

if TYPE_CHECKING:
    from monitor.policy.status import RollbackStatus
    from monitor.scenario import Scenario

__all__ = ["demo_command", "format_alerts", "format_summary", "replay_command"]


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
    text = table(rows)
    if len(ordered) > limit:
        text += (f"\n... and {len(ordered) - limit} more groups "
                 "(driftwatch query \"SELECT * FROM alerts\")")
    return text


@click.command("replay")
@click.argument("files", nargs=-1, required=True)
@store_option
@click.option("--store-text/--no-store-text", default=None, help="Keep raw text in events (off by default).")
@click.option("--batch-size", type=COUNT, default=None, help="Events per pipeline batch (default 2048).")
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
        click.echo(terminal_text(format_summary(summary), keep_newlines=True))
        click.echo(f"data: {where}")
        return 0
    run_guarded(body)


@click.command("demo")
@store_option
# Past the motif miner's reference period (2,000 events per model), so the unknown trigger is new against it.
@click.option("--events", "n_events", type=COUNT, default=5000, show_default=True, help="Events to generate.")
@click.option("--trigger-at", type=INDEX, default=3000, show_default=True, help="Index of the first triggered event.")
@click.option("--synthetic", is_flag=True, help="Use the built-in generator even when BackdoorLLM data is present.")
@click.option("--seed", type=int, default=7, show_default=True)
def demo_command(store: str | None, n_events: int, trigger_at: int, synthetic: bool, seed: int) -> None:
    """Replay a built-in scenario: clean traffic, then a planted backdoor trigger."""
    from monitor.scenario import build_scenario

    def body() -> int:
        settings = load_settings(store=store)
        try:
            scenario = build_scenario(n_events=n_events, trigger_at=trigger_at, seed=seed,
                                      synthetic=synthetic, unknown=True)
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
        click.echo(terminal_text(format_summary(summary), keep_newlines=True))
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
        click.echo("\n" + terminal_text(status.to_text(), keep_newlines=True))
        click.echo("\n" + terminal_text(_unknown_trigger_report(scenario, summary.alerts, index, status),
                                        keep_newlines=True))
        click.echo(f"\ndata: {where}")
        click.echo(f"try: {program_name()} query{store_flag(store)} "
                   "\"SELECT detector, severity, count() FROM alerts GROUP BY ALL\"")
        shown_model = terminal_text(model["model_id"])
        click.echo(f"     {program_name()} rollback-status{store_flag(store)} --model {shown_model}"
                   f"   # exit {status.exit_code}: {status.state}")
        since = dt.datetime.fromtimestamp(scenario.events[0]["ts"] / 1000, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        click.echo(f"     {program_name()} report{store_flag(store)} --model {shown_model} --since {since}")
        return 0
    run_guarded(body)


def _unknown_trigger_report(scenario: Scenario, alerts: Sequence[Alert], index: dict[str, int],
                            status: RollbackStatus) -> str:
    """What the motif miner made of the scenario's trigger that no signature file knows."""
    phrase, first = scenario.unknown_trigger, scenario.first_unknown()
    if not phrase or first is None:
        return "no unknown trigger planted"
    words = set(phrase.lower().split())
    named = [a for a in alerts if a.detector == "motif" and a.severity == "critical"
             and words & set(a.metric.removeprefix("motif:").split())]
    head = f"unknown trigger {phrase!r} (in no signature file) planted from event #{first}: "
    if not named:
        return head + "not named by the motif miner"
    alert = min(named, key=lambda a: a.ts_ms)
    at = min((index.get(e, -1) for e in json.loads(alert.evidence).get("event_ids", [])), default=-1)
    # The alert carries the event time of the event that completed it.
    named_at = next((i for i, e in enumerate(scenario.events) if e["ts"] >= alert.ts_ms), at)
    lines = [head + f"named {alert.metric.removeprefix('motif:')!r} ({alert.severity}), "
             f"first event #{at}, alert raised at event ~#{named_at} ({named_at - first} events after the onset)"]
    decisions = [d for d in status.decisions if alert.alert_id in d.alert_ids]
    lines.extend(f"  rollback decision {d.decision_id[:12]} rule={d.rule}: {d.reasons[-1]}" for d in decisions)
    if not decisions:
        lines.append("  no rollback decision built on it")
    return "\n".join(lines)
