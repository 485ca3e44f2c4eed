"""Webhook alerts (a real local HTTP server) and the guard's log lines."""

from __future__ import annotations

import io
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest

from bilge.alerts import Alert, AlertError, Webhook
from bilge.metrics import _reason_class
from bilge.watch import Log

SECRET = "/services/T000/B000/very-secret-token"
ALERT = Alert("high", "unix:///run/docker.sock", "disk 91% full", {"used_ratio": 0.91})


class _Receiver(HTTPServer):
    bodies: list[dict[str, object]]
    status: int


class _Handler(BaseHTTPRequestHandler):
    server: _Receiver

    def do_POST(self) -> None:
        length = int(self.headers["Content-Length"])
        self.server.bodies.append(json.loads(self.rfile.read(length)))
        self.send_response(self.server.status)
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def receiver() -> Iterator[_Receiver]:
    srv = _Receiver(("127.0.0.1", 0), _Handler)
    srv.bodies, srv.status = [], 200
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    yield srv
    srv.shutdown()
    srv.server_close()


def _url(srv: _Receiver) -> str:
    return f"http://127.0.0.1:{srv.server_address[1]}{SECRET}"


def test_a_generic_alert_is_json(receiver: _Receiver) -> None:
    Webhook(_url(receiver)).send(ALERT)
    (body,) = receiver.bodies
    assert body == {"source": "bilge", "event": "high", "host": ALERT.host,
                    "text": "disk 91% full", "details": {"used_ratio": 0.91}}  # fmt: skip


def test_a_slack_alert_is_one_text(receiver: _Receiver) -> None:
    Webhook(_url(receiver), "slack").send(ALERT)
    (body,) = receiver.bodies
    assert set(body) == {"text"} and "disk 91% full" in str(body["text"])


def test_errors_never_show_the_secret_part_of_the_url(receiver: _Receiver) -> None:
    receiver.status = 500
    with pytest.raises(AlertError) as refused:
        Webhook(_url(receiver)).send(ALERT)
    with pytest.raises(AlertError) as unreachable:
        Webhook(f"http://127.0.0.1:1{SECRET}").send(ALERT)
    for exc in (refused.value, unreachable.value):
        assert "secret" not in str(exc) and "127.0.0.1" in str(exc)
        assert exc.__cause__ is None and exc.__suppress_context__


def test_the_url_may_come_from_the_environment() -> None:
    assert Webhook.from_config("", "json", {}) is None
    hook = Webhook.from_config("", "slack", {"BILGE_WEBHOOK_URL": "https://hooks.example/x/y"})
    assert hook is not None and hook.where == "https://hooks.example" and hook.format == "slack"


def test_log_lines_are_text_or_json() -> None:
    out = io.StringIO()
    Log("json", out)("eviction-start", host="h", used="91%")
    doc = json.loads(out.getvalue())
    assert doc["event"] == "eviction-start" and doc["level"] == "info" and doc["used"] == "91%"
    out = io.StringIO()
    Log("text", out)("removal", "warning", name="a b", n=3)
    assert out.getvalue().split(" ", 1)[1] == 'warning removal name="a b" n=3\n'


def test_metric_reasons_have_few_values() -> None:
    assert _reason_class("unused for 3d 2h (unused_after 7d)") == "unused for"
    assert _reason_class("anonymous volume of removed container job-1") == (
        "anonymous volume of removed"
    )
