"""``driftwatch evaluate`` and ``driftwatch bench detectors``: detector quality and cost.

``evaluate`` scores every change-point detector and river's defaults on the
same synthetic streams (see :mod:`monitor.evaluation`); ``bench detectors``
reports per-update cost as throughput ratios against river's ADWIN measured
in the same run, and state bytes per stream.
"""

from __future__ import annotations

import click

__all__ = ["register"]


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
    from monitor.cli import run_guarded
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


@click.command("detectors")
@click.option("--events", type=int, default=200_000, show_default=True, help="Updates per fast detector.")
@click.option("--slow-events", type=int, default=5_000, show_default=True, help="Updates for KSWIN.")
@click.option("--repeat", type=int, default=2, show_default=True, help="Runs; the best is reported.")
@click.option("--state-events", type=int, default=5_000, show_default=True,
              help="Updates before measuring each detector's state.")
@click.option("--stage-events", type=int, default=3_000, show_default=True,
              help="Scenario events before measuring the drift stage's state.")
def bench_detectors_command(events: int, slow_events: int, repeat: int, state_events: int,
                            stage_events: int) -> None:
    """Per-update cost against river's ADWIN, and state bytes per stream."""
    from monitor.cli import run_guarded
    from monitor.evaluation import bench_costs, stage_state_bytes, state_sizes

    def body() -> int:
        click.echo(f"stationary N(0,1) stream; best of {repeat}; amortised: warm-up, calibration and "
                   "recalibration after each false alarm included; steady state: the update alone")
        click.echo(f"{'detector':<24} {'us/update amortised':>20} {'steady state':>13} "
                   f"{'throughput vs river ADWIN':>26}")
        for name, amortised, steady, ratio in bench_costs(events=events, slow_events=slow_events, repeat=repeat):
            click.echo(f"{name:<24} {amortised:20.2f} {steady:13.2f} {ratio:26.3f}")
        click.echo(f"\nstate per stream (JSON snapshot bytes, after {state_events:,} updates)")
        for name, size in state_sizes(events=state_events):
            click.echo(f"{name:<24} {size:10,d}")
        key_bytes, per_metric = stage_state_bytes(n_events=stage_events)
        click.echo(f"{'drift stage, per key':<24} {key_bytes:10,d}  ({per_metric:,.0f} per metric stream)")
        return 0

    run_guarded(body)


def register(main: click.Group) -> None:
    main.add_command(evaluate_command)
    bench = main.commands.get("bench")
    if isinstance(bench, click.Group):
        bench.add_command(bench_detectors_command)
