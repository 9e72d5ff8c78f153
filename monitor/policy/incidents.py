"""Incidents: related alerts grouped, one per model version, family and window.

Windows are tumbling and aligned to the epoch (``window_start = ts - ts %
window``), so two workers, or a replay and the stream, put an alert in the
same incident without talking to each other: the incident id is a hash of
(model, version, family, window start). Writing an incident merges its alert
ids with the stored row's, and the newest row wins (``ReplacingMergeTree``
on ``updated_at``). An incident keeps at most ``MAX_ALERT_IDS`` alert ids;
``alert_count`` keeps counting past that.

Acknowledgement state (``open``, ``acknowledged``, ``resolved``,
``suppressed``) lives in the ``acknowledgements`` table, one row per target,
newest wins; an incident with no row is ``open``.

Examples
--------
>>> from monitor.alerts import Alert
>>> alerts = [Alert.create(ts_ms=t, model_id="m", model_version="1", detector=d, metric="x",
...                        severity="high", score=1, threshold=1, evidence={}, discriminator=str(t))
...           for t, d in [(1_000, "trigger"), (2_000, "canary"), (5_000, "changepoint")]]
>>> [(i.family, i.alert_count) for i in group_incidents(alerts, window_ms=3_600_000)]
[('distribution', 1), ('signature', 2)]
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Literal

from monitor.alerts import Alert, severity_rank, stable_id
from monitor.errors import ConfigError, UnknownTargetError
from monitor.policy.families import family_of
from monitor.storage.store import Store
from monitor.storage.tables import TABLES

__all__ = [
    "ACK_STATES",
    "MAX_ALERT_IDS",
    "Incident",
    "UnknownTargetError",
    "ack_states",
    "acknowledge",
    "group_incidents",
    "record_suppressed",
    "upsert_incidents",
]

MAX_ALERT_IDS = 1000
AckState = Literal["open", "acknowledged", "resolved", "suppressed"]
ACK_STATES: tuple[str, ...] = ("open", "acknowledged", "resolved", "suppressed")
TargetKind = Literal["alert", "incident", "rollback"]
# Where each kind of acknowledgement target lives: (table, id column). Fixed names, never user input.
TARGET_TABLES = {"alert": ("alerts", "alert_id"), "incident": ("incidents", "incident_id"),
                 "rollback": ("rollback_decisions", "decision_id")}
INCIDENT_COLUMNS = TABLES["incidents"].column_names  # updated_at is written, so a re-upsert wins


@dataclass(frozen=True)
class Incident:
    """One incident row."""

    incident_id: str
    model_id: str
    model_version: str
    family: str
    severity: str
    window_start_ms: int
    window_end_ms: int
    first_ts_ms: int
    last_ts_ms: int
    alert_count: int
    alert_ids: tuple[str, ...]

    def merged(self, other: Incident) -> Incident:
        """This incident with ``other``'s alerts (same id) added."""
        ids = tuple(sorted(set(self.alert_ids) | set(other.alert_ids)))
        # Exact while both id lists are complete; past the cap, ids we no longer hold may repeat, so the
        # count is an upper bound (the shared ids we can see are not counted twice).
        complete = len(self.alert_ids) == self.alert_count and len(other.alert_ids) == other.alert_count
        shared = len(set(self.alert_ids) & set(other.alert_ids))
        count = len(ids) if complete else self.alert_count + other.alert_count - shared
        severity = max(self.severity, other.severity, key=severity_rank)
        return Incident(self.incident_id, self.model_id, self.model_version, self.family, severity,
                        self.window_start_ms, self.window_end_ms, min(self.first_ts_ms, other.first_ts_ms),
                        max(self.last_ts_ms, other.last_ts_ms), count, ids[:MAX_ALERT_IDS])


def incident_id(model_id: str, model_version: str, family: str, window_start_ms: int) -> str:
    return stable_id("incident", model_id, model_version, family, window_start_ms)


def group_incidents(alerts: Iterable[Alert], *, window_ms: int) -> list[Incident]:
    """Group alerts into incidents, sorted by (model, version, family, window)."""
    if window_ms <= 0:
        raise ConfigError(f"incident window must be > 0 ms; got {window_ms!r}")
    groups: dict[tuple[str, str, str, int], list[Alert]] = {}
    for alert in alerts:
        start = alert.ts_ms - alert.ts_ms % window_ms
        groups.setdefault((alert.model_id, alert.model_version, family_of(alert.detector), start), []).append(alert)
    incidents = []
    for (model_id, version, family, start), members in sorted(groups.items()):
        ids = sorted({a.alert_id for a in members})
        incidents.append(Incident(
            incident_id=incident_id(model_id, version, family, start), model_id=model_id,
            model_version=version, family=family,
            severity=max((a.severity for a in members), key=severity_rank),
            window_start_ms=start, window_end_ms=start + window_ms,
            first_ts_ms=min(a.ts_ms for a in members), last_ts_ms=max(a.ts_ms for a in members),
            alert_count=len(ids), alert_ids=tuple(ids[:MAX_ALERT_IDS]),
        ))
    return incidents


def upsert_incidents(store: Store, incidents: Sequence[Incident]) -> list[Incident]:
    """Merge ``incidents`` with their stored rows and write them; return what was written."""
    if not incidents:
        return []
    _, rows = store.query(
        "SELECT incident_id, model_id, model_version, family, severity, toUnixTimestamp64Milli(window_start), "
        "toUnixTimestamp64Milli(window_end), toUnixTimestamp64Milli(first_ts), toUnixTimestamp64Milli(last_ts), "
        "alert_count, alert_ids FROM incidents WHERE incident_id IN {ids:Array(String)}",
        readonly=False, parameters={"ids": [i.incident_id for i in incidents]})
    stored = {row[0]: Incident(row[0], row[1], row[2], row[3], row[4], int(row[5]), int(row[6]), int(row[7]),
                               int(row[8]), int(row[9]), tuple(row[10])) for row in rows}
    written = [stored[i.incident_id].merged(i) if i.incident_id in stored else i for i in incidents]
    now = int(time.time() * 1000)
    store.insert("incidents", [
        [i.incident_id for i in written], [i.model_id for i in written], [i.model_version for i in written],
        [i.family for i in written], [i.severity for i in written], [i.window_start_ms for i in written],
        [i.window_end_ms for i in written], [i.first_ts_ms for i in written], [i.last_ts_ms for i in written],
        [i.alert_count for i in written], [list(i.alert_ids) for i in written], [now] * len(written),
    ], INCIDENT_COLUMNS)
    return written


def acknowledge(store: Store, target_id: str, *, kind: TargetKind, state: AckState, actor: str,
                note: str = "") -> None:
    """Record the acknowledgement state of an alert, incident or rollback decision.

    Raises :class:`UnknownTargetError` when the store holds no such target, so a
    typo'd id is not recorded as acknowledged.
    """
    if state not in ACK_STATES:
        raise ConfigError(f"state must be one of {', '.join(ACK_STATES)}; got {state!r}")
    if kind not in ("alert", "incident", "rollback"):
        raise ConfigError(f"target kind must be alert, incident or rollback; got {kind!r}")
    if not target_id or not actor:
        raise ConfigError(f"acknowledgement needs a target id and an actor; got {target_id!r}, {actor!r}")
    table, column = TARGET_TABLES[kind]
    _, rows = store.query(f"SELECT 1 FROM {table} WHERE {column} = {{id:String}} LIMIT 1",
                          parameters={"id": target_id})
    if not rows:
        raise UnknownTargetError(f"no {kind} with id {target_id!r} in {table}; "
                                 f"(`driftwatch incidents` and `driftwatch rollback-status` list the ids)")
    store.insert("acknowledgements", [[target_id], [kind], [state], [actor], [note], [int(time.time() * 1000)]],
                 ("target_id", "target_kind", "state", "actor", "note", "updated_at"))


def record_suppressed(store: Store, suppressed: Sequence[tuple[Alert, object]]) -> None:
    """Mark alerts suppressed by a maintenance window as such, in one insert."""
    # Only alerts nobody has touched: a replay must not overwrite an analyst's later state.
    states = ack_states(store, [a.alert_id for a, _ in suppressed], kind="alert")
    suppressed = [(a, w) for a, w in suppressed if states[a.alert_id] == "open"]
    if not suppressed:
        return
    now = int(time.time() * 1000)
    store.insert("acknowledgements", [
        [a.alert_id for a, _ in suppressed], ["alert"] * len(suppressed), ["suppressed"] * len(suppressed),
        ["policy"] * len(suppressed), [str(getattr(w, "reason", "maintenance")) for _, w in suppressed],
        [now] * len(suppressed),
    ], ("target_id", "target_kind", "state", "actor", "note", "updated_at"))


def ack_states(store: Store, target_ids: Sequence[str], *, kind: TargetKind) -> dict[str, str]:
    """Current state per target id; ids with no row are ``open``."""
    if not target_ids:
        return {}
    _, rows = store.query(
        "SELECT target_id, argMax(state, updated_at) FROM acknowledgements "
        "WHERE target_kind = {kind:String} AND target_id IN {ids:Array(String)} GROUP BY target_id",
        parameters={"kind": kind, "ids": list(target_ids)})
    states = dict.fromkeys(target_ids, "open")
    states.update({row[0]: row[1] for row in rows})
    return states
