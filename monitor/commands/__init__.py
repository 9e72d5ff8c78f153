"""Command modules beyond the core ones in :mod:`monitor.cli`.

Each module here defines click commands or groups and a ``register(main)``
function that adds them to the ``driftwatch`` group. List a new module in
``COMMAND_MODULES``; it is imported only when the CLI starts.
"""

from __future__ import annotations

from importlib import import_module

import click

# One line per module; keep sorted.
COMMAND_MODULES: list[str] = [
    "canary",
    "dashboards",
    "embedding",
    "evaluate",
    "gate",
    "pipeline_bench",
    "report",
    "signature_bench",
    "soc",
    "streaming",
]


def register_all(main: click.Group) -> None:
    for name in COMMAND_MODULES:
        import_module(f"monitor.commands.{name}").register(main)
