"""The SOC policy file: alert handling, incidents and rollback rules, in YAML.

The shipped default is ``monitor/data/policy.yaml``; its comments document
every key. :func:`load_policy` validates the whole document up front and
names the offending key, so a typo fails at start-up, not at the first alert.

Examples
--------
>>> policy = default_policy()
>>> policy.rollback.window_ms, [rule.name for rule in policy.rollback.rules]
(900000, ['named-trigger', 'critical-canary', 'multi-family-high'])
>>> parse_duration("90s"), parse_duration("2h")
(90000, 7200000)

Durations and instants are parsed, with bounds, by :mod:`monitor.durations`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from monitor.alerts import SEVERITIES, severity_rank
from monitor.durations import parse_duration, parse_instant
from monitor.errors import ConfigError
from monitor.yaml_files import parse_yaml_text, read_yaml

__all__ = [
    "AlertSettings", "MaintenanceWindow", "PagingBudget", "Policy", "RollbackRule", "RollbackSettings",
    "SeverityOverride", "default_policy", "load_policy", "parse_duration", "parse_instant",
]

MAX_COUNT = 1_000_000  # min_alerts / min_families: past this a rule can never fire


@dataclass(frozen=True)
class SeverityOverride:
    """Alerts matching every given field get ``severity``."""

    severity: str
    detector: str | None = None
    metric: str | None = None
    model_id: str | None = None

    def matches(self, detector: str, metric: str, model_id: str) -> bool:
        return ((self.detector is None or self.detector == detector)
                and (self.metric is None or self.metric == metric)
                and (self.model_id is None or self.model_id == model_id))


@dataclass(frozen=True)
class MaintenanceWindow:
    """A time range in which matching alerts are suppressed (stored, not notified)."""

    start_ms: int
    end_ms: int
    reason: str = "maintenance"
    model_id: str | None = None
    model_version: str | None = None
    detector: str | None = None

    def covers(self, ts_ms: int, model_id: str, model_version: str, detector: str) -> bool:
        return (self.start_ms <= ts_ms < self.end_ms
                and (self.model_id is None or self.model_id == model_id)
                and (self.model_version is None or self.model_version == model_version)
                and (self.detector is None or self.detector == detector))


@dataclass(frozen=True)
class EffectSize:
    """How large a change of one metric must be to matter (practical, not only statistical, significance).

    A distribution-only alert (change point, divergence) whose estimated change ``|after - before|``
    is under ``minimum`` is ``info``: stored, never a page, never rollback evidence. Under ``large`` it
    is at most the policy's ``cap``; from ``large`` on it keeps the detector's severity.
    """

    metric: str
    minimum: float
    large: float


@dataclass(frozen=True)
class PagingBudget:
    """How often statistical evidence may page about one model: ``high_per_week`` notified ``high`` alerts of
    ``families`` per model over any 7 days of event time. Past it, such an alert is *held*: stored and kept as
    evidence (incidents, rollback rules), not notified. Signatures, named motifs and probes are not in it:
    their pages are never held. ``None`` (the key absent): no budget.
    """

    high_per_week: int
    families: frozenset[str]


@dataclass(frozen=True)
class AlertSettings:
    dedup_window_ms: int = 600_000
    severity: tuple[SeverityOverride, ...] = ()
    suppress: tuple[MaintenanceWindow, ...] = ()
    #: The most a distribution-only alert is unless its change is large (see :class:`EffectSize`).
    distribution_cap: str = "medium"
    effects: tuple[EffectSize, ...] = ()
    #: A change point's level after its onset, measured over ``n`` events, counts ``n / (n + effect_events)``
    #: of its change: two refusals in four events are not a 50-point change yet.
    effect_events: int = 50
    paging_budget: PagingBudget | None = None


@dataclass(frozen=True)
class RollbackRule:
    """Recommend a rollback when, within the window, enough matching alerts arrived.

    An alert matches when its severity is at least ``min_severity`` and, if
    given, its detector is in ``detectors`` and its family in ``families``.
    The rule fires when the matching alerts number at least ``min_alerts``
    and come from at least ``min_families`` detector families, one of them
    in ``needs_families`` when that is given.
    """

    name: str
    description: str = ""
    min_severity: str = "high"
    detectors: frozenset[str] | None = None
    families: frozenset[str] | None = None
    min_alerts: int = 1
    min_families: int = 1
    #: If given, at least one matching alert must come from one of these families (behaviour evidence).
    needs_families: frozenset[str] | None = None


@dataclass(frozen=True)
class RollbackSettings:
    window_ms: int = 900_000
    rules: tuple[RollbackRule, ...] = ()


@dataclass(frozen=True)
class Policy:
    """The whole policy document, validated."""

    alerts: AlertSettings = field(default_factory=AlertSettings)
    incident_window_ms: int = 3_600_000
    rollback: RollbackSettings = field(default_factory=RollbackSettings)
    source: str = "<built-in>"


def default_policy() -> Policy:
    """The policy shipped in ``monitor/data/policy.yaml``."""
    text = resources.files("monitor.data").joinpath("policy.yaml").read_text(encoding="utf-8")
    return parse_policy(parse_yaml_text(text, "monitor/data/policy.yaml"), "monitor/data/policy.yaml")


def load_policy(path: str | Path | None) -> Policy:
    """Read and validate a policy file; ``None`` gives the default."""
    if path is None:
        return default_policy()
    return parse_policy(read_yaml(path, "policy"), str(path))


def _mapping(value: Any, where: str) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ConfigError(f"{where} must be a mapping; got {type(value).__name__}")
    return value


def _only(section: dict[str, Any], allowed: set[str], where: str) -> None:
    unknown = sorted(set(section) - allowed)
    if unknown:
        raise ConfigError(f"{where}: unknown key {unknown[0]!r}; expected one of {', '.join(sorted(allowed))}")


def _severity(value: Any, where: str) -> str:
    if value not in SEVERITIES:
        raise ConfigError(f"{where} must be one of {', '.join(SEVERITIES)}; got {value!r}")
    severity_rank(value)
    return str(value)


def _names(value: Any, where: str) -> frozenset[str] | None:
    if value is None:
        return None
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ConfigError(f"{where} must be a list of names; got {value!r}")
    return frozenset(value)


def _count(value: Any, where: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= MAX_COUNT:
        raise ConfigError(f"{where} must be an integer >= 1 and <= {MAX_COUNT:,}; got {value!r}")
    return value


def _distribution(section: dict[str, Any], where: str) -> tuple[str, tuple[EffectSize, ...], int]:
    """The ``alerts.distribution`` section: ``cap``, ``effect_events`` and ``effect: {metric: {min, large}}``."""
    _only(section, {"cap", "effect", "effect_events"}, where)
    cap = _severity(section.get("cap", "medium"), f"{where}.cap")
    effect_events = section.get("effect_events", AlertSettings.effect_events)
    if not isinstance(effect_events, int) or isinstance(effect_events, bool) or not 0 <= effect_events <= MAX_COUNT:
        raise ConfigError(f"{where}.effect_events must be an integer >= 0 and <= {MAX_COUNT:,} (events); "
                          f"got {effect_events!r}")
    effects = []
    for metric, entry in _mapping(section.get("effect"), f"{where}.effect").items():
        at = f"{where}.effect.{metric}"
        entry = _mapping(entry, at)
        _only(entry, {"min", "large"}, at)
        minimum, large = (_non_negative(entry.get(k, 0.0), f"{at}.{k}") for k in ("min", "large"))
        if large < minimum:
            raise ConfigError(f"{at}: large must be >= min; got {large!r} < {minimum!r}")
        effects.append(EffectSize(str(metric), minimum, large))
    return cap, tuple(effects), effect_events


def _non_negative(value: Any, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 <= value < float("inf"):
        raise ConfigError(f"{where} must be a number >= 0; got {value!r}")
    return float(value)


def parse_policy(document: Any, where: str) -> Policy:
    """Validate a parsed policy document."""
    root = _mapping(document, where)
    _only(root, {"alerts", "incidents", "rollback"}, where)
    alerts = _mapping(root.get("alerts"), f"{where}: alerts")
    _only(alerts, {"dedup_window", "severity", "suppress", "distribution", "paging_budget"}, f"{where}: alerts")
    overrides = []
    for index, entry in enumerate(alerts.get("severity") or []):
        at = f"{where}: alerts.severity[{index}]"
        entry = _mapping(entry, at)
        _only(entry, {"match", "severity"}, at)
        match = _mapping(entry.get("match"), f"{at}.match")
        _only(match, {"detector", "metric", "model_id"}, f"{at}.match")
        overrides.append(SeverityOverride(severity=_severity(entry.get("severity"), f"{at}.severity"),
                                          **{k: str(v) for k, v in match.items()}))
    windows = []
    for index, entry in enumerate(alerts.get("suppress") or []):
        at = f"{where}: alerts.suppress[{index}]"
        entry = _mapping(entry, at)
        _only(entry, {"start", "end", "reason", "model_id", "model_version", "detector"}, at)
        start, end = parse_instant(entry.get("start"), where=f"{at}.start"), parse_instant(entry.get("end"),
                                                                                             where=f"{at}.end")
        if end <= start:
            raise ConfigError(f"{at}: end must be after start; got {entry.get('start')!r} .. {entry.get('end')!r}")
        windows.append(MaintenanceWindow(
            start_ms=start, end_ms=end, reason=str(entry.get("reason", "maintenance")),
            **{k: str(entry[k]) for k in ("model_id", "model_version", "detector") if k in entry}))
    cap, effects, effect_events = _distribution(_mapping(alerts.get("distribution"), f"{where}: alerts.distribution"),
                                 f"{where}: alerts.distribution")
    budget = None
    if alerts.get("paging_budget") is not None:
        at = f"{where}: alerts.paging_budget"
        section = _mapping(alerts["paging_budget"], at)
        _only(section, {"high_per_model_week", "families"}, at)
        families = _names(section.get("families"), f"{at}.families")
        if not families:
            raise ConfigError(f"{at}.families must name at least one detector family; got {section.get('families')!r}")
        budget = PagingBudget(_count(section.get("high_per_model_week"), f"{at}.high_per_model_week"), families)
    incidents = _mapping(root.get("incidents"), f"{where}: incidents")
    _only(incidents, {"window"}, f"{where}: incidents")
    rollback = _mapping(root.get("rollback"), f"{where}: rollback")
    _only(rollback, {"window", "rules"}, f"{where}: rollback")
    rules = []
    for index, entry in enumerate(rollback.get("rules") or []):
        at = f"{where}: rollback.rules[{index}]"
        entry = _mapping(entry, at)
        _only(entry, {"name", "description", "min_severity", "detectors", "families", "min_alerts",
                      "min_families", "needs_families"}, at)
        if not entry.get("name"):
            raise ConfigError(f"{at}: needs a name")
        rules.append(RollbackRule(
            name=str(entry["name"]), description=str(entry.get("description", "")),
            min_severity=_severity(entry.get("min_severity", "high"), f"{at}.min_severity"),
            detectors=_names(entry.get("detectors"), f"{at}.detectors"),
            families=_names(entry.get("families"), f"{at}.families"),
            min_alerts=_count(entry.get("min_alerts", 1), f"{at}.min_alerts"),
            min_families=_count(entry.get("min_families", 1), f"{at}.min_families"),
            needs_families=_names(entry.get("needs_families"), f"{at}.needs_families"),
        ))
    names = [rule.name for rule in rules]
    if len(set(names)) != len(names):
        raise ConfigError(f"{where}: rollback rule names must be unique; got {names}")
    return Policy(
        alerts=AlertSettings(
            dedup_window_ms=parse_duration(alerts.get("dedup_window", "10m"), where=f"{where}: alerts.dedup_window"),
            severity=tuple(overrides), suppress=tuple(windows), distribution_cap=cap, effects=effects,
            effect_events=effect_events, paging_budget=budget),
        incident_window_ms=parse_duration(incidents.get("window", "1h"), where=f"{where}: incidents.window"),
        rollback=RollbackSettings(
            window_ms=parse_duration(rollback.get("window", "15m"), where=f"{where}: rollback.window"),
            rules=tuple(rules)),
        source=where,
    )
