"""Publish a JSON Lines file to the input topic with kafka-python (demos, load tests).

Every send's result is waited for and counted: :func:`produce_lines` returns
how many records the broker acknowledged and raises :class:`ProduceError`
(``driftwatch produce`` exits 1 with its message) when any was refused or
lost, naming how many and the first reason.

Producer settings that hold on every broker we run against (librdkafka's mock
cluster, tansu, Apache Kafka): no idempotent producer (kafka-python 3 turns it
on by default; a broker without InitProducerId, tansu, then drops every
record), ``acks=all`` and a bounded ``delivery_timeout_ms``, so a broker that
goes away fails the sends instead of hanging.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from kafka import KafkaProducer
from kafka.errors import KafkaTimeoutError
from kafka.producer.future import FutureRecordMetadata

from monitor.errors import DriftwatchError
from monitor.settings import Settings

logger = logging.getLogger(__name__)

__all__ = ["ProduceError", "Sends", "produce_lines", "producer_for"]

# Longest a send may wait for its acknowledgement (kafka-python's default is 120 s).
DELIVERY_TIMEOUT_MS = 30_000


class ProduceError(DriftwatchError):
    """The broker refused or lost records sent to it."""


def producer_for(settings: Settings, **overrides: Any) -> KafkaProducer:
    """A kafka-python producer for ``settings``, configured as the module docstring says.

    ``api_version=(2, 3)`` works with the mock cluster and tansu (no version probe).
    """
    options: dict[str, Any] = {
        "bootstrap_servers": [h.strip() for h in settings.kafka.bootstrap.split(",") if h.strip()],
        "security_protocol": settings.kafka.security_protocol,
        "api_version": (2, 3),
        "enable_idempotence": False,
        "linger_ms": 20,
        "batch_size": 256 << 10,
        "max_request_size": settings.ingest.max_record_bytes + (1 << 20),
        "acks": "all",
        "retries": 5,
        "request_timeout_ms": 15_000,
        "delivery_timeout_ms": DELIVERY_TIMEOUT_MS,
        # How long send() blocks for metadata (default 60 s per record): an unreachable broker fails fast.
        "max_block_ms": 10_000,
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


@dataclass
class Sends:
    """The sends of one producer, each counted as acknowledged or failed once its result is known."""

    producer: KafkaProducer
    acknowledged: int = 0
    failed: int = 0
    first_error: str = ""
    _futures: list[FutureRecordMetadata] = field(default_factory=list)

    def send(self, topic: str, value: bytes, **options: Any) -> bool:
        """Send one record; a send refused at once (too large, no metadata) counts as failed.

        Returns False when the broker could not be reached in ``max_block_ms``: sending more is pointless.
        """
        try:
            self._futures.append(self.producer.send(topic, value=value, **options))
        except KafkaTimeoutError as exc:
            self._failed(exc)
            return False
        except Exception as exc:  # kafka-python raises KafkaError subclasses and AssertionError here
            self._failed(exc)
        if len(self._futures) >= 10_000:
            self._settle(self._futures[:5_000])
            del self._futures[:5_000]
        return True

    def finish(self, timeout_s: float = DELIVERY_TIMEOUT_MS / 1000 + 10) -> int:
        """Flush, wait for every send's result; return the acknowledged count or raise :class:`ProduceError`."""
        try:
            self.producer.flush(timeout=timeout_s)
        except Exception as exc:  # a flush that times out leaves futures undone; they are counted below
            logger.warning("producer flush did not finish error=%r", exc)
        self._settle(self._futures, timeout_s=0.0)
        self._futures = []
        if self.failed:
            raise ProduceError(f"{self.failed} of {self.acknowledged + self.failed} records were not stored "
                               f"by the broker (first error: {self.first_error})")
        return self.acknowledged

    def _settle(self, futures: list[FutureRecordMetadata], timeout_s: float | None = None) -> None:
        for future in futures:
            try:
                future.get(timeout=timeout_s if timeout_s is not None else DELIVERY_TIMEOUT_MS / 1000 + 10)
            except Exception as exc:
                self._failed(exc)
            else:
                self.acknowledged += 1

    def _failed(self, exc: BaseException) -> None:
        self.failed += 1
        if not self.first_error:
            self.first_error = f"{type(exc).__name__}: {exc}"
            logger.error("publish failed error=%s", self.first_error)


def produce_lines(producer: KafkaProducer, topic: str, lines: Iterable[bytes]) -> int:
    """Send each non-blank line as one message; return how many the broker acknowledged.

    Raises :class:`ProduceError` if any was refused or lost (after every send has a result).
    """
    sends = Sends(producer)
    for line in lines:
        value = line.rstrip(b"\r\n")
        if value.strip() and not sends.send(topic, key=record_key(value), value=value):
            sends.first_error += "; stopped reading the input there"
            break
    return sends.finish()
