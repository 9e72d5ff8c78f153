"""Check (c): `driftwatch dashboards publish` against a loopback HTTP server that records
what grafana-client sends."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from dashboards.alert_rules import alert_rules
from dashboards.catalog import boards
from dashboards.publish import PublishError, publish
from dashboards.tables import tables
from driftwatch.cli.app import build_cli

DASHBOARDS = Path(__file__).resolve().parents[1] / "dashboards" / "json"


@dataclass
class Recorded:
    method: str
    path: str
    authorization: str
    body: Any


@dataclass
class FakeGrafana:
    """Answers like Grafana's HTTP API for the calls publish makes; records each request."""

    url: str
    requests: list[Recorded] = field(default_factory=list)
    folders: set[str] = field(default_factory=set)
    status: int | None = None  # when set, every request gets this status


@pytest.fixture
def grafana() -> Iterator[FakeGrafana]:
    state = FakeGrafana(url="")

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:  # keep test output quiet
            pass

        def _answer(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            state.requests.append(Recorded(self.command, self.path, self.headers.get("Authorization", ""),
                                           json.loads(raw) if raw else None))
            status, body = self._route(json.loads(raw) if raw else None)
            payload = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def _route(self, body: Any) -> tuple[int, Any]:
            if state.status is not None:
                return state.status, {"message": "invalid API key"}
            if self.command == "GET" and self.path.startswith("/api/folders/"):
                uid = self.path.rsplit("/", 1)[1]
                return (200, {"uid": uid}) if uid in state.folders else (404, {"message": "folder not found"})
            if self.command == "POST" and self.path == "/api/folders":
                state.folders.add(body["uid"])
                return 200, {"uid": body["uid"], "title": body["title"]}
            if self.command == "POST" and self.path == "/api/dashboards/db":
                return 200, {"status": "success", "uid": body["dashboard"]["uid"], "version": 1}
            if self.command == "PUT" and self.path.startswith("/api/v1/provisioning/folder/"):
                return 200, body
            return 404, {"message": "not found"}

        do_GET = do_POST = do_PUT = _answer

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    state.url = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def _committed() -> dict[str, dict[str, Any]]:
    documents = (json.loads(p.read_text(encoding="utf-8")) for p in sorted(DASHBOARDS.glob("*.json")))
    return {d["uid"]: d for d in documents}


def _publish_everything(url: str) -> Callable[[], Any]:
    return lambda: publish(url, "glsa_test", [b.to_json() for b in boards()], alert_rules(tables()), timeout_s=5)


def test_publish_sends_the_folder_the_dashboards_and_the_rules(grafana: FakeGrafana) -> None:
    report = _publish_everything(grafana.url)()
    calls = [(r.method, r.path) for r in grafana.requests]
    assert calls == [("GET", "/api/folders/driftwatch"), ("POST", "/api/folders"),
                     *[("POST", "/api/dashboards/db")] * 4,
                     ("PUT", "/api/v1/provisioning/folder/driftwatch/rule-groups/driftwatch")]
    assert {r.authorization for r in grafana.requests} == {"Bearer glsa_test"}
    assert report.folder_created and len(report.dashboards) == 4 and report.alert_rules == 5
    committed = _committed()
    for request in grafana.requests[2:6]:
        sent = request.body
        assert sent["overwrite"] is True and sent["folderUid"] == "driftwatch"
        assert {**sent["dashboard"], "id": None} == {**committed[sent["dashboard"]["uid"]], "id": None}
    group = grafana.requests[-1].body
    assert [r["uid"] for r in group["rules"]] == [r.uid for r in alert_rules(tables())]
    assert all(r["folderUID"] == "driftwatch" and r["ruleGroup"] == "driftwatch" for r in group["rules"])


def test_publishing_again_reuses_the_folder(grafana: FakeGrafana) -> None:
    _publish_everything(grafana.url)()
    report = _publish_everything(grafana.url)()
    assert not report.folder_created
    assert [r.path for r in grafana.requests].count("/api/folders") == 1


def test_the_cli_publishes_with_another_datasource_and_no_rules(grafana: FakeGrafana) -> None:
    result = CliRunner().invoke(build_cli(), ["dashboards", "publish", "--url", grafana.url, "--token", "t0k",
                                       "--datasource-uid", "ch-prod", "--no-alert-rules", "--timeout", "5"])
    assert result.exit_code == 0, result.output
    assert "published to" in result.output and "alert rules: 0" in result.output
    assert not any(r.method == "PUT" for r in grafana.requests)
    variable = grafana.requests[2].body["dashboard"]["templating"]["list"][0]
    assert variable["name"] == "datasource" and variable["current"]["value"] == "ch-prod"


def test_a_refusal_is_an_error_naming_the_status(grafana: FakeGrafana) -> None:
    grafana.status = 401
    with pytest.raises(PublishError, match=r"refused folder driftwatch \(HTTP 401\)"):
        _publish_everything(grafana.url)()
    result = CliRunner().invoke(build_cli(), ["dashboards", "publish", "--url", grafana.url, "--token", "bad"])
    assert result.exit_code == 1 and "HTTP 401" in result.output


def test_an_unreachable_grafana_is_an_error() -> None:
    with pytest.raises(PublishError, match="cannot reach Grafana"):
        publish("http://127.0.0.1:9", "t", [], (), timeout_s=2)
