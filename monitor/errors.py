"""Exceptions raised by driftwatch.

Every error the package raises on purpose derives from one root, so a caller
can catch ``DriftwatchError`` and know it is ours::

    DriftwatchError
    ├── ConfigError          bad settings, DSN, policy or signature file
    ├── EventError           one record failed decoding or validation
    │   ├── DecodeError      not JSON, not UTF-8, too large, too deep
    │   └── ValidationError  JSON, but not a model-call event
    ├── StorageError         ClickHouse refused or could not be reached
    └── InputFileError       a replay source cannot be opened or read

``EventError`` is per record: the pipeline sends the record to dead letters and
carries on. The others are fatal to the command that meets them.
"""

from __future__ import annotations


class DriftwatchError(Exception):
    """Root of every exception driftwatch raises on purpose."""


class ConfigError(DriftwatchError):
    """A setting, DSN or configuration file is invalid."""


class EventError(DriftwatchError):
    """One record could not be turned into an event.

    Parameters
    ----------
    reason
        What was wrong, naming the field, what was expected and what was found.
    field
        JSON path of the offending field (``$.model_id``), or ``None`` when
        the record as a whole is at fault.
    """

    def __init__(self, reason: str, field: str | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.field = field


class DecodeError(EventError):
    """The bytes are not a JSON object we are willing to parse."""


class ValidationError(EventError):
    """The JSON parsed but does not follow the event schema."""


class StorageError(DriftwatchError):
    """ClickHouse could not be reached or refused a statement."""


class InputFileError(DriftwatchError):
    """A replay source could not be opened or read."""
