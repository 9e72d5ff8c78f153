"""Health and consumer-lag samples of one worker, written to ``service_metrics``."""

from __future__ import annotations

import time
from collections.abc import Mapping

from monitor.storage.rows import ServiceMetric
from monitor.storage.sink import ClickHouseSink

__all__ = ["HealthSampler"]


class HealthSampler:
    """Builds health samples: event rate since the last sample, sink state, dead letters and lag.

    Parameters
    ----------
    worker_id
        Names the worker in every sample.
    sink
        The worker's sink: its buffer and retries are sampled, and the samples go into it.
    counts
        The worker's running counts (``events``, ``dead_letters``), read at each sample.
    """

    def __init__(self, worker_id: str, sink: ClickHouseSink, counts: Mapping[str, int]) -> None:
        self.worker_id = worker_id
        self.sink = sink
        self.counts = counts
        self._sampled = (time.monotonic(), 0)

    def sample(self, highwaters: Mapping[tuple[str, int], int],
               last_offsets: Mapping[tuple[str, int], int]) -> list[ServiceMetric]:
        """One health sample (buffered into ``service_metrics`` with the next flush)."""
        now_ms = int(time.time() * 1000)
        started, seen = self._sampled
        elapsed = max(time.monotonic() - started, 1e-9)
        self._sampled = (time.monotonic(), self.counts["events"])
        worker = self.worker_id
        samples = [
            ServiceMetric(now_ms, worker, "events_per_s", (self.counts["events"] - seen) / elapsed),
            ServiceMetric(now_ms, worker, "sink_buffered_rows", float(self.sink.buffered)),
            ServiceMetric(now_ms, worker, "sink_retries", float(self.sink.retries)),
            ServiceMetric(now_ms, worker, "dead_letters", float(self.counts["dead_letters"])),
            ServiceMetric(now_ms, worker, "publish_failures", float(self.counts.get("publish_failures", 0))),
        ]
        for (topic, partition), offset in sorted(last_offsets.items()):
            high = highwaters.get((topic, partition))
            if high is not None:
                samples.append(ServiceMetric(now_ms, worker, "consumer_lag", float(max(high - offset - 1, 0)),
                                             topic=topic, partition=partition))
        if self.sink.buffered + len(samples) <= self.sink.max_rows:
            self.sink.add_service_metrics(samples)
        return samples
