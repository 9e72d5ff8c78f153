"""Run ``driftwatch`` in-process (click's CliRunner): a subprocess costs seconds of start-up each."""

from __future__ import annotations

from click.testing import CliRunner, Result

from driftwatch.cli.app import build_cli


def invoke(*args: str, env: dict[str, str] | None = None) -> Result:
    """``driftwatch ARGS``; the result has ``exit_code``, ``stdout`` and ``stderr``."""
    return CliRunner().invoke(build_cli(), list(args), catch_exceptions=False, env=env)
