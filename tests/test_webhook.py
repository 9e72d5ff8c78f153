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
