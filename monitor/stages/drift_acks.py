"""Acknowledged change points in the running drift stage: the episode ends, its level is the new reference.

An analyst who acknowledges (or resolves) a change-point alert, or its
incident, accepts the change. :class:`EpisodeAcknowledgements` reads which
alerts are accepted from an :class:`~monitor.accepted_changes.AcceptedSource`
(in a worker or a replay the store's ``acknowledgements`` table,
:class:`~monitor.storage.accepted.TableAccepted`) at most every
``reload_seconds``, before a batch, as the signature stage reads its table.
An open episode whose alert is accepted then closes
(:meth:`~monitor.stages.drift_episodes.Episode.acknowledge`: a last revision,
``state: "acknowledged"``, ``active: false``) and its level becomes the
metric's :class:`~monitor.stages.drift_episodes.Accepted` level.

Where in the stream that happens:

* an episode open when the stage learns of the acknowledgement closes before
  its stream's next batch (``acknowledged_index`` in the evidence says at
  which update): how soon depends on when the stage read the table, at most
  ``reload_seconds`` after it was written, plus the time to the next batch;
* an episode whose alert is accepted already when it opens (a replay of events
  whose alerts an analyst acknowledged) closes at once, at its first alarm.

So the same events with the same acknowledgements in the store give the same
alerts, in any batching and across a snapshot and restore: the closed episode
and the accepted level are part of the stream's snapshot.

Examples
--------
>>> from monitor.accepted_changes import StaticAccepted
>>> acks = EpisodeAcknowledgements(StaticAccepted({"a1"}), reload_seconds=30)
>>> acks.refresh(), acks.is_accepted("a1"), acks.refresh()
(True, True, False)
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable

from monitor.accepted_changes import AcceptedChanges, AcceptedSource
from monitor.alerts import Alert
from monitor.stages.drift_episodes import Accepted
from monitor.stages.drift_stream import StreamState

__all__ = ["EpisodeAcknowledgements", "accept"]

logger = logging.getLogger(__name__)


def accept(stream: StreamState, metric: str, ts_ms: int) -> Alert:
    """Close ``stream``'s open episode of ``metric`` as acknowledged; its level is the accepted one from now on."""
    episode = stream.episodes.pop(metric)
    update = episode.acknowledge(ts_ms=ts_ms, index=stream.count)
    stream.accepted[metric] = Accepted(level=episode.level, baseline=episode.baseline)
    alert = episode.alert
    logger.info("changepoint alert acknowledged model=%s version=%s metric=%s revision=%d level=%.6g",
                alert.model_id, alert.model_version, metric, update.revision, episode.level)
    return update


class EpisodeAcknowledgements:
    """The accepted alert ids the drift stage acts on, read again at most every ``reload_seconds``.

    Parameters
    ----------
    source
        Where acknowledgements come from; ``None``: nowhere (no episode is ever acknowledged).
    reload_seconds
        Poll the source at most this often; 0 polls before every batch.
    clock
        Monotonic seconds (tests pass a fake one).
    """

    def __init__(self, source: AcceptedSource | None, *, reload_seconds: float,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._changes = AcceptedChanges(source) if source is not None else None
        self.reload_seconds = reload_seconds
        self.clock = clock
        self.accepted: frozenset[str] = frozenset()
        self._checked_at = -math.inf

    def refresh(self) -> bool:
        """Read the source again if due; return whether the accepted set changed."""
        if self._changes is None:
            return False
        now = self.clock()
        if now - self._checked_at < self.reload_seconds:
            return False
        self._checked_at = now
        accepted = self._changes.poll()
        if accepted is None or accepted == self.accepted:
            return False
        self.accepted = accepted
        return True

    def is_accepted(self, alert_id: str) -> bool:
        return alert_id in self.accepted

    def close_accepted(self, stream: StreamState, ts_ms: int) -> list[Alert]:
        """The last revisions of ``stream``'s open episodes whose alerts are accepted, closing them at ``ts_ms``."""
        if not self.accepted or not stream.episodes:
            return []
        return [accept(stream, metric, ts_ms) for metric, episode in sorted(stream.episodes.items())
                if episode.alert.alert_id in self.accepted]
