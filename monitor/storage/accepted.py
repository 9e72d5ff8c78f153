"""The change-point alerts accepted in the store: what the drift stage reads from ``acknowledgements``.

What counts as accepted, from the store alone (so a replay, a restarted
worker and the live one read the same set from the same rows), taking each
target's newest acknowledgement row (the table is newest-wins):

* a ``changepoint`` alert whose own state is ``acknowledged`` or ``resolved``;
* a ``changepoint`` alert of an incident in one of those states, raised (the
  alert's event time ``ts``) no later than the incident's acknowledgement (its
  wall-clock ``updated_at``): a change that joins the incident's window after
  it was acknowledged is news. In a live stream event time is about wall
  time; a replay of past events puts every alert of the window before the
  acknowledgement, so there acknowledge the alert itself to accept only it.

``suppressed`` (a maintenance window's, written by the policy) and ``open``
(reopened) accept nothing.

Examples
--------
>>> ACCEPTING_STATES
('acknowledged', 'resolved')
"""

from __future__ import annotations

from collections.abc import Hashable

from monitor.storage.store import Store

__all__ = ["ACCEPTING_STATES", "TableAccepted", "accepted_alert_ids"]

#: Acknowledgement states that accept a change (``suppressed`` is the maintenance policy's, not an analyst's).
ACCEPTING_STATES = ("acknowledged", "resolved")


def accepted_alert_ids(store: Store) -> frozenset[str]:
    """The ids of the change-point alerts accepted in ``store`` (see the module docstring)."""
    # argMax over the rows, not FINAL plus a WHERE on state: the newest row decides even before a merge.
    _, acks = store.query(
        "SELECT target_kind, target_id, toUnixTimestamp64Milli(max(updated_at)) FROM acknowledgements "
        "WHERE target_kind IN ('alert', 'incident') GROUP BY target_kind, target_id "
        "HAVING argMax(state, updated_at) IN {states:Array(String)}",
        final=False, parameters={"states": list(ACCEPTING_STATES)})
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


class TableAccepted:
    """The ``acknowledgements`` table of the store at ``dsn``; each poll opens a client and closes it again.

    Its fingerprint is the table's row count and newest ``updated_at``: every
    ``driftwatch ack`` adds a row. The drift stage gets one only when
    ``drift_acknowledgements`` is on (:mod:`monitor.registry`).

    Examples
    --------
    >>> TableAccepted("chdb:///tmp/dw").dsn
    'chdb:///tmp/dw'
    """

    def __init__(self, dsn: str) -> None:
        self.dsn = dsn

    def fingerprint(self) -> Hashable:
        with Store(self.dsn) as store:
            _, rows = store.query("SELECT count(), max(updated_at) FROM acknowledgements", final=False)
            return tuple(rows[0]) if rows else ()

    def load(self) -> frozenset[str]:
        with Store(self.dsn) as store:
            return accepted_alert_ids(store)
