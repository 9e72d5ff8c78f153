"""The ``driftwatch`` command line: one module per noun, the command list in :mod:`driftwatch.cli.app`.

Every command that touches data takes ``--store DSN`` (default: embedded
ClickHouse under ``./driftwatch-data``). Exit codes: 0 success, 1 a fatal
error, 2 bad usage or configuration (``rollback-status`` and ``gate`` add 10).
"""

from __future__ import annotations

from collections.abc import Sequence

__all__ = ["main"]


def main(args: Sequence[str] | None = None) -> None:
    """The console script: build the command tree and run it (``args`` default: ``sys.argv[1:]``)."""
    # Imported here, not at module level, so that `import driftwatch.cli.options` (which the
    # benchmarks use) does not build every command first.
    from driftwatch.cli.app import build_cli

    build_cli()(args)
