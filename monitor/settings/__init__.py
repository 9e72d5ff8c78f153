"""Settings: one frozen, validated object in sections, read from flags and the environment.

Each section is read from its own ``DRIFTWATCH_*`` variables, with the names
they had before the sections (``DRIFTWATCH_STORE`` is ``settings.store.dsn``,
``DRIFTWATCH_DRIFT_WINDOW_EVENTS`` is ``settings.drift.window_events``);
command line flags override the environment. :class:`Settings` and
:func:`load_settings` also take every field by that flat name
(``drift_window_events=300``), which is how the CLI passes its flags.

Examples
--------
>>> settings = Settings(drift_window_events=300, embedding="off", store="chdb:///tmp/dw")
>>> settings.drift.window_events, settings.embedding.mode, settings.store.dsn
(300, 'off', 'chdb:///tmp/dw')
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from monitor.errors import ConfigError
from monitor.redact import validation_message
from monitor.settings.section import Section, flat_name
from monitor.settings.service import IngestSettings, KafkaSettings, SocSettings, StoreSettings
from monitor.settings.stages import (
    BehaviourSettings,
    DriftConfig,
    EmbeddingConfig,
    MotifStageConfig,
    ProbeConfig,
    SignatureConfig,
)

__all__ = ["BehaviourSettings", "DriftConfig", "EmbeddingConfig", "IngestSettings", "KafkaSettings",
           "MotifStageConfig", "ProbeConfig", "Settings", "SignatureConfig", "SocSettings", "StoreSettings",
           "load_settings"]

SECTIONS: tuple[type[Section], ...] = (IngestSettings, StoreSettings, BehaviourSettings, DriftConfig, EmbeddingConfig,
                                       ProbeConfig, SignatureConfig, MotifStageConfig, KafkaSettings, SocSettings)
#: Every field's flat name (``drift_window_events``) -> (section, field).
FLAT_NAMES: dict[str, tuple[str, str]] = {
    flat_name(section, field): (section.section, field) for section in SECTIONS for field in section.model_fields}


class Settings(BaseModel):
    """driftwatch's settings, one section per part of the service."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    ingest: IngestSettings = Field(default_factory=IngestSettings)
    store: StoreSettings = Field(default_factory=StoreSettings)
    behaviour: BehaviourSettings = Field(default_factory=BehaviourSettings)
    drift: DriftConfig = Field(default_factory=DriftConfig)
    embedding: EmbeddingConfig = Field(default_factory=EmbeddingConfig)
    probe: ProbeConfig = Field(default_factory=ProbeConfig)
    signatures: SignatureConfig = Field(default_factory=SignatureConfig)
    motif: MotifStageConfig = Field(default_factory=MotifStageConfig)
    kafka: KafkaSettings = Field(default_factory=KafkaSettings)
    soc: SocSettings = Field(default_factory=SocSettings)

    @model_validator(mode="before")
    @classmethod
    def _sections_from_flat_names(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        given: dict[str, Any] = {}
        grouped: dict[str, dict[str, Any]] = {}
        for name, value in data.items():
            # A section's own name ("store") is also a flat name ("store" the DSN): a section object is the section.
            if name in FLAT_NAMES and not isinstance(value, Section):
                section, field = FLAT_NAMES[name]
                grouped.setdefault(section, {})[field] = value
            else:
                given[name] = value
        for section_type in SECTIONS:
            values = grouped.get(section_type.section)
            if values is not None:
                if section_type.section in given:
                    raise ConfigError(f"settings got both the {section_type.section} section and some of its "
                                      f"fields ({', '.join(sorted(values))})")
                given[section_type.section] = section_type(**values)
        return given


def load_settings(**overrides: Any) -> Settings:
    """Settings from the environment, with non-None ``overrides`` (flat names) on top."""
    given = {name: value for name, value in overrides.items() if value is not None}
    try:
        return Settings(**given)
    except ConfigError:
        raise
    except Exception as exc:  # pydantic's ValidationError quotes the values given: never echo them
        raise ConfigError(f"invalid settings: {validation_message(exc)}") from None
