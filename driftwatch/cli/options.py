"""What the commands share: the ``--store`` option, the error guard, tables and hints."""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import click

from monitor.errors import ConfigError, DriftwatchError

__all__ = ["program_name", "run_guarded", "store_flag", "store_option", "table"]

F = TypeVar("F", bound=Callable[..., Any])


def store_option(func: F) -> F:
    return click.option(
        "--store", "store", metavar="DSN", default=None,
        help="chdb:///path (embedded, default ./driftwatch-data) or http(s)://user:pass@host:8123/db. "
             "Env: DRIFTWATCH_STORE.",
    )(func)


def run_guarded(func: Callable[[], int | None]) -> None:
    """Run a command body, turning our errors into a message and an exit code."""
    try:
        code = func()
    except ConfigError as exc:
        click.echo(f"driftwatch: configuration error: {exc}", err=True)
        sys.exit(2)
    except DriftwatchError as exc:
        click.echo(f"driftwatch: error: {exc}", err=True)
        sys.exit(1)
    sys.exit(code or 0)


def table(rows: Sequence[Sequence[Any]]) -> str:
    """Left-aligned columns, two spaces apart, the first row the header.

    Examples
    --------
    >>> print(table([("id", "state"), ("a1", "open")]))
    id  state
    a1  open
    """
    cells = [[str(c) for c in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(cells[0]))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=False)).rstrip() for row in cells)


def program_name() -> str:
    """How the user started us, so hints can be pasted as they are."""
    name = sys.argv[0]
    return name if name.endswith("driftwatch") else "driftwatch"


def store_flag(store: str | None) -> str:
    """`` --store DSN`` for a hint, when the user gave one."""
    return f" --store {store}" if store else ""
