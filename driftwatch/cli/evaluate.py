"""``driftwatch evaluate``: detector quality.

Scores every change-point detector and river's defaults on the same synthetic
streams (see :mod:`monitor.evaluation`); their cost is ``driftwatch bench
detectors`` (:mod:`driftwatch.bench.detectors`).
"""

from __future__ import annotations

import click

from driftwatch.cli.options import run_guarded

__all__ = ["evaluate_command"]


@click.command("evaluate")
@click.option("--reps", type=int, default=8, show_default=True, help="Streams per type for each detector.")
@click.option("--slow-reps", type=int, default=3, show_default=True,
              help="Streams per type for the KSWINs (a KS test per update, about 0.3 ms).")
@click.option("--stationary-events", type=int, default=100_000, show_default=True,
              help="Length of the stationary stream that measures the false-alarm rate.")
@click.option("--slow-stationary-events", type=int, default=10_000, show_default=True,
              help="The same for the KSWINs.")
@click.option("--pre", type=int, default=2000, show_default=True, help="Values before each change.")
@click.option("--post", type=int, default=1000, show_default=True, help="Values after; no alarm by then is a miss.")
@click.option("--detector", "names", multiple=True, help="Only these of ours (repeatable); river's always run.")
@click.option("--long", "long_run", is_flag=True,
              help="A longer run: 50 streams per type (10 for KSWIN), 1,000,000 stationary events (50,000).")
@click.option("--seed", type=int, default=0, show_default=True)
def evaluate_command(reps: int, slow_reps: int, stationary_events: int, slow_stationary_events: int, pre: int,
                     post: int, names: tuple[str, ...], long_run: bool, seed: int) -> None:
    """Detection delay, missed detections and false alarms per 10,000 events, per detector."""
    from monitor.errors import ConfigError
    from monitor.evaluation import evaluate, format_scores

    def body() -> int:
        if min(reps, slow_reps, pre, post, stationary_events, slow_stationary_events) < 1:
            raise ConfigError("reps, slow-reps, pre, post and the stationary lengths must be >= 1")
        settings = dict(reps=reps, slow_reps=slow_reps, stationary_events=stationary_events,
                        slow_stationary_events=slow_stationary_events)
        if long_run:
            settings = dict(reps=50, slow_reps=10, stationary_events=1_000_000, slow_stationary_events=50_000)
        try:
            results = evaluate(pre=pre, post=post, seed=seed, names=names or None, **settings)
        except ValueError as exc:
            raise ConfigError(str(exc)) from exc
        click.echo(f"streams: {pre} values, change, {post} values; delay = first alarm after the change; "
                   f"FA10k = alarms before the change per 10,000 events")
        click.echo(format_scores(results))
        return 0

    run_guarded(body)
