"""``driftwatch bench pipeline``."""

from __future__ import annotations

import click

from monitor.cli import run_guarded

__all__ = ["register"]


@click.command("pipeline")
@click.option("--events", "n_events", type=int, default=50_000, show_default=True, help="Events of about 1 KiB.")
@click.option("--batch", type=int, default=2048, show_default=True, help="Events per pipeline call.")
@click.option("--full-window/--no-full-window", default=True, show_default=True,
              help="Also time the checkpoint of one model with a full motif window (about 10 s more).")
def bench_pipeline_command(n_events: int, batch: int, full_window: bool) -> None:
    """The default pipeline's detectors: events/s per stage and snapshot ms, against json.loads."""
    from monitor.pipeline_bench import bench_pipeline

    def body() -> int:
        click.echo(bench_pipeline(n_events=n_events, batch=batch, full_window=full_window))
        return 0
    run_guarded(body)


def register(main: click.Group) -> None:
    bench = main.commands["bench"]
    if isinstance(bench, click.Group):
        bench.add_command(bench_pipeline_command)
