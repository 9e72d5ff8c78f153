"""Encoding of the messages the worker publishes: alerts and dead letters."""

from __future__ import annotations

import json

from monitor.alerts import Alert
from monitor.storage.rows import DeadLetter

__all__ = ["TOPIC_PREVIEW_BYTES", "Message", "alert_message", "dead_letter_message"]

Message = tuple[str, bytes | None, bytes]
# The dead-letter topic carries a short preview; the table keeps more (RAW_PREVIEW_BYTES).
TOPIC_PREVIEW_BYTES = 1024


def alert_message(alert: Alert, topic: str) -> Message:
    """``(topic, alert_id, alert JSON)``: keyed by the alert's id, the dedup key.

    An alert can be published more than once (a retried publish, two workers replaying the same
    events right after a rebalance); every copy has the same key. An update of an alert (a later
    ``revision``: new evidence of a sustained change) has that key too, so a consumer keeps, per
    key, the record with the highest ``revision`` and the topic may be compacted. The alerts
    topic has one partition, so one model's alerts stay in the order they were published.
    """
    return topic, alert.alert_id.encode(), json.dumps(alert.to_json(), sort_keys=True).encode()


def dead_letter_message(letter: DeadLetter, topic: str) -> Message:
    """``(topic, None, JSON)`` describing the dead letter, with a preview of its raw bytes."""
    value = {
        "dead_letter_id": letter.dead_letter_id, "reason": letter.reason, "field": letter.field,
        "topic": letter.source, "partition": letter.partition, "offset": letter.offset,
        "raw_bytes": len(letter.raw),
        "raw_preview": letter.raw[:TOPIC_PREVIEW_BYTES].decode("utf-8", "replace"),
    }
    return topic, None, json.dumps(value).encode()
