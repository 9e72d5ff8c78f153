"""``python -m driftwatch``: the same as the ``driftwatch`` command."""

from driftwatch.cli import main

main()
