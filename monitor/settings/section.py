"""The base of every settings section: frozen, validated, read from ``DRIFTWATCH_*`` variables.

A section reads the variables named by its ``env_prefix`` and field name
(``DRIFTWATCH_DRIFT_`` + ``window_events``), or by a field's
``validation_alias`` where the name predates the sections
(``DRIFTWATCH_STORE`` is the store section's ``dsn``). :func:`flat_name` gives
each field's name without ``DRIFTWATCH_``, the name flags and
:func:`monitor.settings.load_settings` use (``drift_window_events``).
"""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict

from monitor.errors import ConfigError
from monitor.redact import redact_text

__all__ = ["PREFIX", "Section", "env", "flat_name"]

PREFIX = "DRIFTWATCH_"


def env(flat: str) -> str:
    """The environment variable of a field whose name is not the section's prefix + field name."""
    return PREFIX + flat.upper()


class Section(BaseSettings):
    """One section of :class:`monitor.settings.Settings`; invalid values raise :class:`ConfigError`."""

    model_config = SettingsConfigDict(env_prefix=PREFIX, frozen=True, extra="forbid",
                                      validate_by_name=True, validate_by_alias=True)
    #: Where the section sits in :class:`monitor.settings.Settings`.
    section: ClassVar[str]

    def __init__(self, **values: Any) -> None:
        try:
            super().__init__(**values)
        except ValidationError as exc:
            problems = "; ".join(
                f"{flat_name(type(self), str(e['loc'][0])) if e['loc'] else self.section}: "
                f"{redact_text(e['msg'])}{_shown(e)}" for e in exc.errors())
            raise ConfigError(f"invalid settings: {problems}") from None


_SECRET_WORDS = ("secret", "password", "key", "token", "sasl")


def _shown(error: Any) -> str:
    """What was given, redacted, unless the field holds a secret (then nothing of it)."""
    field = str(error["loc"][0]).lower() if error["loc"] else ""
    if any(word in field for word in _SECRET_WORDS):
        return ""
    return f"; got {redact_text(repr(error['input']))}"


def flat_name(section: type[Section], field: str) -> str:
    """``field`` of ``section`` (or its alias) as one flat name: the environment variable less ``DRIFTWATCH_``."""
    for name, info in section.model_fields.items():
        alias = info.validation_alias
        if field in (name, alias):
            variable = alias if isinstance(alias, str) else section.model_config.get("env_prefix", "") + name
            return variable.removeprefix(PREFIX).lower()
    return field
