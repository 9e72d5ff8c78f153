"""Which change-point alerts an analyst has accepted, read from the store for the running drift stage.

An analyst acknowledging (or resolving) a change-point alert, or the incident
holding it (``driftwatch ack``, :func:`monitor.policy.incidents.acknowledge`),
accepts the change: the drift stage ends the episode and takes its level as
the stream's new reference (:mod:`monitor.stages.drift_acks`). This module
is how the stage learns of it, the way the signature stage learns of new
signatures (:mod:`monitor.signature_registry`): a source with a cheap
``fingerprint`` (the ``acknowledgements`` table's row count and newest
``updated_at``), polled at most every ``drift_acknowledgement_reload_s``
seconds, and read again only when it changed.

What counts as accepted, from the store alone (so a replay, a restarted
worker and the live one read the same set from the same rows):

* a ``changepoint`` alert whose own state is ``acknowledged`` or ``resolved``;
* a ``changepoint`` alert of an incident in one of those states, raised (event
  time ``ts``) no later than the incident's acknowledgement: a change that
  joins the incident's window after it was acknowledged is news.

Examples
--------
>>> accepted = AcceptedChanges(StaticAccepted({"a1"}))
>>> sorted(accepted.poll()), accepted.poll()
(['a1'], None)
"""

from __future__ import annotations

import logging
from collections.abc import Hashable, Iterable
from typing import Protocol

from monitor.errors import DriftwatchError
from monitor.storage.store import Store

__all__ = ["ACCEPTING_STATES", "AcceptedChanges", "AcceptedSource", "StaticAccepted", "TableAccepted",
           "accepted_alert_ids"]

logger = logging.getLogger(__name__)

#: Acknowledgement states that accept a change (``suppressed`` is the maintenance policy's, not an analyst's).
ACCEPTING_STATES = ("acknowledged", "resolved")


def accepted_alert_ids(store: Store) -> frozenset[str]:
    """The ids of the change-point alerts accepted in ``store`` (see the module docstring)."""
    _, acks = store.query(
        "SELECT target_kind, target_id, toUnixTimestamp64Milli(updated_at) FROM acknowledgements "
        "WHERE target_kind IN ('alert', 'incident') AND state IN {states:Array(String)}",
        parameters={"states": list(ACCEPTING_STATES)})
    direct = {target for kind, target, _ in acks if kind == "alert"}
    incident_acks = {target: int(at) for kind, target, at in acks if kind == "incident"}
    covered: dict[str, int] = {}  # alert id -> the latest acknowledgement of an incident holding it
    if incident_acks:
        _, rows = store.query("SELECT incident_id, alert_ids FROM incidents WHERE incident_id IN {ids:Array(String)}",
                              parameters={"ids": sorted(incident_acks)})
        for incident, alert_ids in rows:
            for alert_id in alert_ids:
                covered[alert_id] = max(covered.get(alert_id, 0), incident_acks[incident])
    candidates = direct | set(covered)
    if not candidates:
        return frozenset()
    _, rows = store.query(
        "SELECT alert_id, toUnixTimestamp64Milli(ts) FROM alerts "
        "WHERE detector = 'changepoint' AND alert_id IN {ids:Array(String)}",
        parameters={"ids": sorted(candidates)})
    return frozenset(alert_id for alert_id, ts in rows
                     if alert_id in direct or int(ts) <= covered.get(alert_id, -1))


class AcceptedSource(Protocol):
    def fingerprint(self) -> Hashable: ...

    def load(self) -> frozenset[str]: ...


class StaticAccepted:
    """A fixed set of accepted alert ids (tests, and a pipeline without a store)."""

    def __init__(self, alert_ids: Iterable[str] = ()) -> None:
        self.alert_ids = frozenset(alert_ids)

    def fingerprint(self) -> Hashable:
        return self.alert_ids

    def load(self) -> frozenset[str]:
        return self.alert_ids


class TableAccepted:
    """The ``acknowledgements`` table of the store at ``dsn``; each poll opens a client and closes it again."""

    def __init__(self, dsn: str) -> None:
        self.dsn = dsn

    def fingerprint(self) -> Hashable:
        with Store(self.dsn) as store:
            _, rows = store.query("SELECT count(), max(updated_at) FROM acknowledgements", final=False)
            return tuple(rows[0]) if rows else ()

    def load(self) -> frozenset[str]:
        with Store(self.dsn) as store:
            return accepted_alert_ids(store)


class AcceptedChanges:
    """The accepted alert ids of one source, read again when its fingerprint changes."""

    def __init__(self, source: AcceptedSource) -> None:
        self.source = source
        self._fingerprint: Hashable = None
        self._loaded = False

    def poll(self) -> frozenset[str] | None:
        """The accepted ids if the source changed since the last poll, else ``None``.

        An unreadable source (the store down, the schema not there yet) keeps
        what was read last, with a warning: acknowledgements then arrive late,
        never wrong.
        """
        try:
            fingerprint = self.source.fingerprint()
            if self._loaded and fingerprint == self._fingerprint:
                return None
            accepted = self.source.load()
        except DriftwatchError as exc:
            logger.warning("acknowledgements unreadable, keeping the last set source=%s reason=%s",
                           type(self.source).__name__, exc)
            return None
        self._fingerprint, self._loaded = fingerprint, True
        return accepted
