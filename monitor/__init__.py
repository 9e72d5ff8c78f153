"""driftwatch's domain model, pipeline core, storage and policies (the CLI is :mod:`driftwatch.cli`)."""

__version__ = "0.1.0"
