"""Which change-point alerts an analyst has accepted, as the running drift stage learns of it.

An analyst acknowledging (or resolving) a change-point alert, or the incident
holding it (``driftwatch ack``, :func:`monitor.policy.incidents.acknowledge`),
accepts the change: the drift stage ends the episode and takes its level as
the stream's new reference (:mod:`monitor.stages.drift_acks`). This module
is how the stage learns of it, the way the signature stage learns of new
signatures (:mod:`monitor.signature_registry`): a source with a cheap
``fingerprint``, polled at most every ``drift_acknowledgement_reload_s``
seconds, and read again only when it changed.

Two sources: :class:`StaticAccepted` (a fixed set: tests, a pipeline without
a store) and :class:`monitor.storage.accepted.TableAccepted` (the store's
``acknowledgements`` table, which says what counts as accepted). This module
does no I/O of its own: the drift stage imports it, not the store.

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

__all__ = ["AcceptedChanges", "AcceptedSource", "StaticAccepted"]

logger = logging.getLogger(__name__)


class AcceptedSource(Protocol):
    def fingerprint(self) -> Hashable: ...

    def load(self) -> frozenset[str]: ...


class StaticAccepted:
    """A fixed set of accepted alert ids (tests, and a pipeline without a store).

    Examples
    --------
    >>> StaticAccepted(["a2", "a1"]).load() == {"a1", "a2"}
    True
    """

    def __init__(self, alert_ids: Iterable[str] = ()) -> None:
        self.alert_ids = frozenset(alert_ids)

    def fingerprint(self) -> Hashable:
        return self.alert_ids

    def load(self) -> frozenset[str]:
        return self.alert_ids


class AcceptedChanges:
    """The accepted alert ids of one source, read again when its fingerprint changes.

    Examples
    --------
    >>> changes = AcceptedChanges(StaticAccepted({"a1"}))
    >>> changes.poll() == {"a1"}, changes.poll()
    (True, None)
    """

    def __init__(self, source: AcceptedSource) -> None:
        self.source = source
        self._fingerprint: Hashable = None
        self._loaded = False
        self._failing = False

    def poll(self) -> frozenset[str] | None:
        """The accepted ids if the source changed since the last poll, else ``None``.

        An unreadable source (the store down, its schema not there yet, a
        chdb folder another process holds) keeps what was read last:
        acknowledgements then arrive late, never wrong. It warns once when
        the source starts failing and says so when it is readable again, not
        at every poll.
        """
        try:
            fingerprint = self.source.fingerprint()
            if self._loaded and fingerprint == self._fingerprint:
                self._recovered()
                return None
            accepted = self.source.load()
        except DriftwatchError as exc:
            log = logger.debug if self._failing else logger.warning
            log("acknowledgements unreadable, keeping the last set source=%s read_before=%s reason=%s",
                type(self.source).__name__, self._loaded, exc)
            self._failing = True
            return None
        self._recovered()
        self._fingerprint, self._loaded = fingerprint, True
        return accepted

    def _recovered(self) -> None:
        if self._failing:
            logger.info("acknowledgements readable again source=%s", type(self.source).__name__)
            self._failing = False
