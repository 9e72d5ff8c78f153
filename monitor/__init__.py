"""driftwatch's domain model, pipeline core, storage, policies and CLI."""

__version__ = "0.1.0"
