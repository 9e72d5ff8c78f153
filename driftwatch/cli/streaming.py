"""``driftwatch run`` (a streaming worker) and ``driftwatch produce`` (a file onto the input topic).

:mod:`streams` (Faust, aiokafka) is imported inside the commands only, so the
rest of the CLI starts without it.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from driftwatch.cli.options import run_guarded, store_option
from monitor.settings import load_settings

__all__ = ["bootstrap_option", "produce_command", "run_command"]

F = TypeVar("F", bound=Callable[..., Any])


def bootstrap_option(func: F) -> F:
    return click.option("--bootstrap", "bootstrap", metavar="HOST:PORT[,...]", default=None,
                        help="Kafka bootstrap servers. Env: DRIFTWATCH_KAFKA_BOOTSTRAP.")(func)


@click.command("run")
@store_option
@bootstrap_option
@click.option("--input-topic", default=None, help="Input topic (default model-io). Env: DRIFTWATCH_TOPIC_INPUT.")
@click.option("--partitions", type=int, default=None, help="Input partitions (default 8).")
@click.option("--processing-guarantee", type=click.Choice(["at_least_once", "exactly_once"]), default=None,
              help="Default at_least_once.")
@click.option("--log-level", default="warning", show_default=True,
              type=click.Choice(["debug", "info", "warning", "error"]), help="Faust worker log level.")
@click.option("--no-detectors", is_flag=True,
              help="Store and dead-letter only, no detection (backfills; the stream benchmark's baseline).")
def run_command(store: str | None, bootstrap: str | None, input_topic: str | None, partitions: int | None,
                processing_guarantee: str | None, log_level: str, no_detectors: bool) -> None:
    """Start a streaming worker: Kafka in, ClickHouse and the alerts topic out.

    SASL/TLS, topic names, flush and retry settings come from DRIFTWATCH_* variables
    (see the README's Streaming section).
    """
    def body() -> int:
        settings = load_settings(store=store, kafka_bootstrap=bootstrap, topic_input=input_topic,
                                 topic_partitions=partitions, processing_guarantee=processing_guarantee)
        from streams.runner import run_worker

        run_worker(settings, loglevel=log_level, detectors=not no_detectors)
        return 0
    run_guarded(body)


@click.command("produce")
@click.argument("file", type=click.Path(dir_okay=False, allow_dash=True))
@bootstrap_option
@click.option("--topic", default=None, help="Topic (default: the input topic, model-io).")
def produce_command(file: str, bootstrap: str | None, topic: str | None) -> None:
    """Publish a JSONL FILE (- for stdin) to the input topic, keyed by model_id.

    Waits for the broker to acknowledge every record; exits 1 naming how many
    were refused or lost, and why, if any was.
    """
    def body() -> int:
        from monitor.errors import InputFileError
        from streams.producer import produce_lines, producer_for

        settings = load_settings(kafka_bootstrap=bootstrap)
        target = topic or settings.kafka.topic_input
        producer = producer_for(settings)
        try:
            if file == "-":
                sent = produce_lines(producer, target, sys.stdin.buffer)
            else:
                try:
                    with Path(file).open("rb") as handle:
                        sent = produce_lines(producer, target, handle)
                except OSError as exc:
                    raise InputFileError(f"cannot read {file}: {exc.strerror}") from exc
        finally:
            producer.close(timeout=5)
        click.echo(f"sent {sent} records to {target} (each acknowledged by the broker)")
        return 0
    run_guarded(body)
