"""What the commands share: the ``--store`` option, the error guard, tables and hints."""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import click

from monitor.errors import ConfigError, DriftwatchError
from monitor.output_safety import terminal_row, terminal_text
from monitor.redact import redact_text

__all__ = ["COUNT", "INDEX", "program_name", "run_guarded", "safe_message", "store_flag", "store_option", "table"]

F = TypeVar("F", bound=Callable[..., Any])

#: A count or size given on the command line: at least 1 (0 events or 0 runs measures nothing).
COUNT = click.IntRange(min=1)
#: An index or an allowance: at least 0.
INDEX = click.IntRange(min=0)


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
        click.echo(f"driftwatch: configuration error: {safe_message(exc)}", err=True)
        sys.exit(2)
    except DriftwatchError as exc:
        click.echo(f"driftwatch: error: {safe_message(exc)}", err=True)
        sys.exit(1)
    sys.exit(code or 0)


def safe_message(exc: BaseException) -> str:
    """An error for the terminal: credentials redacted, control sequences shown escaped."""
    return terminal_text(redact_text(str(exc)), keep_newlines=True)


def table(rows: Sequence[Sequence[Any]]) -> str:
    """Left-aligned columns, two spaces apart, the first row the header.

    Examples
    --------
    >>> print(table([("id", "state"), ("a1", "open")]))
    id  state
    a1  open
    """
    cells = [terminal_row(row) for row in rows]  # model ids, tenant ids and values are user data
    widths = [max(len(row[i]) for row in cells) for i in range(len(cells[0]))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=False)).rstrip() for row in cells)


def program_name() -> str:
    """How the user started us, so hints can be pasted as they are."""
    name = sys.argv[0]
    return name if name.endswith("driftwatch") else "driftwatch"


def store_flag(store: str | None) -> str:
    """`` --store DSN`` for a hint, when the user gave one."""
    return f" --store {store}" if store else ""
