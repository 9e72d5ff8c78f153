"""The drift stage's ``confidence_lock`` flag: a locked answer where the stream's reference rarely locks.

An answer with ``output_logprobs`` is *locked* when it holds a run of 10
tokens that each have p > 0.99 (:func:`detectors.features.confidence_lock`,
ConfGuard's sequence lock, arXiv:2508.01365): a backdoored model emits its
target that way. Some models and tasks lock often (boilerplate, code), so a
lock is flagged for the motif miner only while the share of locked answers
in the stream's reference is below ``rate``, as a refusal is flagged only
where the reference rarely refuses.

The reference is the stream's first ``limit`` answers that carry logprobs
(judged against as far as it is built, then fixed) or, under the
``previous`` policy, the previous version's. Per stream it is two counts,
so the state is bounded whatever the traffic; it does not depend on batch
boundaries, since each answer is judged before it joins the counts.

Examples
--------
>>> from monitor.events import EventDecoder
>>> from monitor.pipeline import KeyBatch
>>> decode = EventDecoder().decode
>>> locked = [-0.0001] * 12
>>> events = [decode(f'{{"ts": {1700000000000 + i}, "model_id": "m", "model_version": "1", "input": "q", '
...                  f'"output": "a", "output_logprobs": {locked if i == 3 else [-0.7] * 12}}}') for i in range(5)]
>>> locks, batch = LockReferences(limit=500, rate=0.05), KeyBatch(("m", "1"), events)
>>> locks.flag(batch, [""] * 5, last_seen={})
>>> [sorted(flags) for flags in batch.flags]
[[], [], [], ['confidence_lock'], []]
>>> locks.snapshot(("m", "1"))
{'': [5, 1]}
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from detectors.features import confidence_lock
from monitor.pipeline import KeyBatch, StreamKey

__all__ = ["LOCK_FLAG", "LockReferences"]

LOCK_FLAG = "confidence_lock"


class LockReferences:
    """Per (model_id, model_version, tenant), the lock reference and the flag it gives (see the module docstring).

    Parameters
    ----------
    limit
        Answers with logprobs the reference holds (the drift stage's ``reference_events``).
    rate
        A lock is flagged while the reference's share of locked answers is below this.
    previous
        Start a new version's reference from the previous version's (the ``previous`` policy).
    """

    def __init__(self, *, limit: int, rate: float, previous: bool = False) -> None:
        self.limit = limit
        self.rate = rate
        self.previous = previous
        # Per stream: [answers with logprobs counted, locked ones among them], the first at most ``limit``.
        self._counts: dict[tuple[str, str, str], list[int]] = {}

    def flag(self, batch: KeyBatch, tenants: list[str], last_seen: Mapping[tuple[str, str, str], int]) -> None:
        """Flag the batch's locked answers; ``last_seen`` (stream -> last ts) finds a previous version."""
        if not any(e.output_logprobs for e in batch.events):
            return
        for position, (event, tenant) in enumerate(zip(batch.events, tenants, strict=True)):
            if not event.output_logprobs:
                continue
            full = (*batch.key, tenant)
            counts = self._counts.get(full)
            if counts is None:
                counts = self._counts[full] = self._start(full, last_seen)
            locked = confidence_lock(event.output_logprobs)
            if locked and (counts[1] / counts[0] if counts[0] else 0.0) < self.rate:
                batch.flag(position, LOCK_FLAG)
            if counts[0] < self.limit:
                counts[0] += 1
                counts[1] += locked

    def _start(self, full: tuple[str, str, str], last_seen: Mapping[tuple[str, str, str], int]) -> list[int]:
        model, version, tenant = full
        if self.previous:
            others = [(seen, k) for k, seen in last_seen.items()
                      if k[0] == model and k[2] == tenant and k[1] != version and k in self._counts]
            if others:
                return list(self._counts[max(others)[1]])
        return [0, 0]

    def snapshot(self, key: StreamKey) -> dict[str, list[int]]:
        """Per tenant of ``key``, its reference counts (JSON-ready)."""
        return {full[2]: list(counts) for full, counts in self._counts.items() if full[:2] == key}

    def restore(self, key: StreamKey, state: Mapping[str, Any]) -> None:
        for tenant, (counted, locked) in state.items():
            self._counts[(*key, tenant)] = [int(counted), int(locked)]

    def forget(self, key: StreamKey) -> None:
        for full in [full for full in self._counts if full[:2] == key]:
            del self._counts[full]
