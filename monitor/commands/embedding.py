"""``driftwatch bench embedding``: see :mod:`monitor.embedding_bench`."""

from __future__ import annotations

import click

from monitor.cli import run_guarded

__all__ = ["register"]


@click.command("embedding")
@click.option("--outputs", type=int, default=256, show_default=True, help="Outputs of ~200 word pieces to embed.")
@click.option("--batch-size", type=int, default=64, show_default=True, help="Texts per forward pass (CPU).")
@click.option("--repeat", type=int, default=2, show_default=True, help="Runs per figure; the best is reported.")
@click.option("--threads", type=int, default=None, help="torch.set_num_threads (default: torch's choice).")
@click.option("--skip-mmd", is_flag=True, help="Leave out the 10,000 x 1,000 MMD figure.")
def bench_embedding_command(outputs: int, batch_size: int, repeat: int, threads: int | None,
                            skip_mmd: bool) -> None:
    """Embedding + scoring outputs/s and MMD time, against sentence-transformers' encode."""
    from monitor.embedding_bench import bench_embedding

    def body() -> int:
        click.echo(bench_embedding(outputs=outputs, batch_size=batch_size, repeat=repeat, threads=threads,
                                   skip_mmd=skip_mmd))
        return 0
    run_guarded(body)


def register(main: click.Group) -> None:
    bench = main.commands["bench"]
    if isinstance(bench, click.Group):
        bench.add_command(bench_embedding_command)
