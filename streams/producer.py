"""Publish a JSON Lines file to the input topic with kafka-python (demos, load tests)."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable
from typing import Any

from kafka import KafkaProducer

from monitor.settings import Settings

logger = logging.getLogger(__name__)

__all__ = ["produce_lines", "producer_for"]


def producer_for(settings: Settings, **overrides: Any) -> KafkaProducer:
    """A kafka-python producer for ``settings`` (``api_version=(2, 3)`` works with the test broker too)."""
    options: dict[str, Any] = {
        "bootstrap_servers": [h.strip() for h in settings.kafka.bootstrap.split(",") if h.strip()],
        "security_protocol": settings.kafka.security_protocol,
        "api_version": (2, 3),
        "linger_ms": 20,
        "batch_size": 256 << 10,
        "max_request_size": settings.ingest.max_record_bytes + (1 << 20),
        "acks": "all",
    }
    if settings.kafka.security_protocol.startswith("SASL"):
        options["sasl_mechanism"] = settings.kafka.sasl_mechanism
        options["sasl_plain_username"] = settings.kafka.sasl_username
        password = settings.kafka.sasl_password
        options["sasl_plain_password"] = password.get_secret_value() if password else None
    if settings.kafka.ssl_cafile:
        options["ssl_cafile"] = str(settings.kafka.ssl_cafile)
    if settings.kafka.ssl_certfile:
        options["ssl_certfile"] = str(settings.kafka.ssl_certfile)
    if settings.kafka.ssl_keyfile:
        options["ssl_keyfile"] = str(settings.kafka.ssl_keyfile)
    options.update(overrides)
    return KafkaProducer(**options)


def record_key(line: bytes) -> bytes | None:
    """The message key: the record's model_id, so one model stays on one partition."""
    try:
        value = json.loads(line)
    except ValueError:
        return None
    model_id = value.get("model_id") if isinstance(value, dict) else None
    return model_id.encode() if isinstance(model_id, str) else None


def produce_lines(producer: KafkaProducer, topic: str, lines: Iterable[bytes]) -> int:
    """Send each non-blank line as one message; return how many were sent (after a flush)."""
    sent = 0
    for line in lines:
        value = line.rstrip(b"\r\n")
        if not value.strip():
            continue
        producer.send(topic, key=record_key(value), value=value)
        sent += 1
    producer.flush()
    return sent
