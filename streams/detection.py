"""The detectors in one child process of the worker, so detection and Kafka use two cores.

:class:`ProcessPipeline` is a :class:`~monitor.pipeline.Pipeline` whose stages
live in a single child process (a standard-library
:class:`~concurrent.futures.ProcessPoolExecutor` of one, started with
``spawn``: the worker has threads, so no fork). State ownership is
unchanged: the child holds every model's detector state as the in-process
pipeline would, the worker still decides what to feed, snapshot, restore and
forget, and one process runs the calls in the order they were made. Only the
events go in and the findings come out (pickled), plus snapshots at
checkpoints and restores.

:meth:`ProcessPipeline.process_async` lets the event loop go on (Faust
fetches, acknowledges and builds the next batch) while the child detects;
:class:`~streams.worker.StreamWorker` keeps at most one batch in detection.
A child that dies raises :class:`~concurrent.futures.process.BrokenProcessPool`
from every call: the worker stops, and its successor resumes from the
checkpoints (nothing unacknowledged is lost).
"""

from __future__ import annotations

import asyncio
import multiprocessing
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from typing import Any

from monitor.alerts import Findings
from monitor.events import Event
from monitor.pipeline import Pipeline, StreamKey
from monitor.registry import build_pipeline
from monitor.settings import Settings

__all__ = ["ProcessPipeline"]

_pipeline: Pipeline | None = None


def _start(settings: Settings, detectors: bool) -> None:
    global _pipeline
    _pipeline = build_pipeline(settings, detectors=detectors)


def _ready() -> bool:
    return _pipeline is not None


def _call(method: str, *args: Any) -> Any:
    if _pipeline is None:
        raise RuntimeError("the detection process has no pipeline")
    return getattr(_pipeline, method)(*args)


class ProcessPipeline(Pipeline):
    """The registry's pipeline for ``settings``, run in one child process (see the module docstring)."""

    def __init__(self, settings: Settings, *, detectors: bool = True) -> None:
        super().__init__(())
        self._pool = ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn"),
                                         initializer=_start, initargs=(settings, detectors))
        self._pool.submit(_ready).result()  # started, or the error it raised

    def _run(self, method: str, *args: Any) -> Any:
        return self._pool.submit(_call, method, *args).result()

    def process(self, events: Sequence[Event]) -> Findings:
        self.keys |= {event.key for event in events}
        findings: Findings = self._run("process", list(events))
        return findings

    async def process_async(self, events: Sequence[Event]) -> Findings:
        """:meth:`process`, awaited: the event loop runs while the child detects."""
        self.keys |= {event.key for event in events}
        future = self._pool.submit(_call, "process", list(events))
        findings: Findings = await asyncio.wrap_future(future)
        return findings

    def snapshot(self, key: StreamKey) -> dict[str, Any]:
        state: dict[str, Any] = self._run("snapshot", key)
        return state

    def restore(self, key: StreamKey, state: dict[str, Any]) -> None:
        self._run("restore", key, state)
        self.keys.add(key)

    def forget(self, key: StreamKey) -> None:
        self._run("forget", key)
        self.keys.discard(key)

    @property
    def pid(self) -> int | None:
        """The child's process id (the benchmark adds its memory to the worker's)."""
        processes = list(getattr(self._pool, "_processes", {}) or {})
        return processes[0] if processes else None

    def close(self) -> None:
        """Stop the child (state not checkpointed is lost, as with the worker process)."""
        self._pool.shutdown(wait=True, cancel_futures=True)
