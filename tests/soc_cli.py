"""Run ``driftwatch`` in-process (click's CliRunner): a subprocess costs seconds of start-up each."""

from __future__ import annotations

from click.testing import CliRunner, Result

from monitor.cli import main


def invoke(*args: str, env: dict[str, str] | None = None) -> Result:
    """``driftwatch ARGS``; the result has ``exit_code``, ``stdout`` and ``stderr``."""
    return CliRunner().invoke(main, list(args), catch_exceptions=False, env=env)
