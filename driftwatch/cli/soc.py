"""SOC commands: ``rollback-status``, ``incidents``, ``ack``, ``export`` and ``policy-check``."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from driftwatch.cli.options import COUNT, run_guarded, safe_message, store_option, table
from monitor.durations import parse_since
from monitor.errors import DriftwatchError
from monitor.output_safety import terminal_text
from monitor.settings import load_settings
from monitor.storage.store import Store

__all__ = ["ack_command", "export_command", "incidents_command", "policy_check_command",
           "rollback_status_command"]


@click.command("rollback-status")
@click.option("--model", "model_id", required=True, help="model_id to check.")
@click.option("--version", "model_version", default=None, help="model_version (default: the one serving now).")
@click.option("--reevaluate", is_flag=True,
              help="Run the rollback policy over the stored alerts first and store any new decisions.")
@click.option("--policy", type=click.Path(dir_okay=False), default=None,
              help="Policy YAML (its rollback rules are listed; --reevaluate applies them).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of text.")
@store_option
def rollback_status_command(model_id: str, model_version: str | None, reevaluate: bool, policy: str | None,
                            as_json: bool, store: str | None) -> None:
    """Is a rollback recommended for MODEL? Exit 0 healthy, 10 rollback recommended, 2 error."""
    from monitor.export.siem import iter_alerts
    from monitor.policy.config import load_policy
    from monitor.policy.engine import SocEngine
    from monitor.policy.status import EXIT_ERROR, rollback_status

    try:
        settings = load_settings(store=store, policy=policy)
        shipped = load_policy(settings.soc.policy)
        with Store(settings.store.dsn) as handle:
            if reevaluate:
                handle.ensure_schema()
                engine = SocEngine(shipped)
                alerts = [a for a in iter_alerts(handle, model_id=model_id)
                          if model_version is None or a.model_version == model_version]
                engine.handle(handle, alerts)
            status = rollback_status(handle, model_id, model_version, rules=shipped.rollback.rules)
    except DriftwatchError as exc:
        # Playbooks branch on 0 and 10; anything we could not decide is 2.
        click.echo(f"driftwatch: error: {safe_message(exc)}", err=True)
        sys.exit(EXIT_ERROR)
    click.echo(json.dumps(status.to_json(), indent=2) if as_json
               else terminal_text(status.to_text(), keep_newlines=True))
    sys.exit(status.exit_code)


@click.command("incidents")
@click.option("--model", "model_id", default=None)
@click.option("--state", type=click.Choice(["open", "acknowledged", "resolved", "suppressed", "all"]),
              default="open", show_default=True)
@click.option("--limit", type=COUNT, default=50, show_default=True)
@store_option
def incidents_command(model_id: str | None, state: str, limit: int, store: str | None) -> None:
    """List incidents with their acknowledgement state, newest first."""
    from monitor.policy.incidents import ack_states

    def body() -> int:
        settings = load_settings(store=store)
        with Store(settings.store.dsn) as handle:
            _, rows = handle.query(
                "SELECT incident_id, window_start, model_id, model_version, family, severity, alert_count "
                "FROM incidents WHERE ({m:String} = '' OR model_id = {m:String}) ORDER BY window_start DESC",
                parameters={"m": model_id or ""})
            states = ack_states(handle, [r[0] for r in rows], kind="incident")
        shown = [(*r, states[r[0]]) for r in rows if state == "all" or states[r[0]] == state][:limit]
        click.echo(table([("incident", "window start", "model", "version", "family", "severity", "alerts",
                            "state"), *shown]))
        return 0
    run_guarded(body)


@click.command("ack")
@click.argument("target_id")
@click.option("--kind", type=click.Choice(["incident", "alert", "rollback"]), default="incident", show_default=True)
@click.option("--state", type=click.Choice(["acknowledged", "resolved", "open", "suppressed"]),
              default="acknowledged", show_default=True)
@click.option("--actor", required=True, help="Who (an analyst id).")
@click.option("--note", default="")
@store_option
def ack_command(target_id: str, kind: str, state: str, actor: str, note: str, store: str | None) -> None:
    """Set the acknowledgement state of an incident, alert or rollback decision."""
    from monitor.policy.incidents import acknowledge

    def body() -> int:
        settings = load_settings(store=store)
        # No ensure_schema here: an analyst may INSERT into acknowledgements and nothing more.
        with Store(settings.store.dsn) as handle:
            acknowledge(handle, target_id, kind=kind, state=state, actor=actor, note=note)  # type: ignore[arg-type]
        click.echo(terminal_text(f"{kind} {target_id}: {state} by {actor}"))
        return 0
    run_guarded(body)


def _since_ms(text: str | None) -> int | None:
    return parse_since(text) if text else None


@click.command("export")
@click.option("--format", "fmt", type=click.Choice(["ocsf", "ecs"]), required=True)
@click.option("--since", default=None, help="A duration back from now (7d) or an RFC 3339 time.")
@click.option("--model", "model_id", default=None)
@click.option("--min-severity", type=click.Choice(["info", "low", "medium", "high", "critical"]), default="info",
              show_default=True)
@click.option("-o", "--output", type=click.Path(dir_okay=False, writable=True), default="-", show_default=True,
              help="NDJSON file (- for stdout).")
@store_option
def export_command(fmt: str, since: str | None, model_id: str | None, min_severity: str, output: str,
                   store: str | None) -> None:
    """Export alerts as OCSF Detection Findings or ECS documents (NDJSON), tagged with ATLAS and OWASP ids."""
    from monitor.export.siem import FORMATS, iter_alerts

    def body() -> int:
        settings = load_settings(store=store)
        convert = FORMATS[fmt]
        count = 0
        out = sys.stdout if output == "-" else Path(output).open("w", encoding="utf-8")
        try:
            with Store(settings.store.dsn) as handle:
                for alert in iter_alerts(handle, since_ms=_since_ms(since), model_id=model_id,
                                         min_severity=min_severity):
                    out.write(json.dumps(convert(alert), sort_keys=True) + "\n")
                    count += 1
        finally:
            if out is not sys.stdout:
                out.close()
        if output != "-":
            click.echo(f"{count} alerts written to {output} ({fmt})", err=True)
        return 0
    run_guarded(body)


@click.command("policy-check")
@click.argument("path", type=click.Path(dir_okay=False), required=False)
def policy_check_command(path: str | None) -> None:
    """Validate a policy file (default: the shipped one) and print what it will do."""
    from monitor.policy.config import load_policy

    def body() -> int:
        policy = load_policy(path)
        alerts = policy.alerts
        click.echo(f"{policy.source}: ok")
        click.echo(f"  dedup window {alerts.dedup_window_ms // 1000} s; {len(alerts.severity)} severity "
                   f"override(s); {len(alerts.suppress)} maintenance window(s)")
        budget = alerts.paging_budget
        click.echo("  paging budget: none" if budget is None else
                   f"  paging budget: {budget.high_per_week} high page(s) per model per week from "
                   f"{', '.join(sorted(budget.families))}; past it, held (stored, evidence, not notified)")
        click.echo(f"  incidents per {policy.incident_window_ms // 60_000} min window")
        click.echo(f"  rollback window {policy.rollback.window_ms // 60_000} min:")
        for rule in policy.rollback.rules:
            scope = ", ".join(filter(None, [
                f"detectors {sorted(rule.detectors)}" if rule.detectors else "",
                f"families {sorted(rule.families)}" if rule.families else ""])) or "any detector"
            click.echo(f"    {rule.name}: >= {rule.min_alerts} alert(s) of severity >= {rule.min_severity} "
                       f"from >= {rule.min_families} famil{'y' if rule.min_families == 1 else 'ies'} ({scope})")
        return 0
    run_guarded(body)
