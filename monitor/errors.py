"""Exceptions raised by driftwatch.

Every error the package raises on purpose derives from one root, so a caller
can catch ``DriftwatchError`` and know it is ours::

    DriftwatchError
    ├── ConfigError            bad settings, DSN, policy or signature file
    │   ├── SnapshotError      a checkpoint of the wrong format or shape (also a ValueError)
    │   ├── SchemaNameError    a dashboard names a table or column the schema lacks
    │   ├── MacroError         dashboard SQL uses a macro Grafana would not expand
    │   ├── TypecheckError     the dashboards' TypeScript toolchain is missing
    │   ├── UnknownTargetError an acknowledgement names an id the store does not hold
    │   └── RefusedQueryError  analyst SQL reaches outside the store's tables
    ├── EventError             one record failed decoding or validation
    │   ├── DecodeError        not JSON, not UTF-8, too large, too deep
    │   └── ValidationError    JSON, but not a model-call event
    ├── StorageError           ClickHouse refused or could not be reached
    │   ├── SinkFullError      the sink's buffer is at its bound; flush first
    │   └── RowsRefusedError   the store refused the data of an insert (not an outage)
    ├── InputFileError         a replay source cannot be opened or read
    └── PublishError           Grafana refused a request or could not be reached

``EventError`` is per record: the pipeline sends the record to dead letters and
carries on. The others are fatal to the command that meets them.

Library errors are translated in one place each: clickhouse-connect's
``ClickHouseError`` becomes ``StorageError`` in
:func:`monitor.storage.store.translated`. ``detectors`` imports nothing from
here: a detector refuses bad input or state with ``ValueError``, and the
``monitor`` stage that restores it raises ``SnapshotError``.
"""

from __future__ import annotations


class DriftwatchError(Exception):
    """Root of every exception driftwatch raises on purpose."""


class ConfigError(DriftwatchError):
    """A setting, DSN or configuration file is invalid."""


class SnapshotError(ConfigError, ValueError):
    """A snapshot (checkpoint) has the wrong format or does not fit this configuration.

    It is a ``ValueError`` too, so callers that caught the ``ValueError`` some
    stages raised before keep working.
    """


class SchemaNameError(ConfigError):
    """A dashboard names a table or column the schema does not have."""


class MacroError(ConfigError):
    """A query uses a macro or variable that Grafana would not expand."""


class TypecheckError(ConfigError):
    """The TypeScript toolchain is missing or could not be installed."""


class UnknownTargetError(ConfigError):
    """An acknowledgement names an alert, incident or rollback decision the store does not hold."""


class RefusedQueryError(ConfigError):
    """An analyst's statement is not a plain SELECT over the store's tables (see :mod:`monitor.storage.sql_guard`)."""


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


class SinkFullError(StorageError):
    """The sink holds its maximum of rows; flush (or wait for ClickHouse) before adding more."""


class RowsRefusedError(StorageError):
    """The store refused what an insert carried (a value its column cannot hold), not the connection.

    The sink splits such a batch until the refused rows stand alone and
    dead-letters them; retrying the same rows could never succeed.
    """


class InputFileError(DriftwatchError):
    """A replay source could not be opened or read."""


class PublishError(DriftwatchError):
    """Grafana refused a request or could not be reached."""
