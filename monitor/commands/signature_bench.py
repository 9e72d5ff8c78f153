"""``driftwatch bench signatures`` and ``driftwatch bench motif``."""

from __future__ import annotations

import click

from monitor.cli import run_guarded

__all__ = ["register"]


@click.command("signatures")
@click.option("--signatures", "n_signatures", type=int, default=10_000, show_default=True)
@click.option("--texts", "n_texts", type=int, default=2_000, show_default=True, help="Texts of 1 KiB.")
@click.option("--repeat", type=int, default=2, show_default=True, help="Runs; the best is reported.")
def bench_signatures_command(n_signatures: int, n_texts: int, repeat: int) -> None:
    """Signature matching (normalisation included) against one Python re alternation."""
    from monitor.bench_detectors import bench_signatures

    def body() -> int:
        click.echo(bench_signatures(n_signatures=n_signatures, n_texts=n_texts, repeat=repeat))
        return 0
    run_guarded(body)


@click.command("motif")
@click.option("--window", type=int, default=100_000, show_default=True, help="Events per window.")
@click.option("--rate", type=float, default=0.01, show_default=True, help="Share of events holding the trigger.")
def bench_motif_command(window: int, rate: float) -> None:
    """Motif mining: is a planted trigger found within one window; false candidates on a clean stream."""
    from monitor.bench_detectors import bench_motif

    def body() -> int:
        click.echo(bench_motif(window=window, rate=rate))
        return 0
    run_guarded(body)


def register(main: click.Group) -> None:
    bench = main.commands["bench"]
    if isinstance(bench, click.Group):
        bench.add_command(bench_signatures_command)
        bench.add_command(bench_motif_command)
