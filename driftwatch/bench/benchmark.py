"""What a benchmark is: a name, its help, its command-line options and the function that runs it."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import click

__all__ = ["Benchmark", "Option", "repeat_option"]

Option = Callable[[Callable[..., Any]], Callable[..., Any]]
"""A ``click.option(...)`` decorator."""


@dataclass(frozen=True)
class Benchmark:
    """One ``driftwatch bench NAME`` subcommand.

    ``run`` takes the options' values as keyword arguments and returns the
    report to print. Heavy imports (torch, streams) belong inside ``run``, so
    that building the command line stays cheap.

    Examples
    --------
    >>> import click
    >>> echo = Benchmark("echo", "Print the count.", (click.option("--count", type=int, default=1),),
    ...                  run=lambda count: f"count {count}")
    >>> echo.run(count=3)
    'count 3'
    """

    name: str
    help: str
    options: Sequence[Option]
    run: Callable[..., str]


def repeat_option(default: int) -> Option:
    """``--repeat N``: how many runs, of which the best is reported."""
    return click.option("--repeat", type=int, default=default, show_default=True, help="Runs; the best is reported.")
