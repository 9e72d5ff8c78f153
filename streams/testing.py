"""A throwaway Kafka broker for tests and benchmarks: librdkafka's mock cluster.

The confluent-kafka wheel bundles librdkafka, whose mock cluster speaks the
real Kafka wire protocol on loopback. It has no admin API, so topics are
created through its C API (``rd_kafka_mock_topic_create``), called here
through :mod:`ctypes`: up front, or later with :meth:`MockKafka.create_topics`
(a line on the child's stdin). The cluster lives in a child process (so a crash
or ``kill -9`` of a worker under test cannot take it down) and is stopped by
its PID.

Known limits of the mock cluster, measured on this project's machine:
kafka-python needs ``api_version=(2, 3)``; session timeouts of about 6 s are
needed; aiokafka groups with two members hit a SyncGroup race; transactions
produce invalid CRCs. So tests use one consumer per group and at-least-once.
And each partition keeps only about 5 MiB of log: older records are silently
deleted (the log start offset moves), so tests and benchmarks keep what is
unconsumed per partition well below that, producing in steps if need be.

Examples
--------
>>> spec = parse_topics(["model-io:4", "driftwatch-alerts"])
>>> spec
[('model-io', 4), ('driftwatch-alerts', 1)]
"""

from __future__ import annotations

import ctypes
import glob
import os
import select
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

__all__ = ["MockKafka", "assigned_partitions", "committed_offsets", "end_offsets", "parse_topics", "read_topic",
           "terminate", "wait_committed"]

_READY = "bootstrap="
_CREATED = "created="


def terminate(process: subprocess.Popen[Any], timeout: float = 5.0) -> int:
    """Stop ``process`` by its PID: SIGTERM, then SIGKILL if it has not exited within ``timeout`` s; its exit code.

    >>> terminate(subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"]))
    -15
    """
    if process.poll() is None:
        os.kill(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            os.kill(process.pid, signal.SIGKILL)
            process.wait()
    return process.returncode


def parse_topics(specs: Sequence[str]) -> list[tuple[str, int]]:
    """``name`` or ``name:partitions`` into (name, partitions) pairs."""
    topics = []
    for spec in specs:
        name, _, count = spec.partition(":")
        partitions = int(count) if count else 1
        if not name or partitions < 1:
            raise ValueError(f"topic spec must be name[:partitions>=1]; got {spec!r}")
        topics.append((name, partitions))
    return topics


def _librdkafka() -> ctypes.CDLL:
    import confluent_kafka

    libs = Path(confluent_kafka.__file__).resolve().parent.parent / "confluent_kafka.libs"
    found = sorted(glob.glob(str(libs / "librdkafka*.so*")))
    if not found:
        raise FileNotFoundError(f"librdkafka not found under {libs}; is confluent-kafka installed from a wheel?")
    lib = ctypes.CDLL(found[0])
    lib.rd_kafka_conf_new.restype = ctypes.c_void_p
    lib.rd_kafka_conf_set.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_char_p,
                                      ctypes.c_char_p, ctypes.c_size_t]
    lib.rd_kafka_new.restype = ctypes.c_void_p
    lib.rd_kafka_new.argtypes = [ctypes.c_int, ctypes.c_void_p, ctypes.c_char_p, ctypes.c_size_t]
    lib.rd_kafka_mock_cluster_new.restype = ctypes.c_void_p
    lib.rd_kafka_mock_cluster_new.argtypes = [ctypes.c_void_p, ctypes.c_int]
    lib.rd_kafka_mock_cluster_bootstraps.restype = ctypes.c_char_p
    lib.rd_kafka_mock_cluster_bootstraps.argtypes = [ctypes.c_void_p]
    lib.rd_kafka_mock_topic_create.restype = ctypes.c_int
    lib.rd_kafka_mock_topic_create.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_int, ctypes.c_int]
    lib.rd_kafka_mock_push_request_errors_array.argtypes = [ctypes.c_void_p, ctypes.c_int16, ctypes.c_size_t,
                                                            ctypes.POINTER(ctypes.c_int)]
    return lib


# Kafka's Produce API key, and the error a refused produce answers with (TOPIC_AUTHORIZATION_FAILED).
_PRODUCE_API = 0
_REFUSED = 29


def serve(topics: Sequence[tuple[str, int]], produce_errors: int = 0) -> None:
    """Run a one-broker mock cluster with ``topics`` until SIGTERM (child side).

    The first ``produce_errors`` produce requests are refused (TOPIC_AUTHORIZATION_FAILED).
    """
    lib = _librdkafka()
    errstr = ctypes.create_string_buffer(512)
    conf = lib.rd_kafka_conf_new()
    # The hosting handle has no brokers of its own; keep its config notice quiet.
    lib.rd_kafka_conf_set(conf, b"log_level", b"3", errstr, len(errstr))
    # A producer handle only hosts the cluster; it never sends anything.
    handle = lib.rd_kafka_new(0, conf, errstr, len(errstr))
    if not handle:
        raise RuntimeError(f"rd_kafka_new failed: {errstr.value.decode()}")
    cluster = lib.rd_kafka_mock_cluster_new(handle, 1)
    if not cluster:
        raise RuntimeError("rd_kafka_mock_cluster_new returned NULL")
    for name, partitions in topics:
        code = lib.rd_kafka_mock_topic_create(cluster, name.encode(), partitions, 1)
        if code != 0:
            raise RuntimeError(f"rd_kafka_mock_topic_create({name!r}, {partitions}) failed with code {code}")
    if produce_errors:
        errors = (ctypes.c_int * produce_errors)(*[_REFUSED] * produce_errors)
        lib.rd_kafka_mock_push_request_errors_array(cluster, _PRODUCE_API, produce_errors, errors)
    stop = False

    def on_term(signum: int, frame: object) -> None:
        nonlocal stop
        stop = True

    signal.signal(signal.SIGTERM, on_term)
    parent = os.getppid()
    print(_READY + lib.rd_kafka_mock_cluster_bootstraps(cluster).decode(), flush=True)
    # A parent killed before it could stop us (a test run interrupted) must not leave a broker behind.
    while not stop and os.getppid() == parent:
        # Topics asked for later, one "name:partitions" line each on stdin (the mock has no admin API).
        if select.select([sys.stdin], [], [], 0.2)[0]:
            line = sys.stdin.readline()
            if not line:
                sys.stdin = open(os.devnull)  # parent closed the pipe: keep serving until SIGTERM
                continue
            [(name, partitions)] = parse_topics([line.strip()])
            code = lib.rd_kafka_mock_topic_create(cluster, name.encode(), partitions, 1)
            print(f"{_CREATED}{name} {code}", flush=True)
    # Exit without tearing the cluster down: the process ends, the sockets close.
    os._exit(0)


class MockKafka:
    """A mock Kafka cluster in a child process, on 127.0.0.1.

    Parameters
    ----------
    topics
        (name, partitions) pairs to create before anyone connects.
    produce_errors
        How many produce requests the broker refuses first (to test that no publish fails silently).

    Examples
    --------
    >>> broker = MockKafka([("model-io", 2)])
    >>> broker.bootstrap is None
    True
    """

    def __init__(self, topics: Sequence[tuple[str, int]], produce_errors: int = 0) -> None:
        self.topics = list(topics)
        self.produce_errors = produce_errors
        self.bootstrap: str | None = None
        self._process: subprocess.Popen[str] | None = None

    def start(self, timeout: float = 20.0) -> str:
        """Start the child and return its bootstrap servers (``127.0.0.1:port``)."""
        args = [sys.executable, "-m", "streams.testing", f"--produce-errors={self.produce_errors}",
                *(f"{n}:{p}" for n, p in self.topics)]
        env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
        self._process = subprocess.Popen(args, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env)
        deadline = time.monotonic() + timeout
        stdout = self._process.stdout
        if stdout is None:
            raise RuntimeError("Popen gave no stdout pipe")
        while time.monotonic() < deadline:
            line = stdout.readline()
            if line.startswith(_READY):
                self.bootstrap = line[len(_READY):].strip()
                if not self.bootstrap.startswith("127.0.0.1:"):
                    self.stop()
                    raise RuntimeError(f"mock cluster must listen on 127.0.0.1; got {self.bootstrap!r}")
                return self.bootstrap
            if not line and self._process.poll() is not None:
                break
        self.stop()
        raise RuntimeError("the mock Kafka cluster did not start")

    def create_topics(self, topics: Sequence[tuple[str, int]], timeout: float = 10.0) -> None:
        """Create ``topics`` ((name, partitions) pairs) on the running cluster."""
        process = self._process
        if process is None or process.stdin is None or process.stdout is None:
            raise RuntimeError("MockKafka.create_topics needs a started cluster; call start() first")
        for name, partitions in topics:
            process.stdin.write(f"{name}:{partitions}\n")
            process.stdin.flush()
            deadline = time.monotonic() + timeout
            while True:
                line = process.stdout.readline()
                if line.startswith(_CREATED + name + " "):
                    code = int(line.rsplit(" ", 1)[1])
                    if code != 0:
                        raise RuntimeError(f"rd_kafka_mock_topic_create({name!r}, {partitions}) failed: code {code}")
                    break
                if (not line and process.poll() is not None) or time.monotonic() > deadline:
                    raise RuntimeError(f"the mock cluster did not confirm topic {name!r} within {timeout} s")
        self.topics.extend(topics)

    def stop(self) -> None:
        """Stop the child by its PID."""
        if self._process is None:
            return
        terminate(self._process)
        for pipe in (self._process.stdin, self._process.stdout):
            if pipe is not None:
                pipe.close()
        self._process = None

    def __enter__(self) -> MockKafka:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


def _consumer(bootstrap: str, **options: Any) -> Any:
    from kafka import KafkaConsumer

    options = {"fetch_max_bytes": 64 << 20, "max_partition_fetch_bytes": 16 << 20, **options}
    return KafkaConsumer(bootstrap_servers=bootstrap, api_version=(2, 3), enable_auto_commit=False, **options)


def _partitions(consumer: Any, topic: str) -> list[int]:
    # A fresh client may not have metadata yet; topics() fetches it.
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if topic in consumer.topics():
            found = consumer.partitions_for_topic(topic)
            if found:
                return sorted(found)
        time.sleep(0.2)
    raise RuntimeError(f"topic {topic!r} not found on the broker")


def end_offsets(bootstrap: str, topic: str, timeout: float = 10.0) -> dict[int, int]:
    """The next offset of every partition of ``topic``: the high watermark of a Fetch response.

    Not ListOffsets alone: tansu 0.6 answers it with the first offset of the newest batch + 1. A fetch
    from there (at or before the end on every broker) carries the true high watermark.
    """
    from kafka import TopicPartition

    consumer = _consumer(bootstrap, fetch_max_wait_ms=50, max_partition_fetch_bytes=1)
    try:
        partitions = [TopicPartition(topic, p) for p in _partitions(consumer, topic)]
        consumer.assign(partitions)
        for tp, listed in consumer.end_offsets(partitions).items():
            consumer.seek(tp, max(0, listed - 1))
        deadline = time.monotonic() + timeout
        while any(consumer.highwater(tp) is None for tp in partitions):
            if time.monotonic() > deadline:
                raise TimeoutError(f"no Fetch high watermark for every partition of {topic} within {timeout} s")
            consumer.poll(timeout_ms=100)
        return {tp.partition: int(consumer.highwater(tp)) for tp in partitions}
    finally:
        consumer.close()


def committed_offsets(bootstrap: str, group: str, topic: str) -> dict[int, int]:
    """The offsets ``group`` has committed on ``topic`` (0 where none yet)."""
    from kafka import TopicPartition

    consumer = _consumer(bootstrap, group_id=group)
    try:
        return {p: consumer.committed(TopicPartition(topic, p)) or 0 for p in _partitions(consumer, topic)}
    finally:
        consumer.close()


def wait_committed(bootstrap: str, group: str, topic: str, *, timeout: float,
                   alive: Callable[[], bool] = lambda: True, poll_s: float = 0.5) -> dict[int, int]:
    """Wait until ``group`` has committed everything in ``topic``, looking every ``poll_s``; return the end offsets."""
    ends = end_offsets(bootstrap, topic)
    deadline = time.monotonic() + timeout
    committed: dict[int, int] = {}
    while time.monotonic() < deadline:
        committed = committed_offsets(bootstrap, group, topic)
        if committed == ends:
            return ends
        if not alive():
            raise RuntimeError(f"the worker exited before committing {topic}: {committed} of {ends}")
        time.sleep(poll_s)
    raise TimeoutError(f"group {group} committed {committed} of {ends} on {topic} within {timeout} s")


def assigned_partitions(log_text: str, topic: str) -> list[set[int]]:
    """The input partitions of every assignment a worker logged for ``topic``, oldest first.

    >>> assigned_partitions("x partitions assigned topic=model-io partitions=[0, 2] models_forgotten=0", "model-io")
    [{0, 2}]
    """
    marker = f"partitions assigned topic={topic} "
    return [{int(p) for p in line.split("partitions=[", 1)[1].split("]", 1)[0].split(",") if p.strip()}
            for line in log_text.splitlines() if marker in line]


def read_records(bootstrap: str, topic: str) -> list[tuple[bytes | None, bytes, int]]:
    """Every (key, value, timestamp in ms) now in ``topic``, partition by partition."""
    from kafka import TopicPartition

    ends = end_offsets(bootstrap, topic)
    consumer = _consumer(bootstrap)
    try:
        partitions = [TopicPartition(topic, p) for p in ends]
        consumer.assign(partitions)
        consumer.seek_to_beginning(*partitions)
        out: list[tuple[bytes | None, bytes, int]] = []
        deadline = time.monotonic() + 30
        while any(consumer.position(tp) < ends[tp.partition] for tp in partitions):
            if time.monotonic() > deadline:
                raise TimeoutError(f"could not read {topic} to its end {ends}")
            for records in consumer.poll(timeout_ms=500).values():
                out.extend((record.key, record.value, record.timestamp) for record in records)
        return out
    finally:
        consumer.close()


def read_topic(bootstrap: str, topic: str) -> list[tuple[bytes | None, bytes]]:
    """Every (key, value) now in ``topic``, partition by partition."""
    return [(key, value) for key, value, _ in read_records(bootstrap, topic)]


if __name__ == "__main__":
    _flags = [arg for arg in sys.argv[1:] if arg.startswith("--produce-errors=")]
    serve(parse_topics([arg for arg in sys.argv[1:] if arg not in _flags]),
          produce_errors=int(_flags[-1].split("=", 1)[1]) if _flags else 0)
