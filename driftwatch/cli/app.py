"""The root ``driftwatch`` group, built from the explicit list of commands in :func:`commands`."""

from __future__ import annotations

import logging

import click

from driftwatch.cli import canary, dashboards, evaluate, gate, query, replay, report, signatures, soc, streaming
from driftwatch.cli.bench import bench_group

__all__ = ["build_cli", "commands"]


def commands() -> tuple[click.Command, ...]:
    """Every top-level command; a new one is added here and nowhere else."""
    return (
        replay.replay_command,
        replay.demo_command,
        query.query_command,
        query.schema_command,
        soc.rollback_status_command,
        soc.incidents_command,
        soc.ack_command,
        soc.export_command,
        soc.policy_check_command,
        canary.canary_group,
        signatures.signatures_group,
        report.report_command,
        gate.gate_group,
        evaluate.evaluate_command,
        dashboards.dashboards_group,
        streaming.run_command,
        streaming.produce_command,
        bench_group(),
    )


def _configure_logging(verbose: int) -> None:
    """The root group's own work, before any command: logging at the ``-v`` level."""
    level = logging.WARNING if verbose == 0 else logging.INFO if verbose == 1 else logging.DEBUG
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s %(message)s")


def build_cli() -> click.Group:
    """The ``driftwatch`` command tree, a fresh one per call.

    Examples
    --------
    >>> sorted(build_cli().commands)[:3]
    ['ack', 'bench', 'canary']
    """
    verbose = click.option("-v", "--verbose", count=True, help="-v for lifecycle logs, -vv for debug.")
    return click.group("driftwatch", commands=commands(), context_settings={"help_option_names": ["-h", "--help"]},
                       help="Watch deployed language models for backdoor triggers, canary leaks and drift.",
                       )(verbose(_configure_logging))
