"""Webhook alerts (a real local HTTP server) and the guard's log lines."""

from __future__ import annotations

import io
import json
import socket
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest

from bilge.config.policy import DEFAULT_POLICY
from bilge.errors import ConfigError
from bilge.guard.alerts import Alert, AlertError, Webhook, url_problem
from bilge.guard.loop import Guard, Log, WatchOptions, _Host
from bilge.guard.metrics import _reason_class
from bilge.model import Filesystem

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
    threading.Thread(target=srv.serve_forever, args=(0.02,), daemon=True).start()
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


# --- a bad URL is refused, and never quoted ------------------------------------------

BAD_URLS = [
    "https://hooks.example/T000/SECRET x",
    "https://x y/T000/SECRET",
    "ftp://hooks.example/T000/SECRET",
    "https:///T000/SECRET",
    "https://hooks.example/T000/SECRET\nX-Injected: 1",
    "https://hooks.example/T000/SECRET\x1b[2J",
    "hooks.example/T000/SECRET",
    "SECRET:T000/SECRET",
    "https://user:SECRET@hooks.example:99999/T000",
    "https://[::1/T000/SECRET",
    "https://hooks.example/T000/SECRET\u2028",
]


@pytest.mark.parametrize("url", BAD_URLS)
def test_a_bad_url_is_refused_without_quoting_it(url: str) -> None:
    problem = url_problem(url)
    assert problem is not None and "SECRET" not in problem and "T000" not in problem


@pytest.mark.parametrize(
    "url", ["https://hooks.example/T000/SECRET", "http://127.0.0.1:8080/x?token=y", "https://h"]
)
def test_a_good_url_has_no_problem(url: str) -> None:
    assert url_problem(url) is None


@pytest.mark.parametrize("url", BAD_URLS)
def test_a_bad_url_in_the_environment_is_a_config_error(url: str) -> None:
    with pytest.raises(ConfigError) as info:
        Webhook.from_config("", "json", {"BILGE_WEBHOOK_URL": url})
    assert info.value.exit_code == 2
    assert str(info.value).startswith("$BILGE_WEBHOOK_URL: ")
    assert "SECRET" not in str(info.value) and "T000" not in str(info.value)


# --- a webhook failing at run time is an AlertError, never the URL -----------------------


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def raw_server() -> Iterator[tuple[int, list[bytes]]]:
    """A TCP server answering each connection with the bytes queued for it."""
    answers: list[bytes] = []
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()

    def serve() -> None:
        while True:
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            with conn:
                conn.recv(65536)
                answer = answers.pop(0) if answers else b""
                if answer == b"trickle":
                    for _ in range(50):
                        conn.sendall(b"H")
                        time.sleep(0.1)
                else:
                    conn.sendall(answer)

    threading.Thread(target=serve, daemon=True).start()
    yield listener.getsockname()[1], answers
    listener.close()


def _fails_quietly(hook: Webhook) -> str:
    with pytest.raises(AlertError) as info:
        hook.send(ALERT)
    message = str(info.value)
    assert "secret" not in message.lower() and "T000" not in message, message
    assert info.value.__cause__ is None and info.value.__suppress_context__
    return message


def test_a_refused_connection_is_an_alert_error() -> None:
    message = _fails_quietly(Webhook(f"http://127.0.0.1:{_closed_port()}{SECRET}"))
    assert message == "webhook http://127.0.0.1 unreachable (Connection refused)"


def test_an_unknown_host_is_an_alert_error() -> None:
    _fails_quietly(Webhook(f"http://nonexistent.invalid{SECRET}", timeout=5))


def test_an_answer_of_500_is_an_alert_error(receiver: _Receiver) -> None:
    receiver.status = 500
    assert _fails_quietly(Webhook(_url(receiver))).endswith("answered HTTP 500")


def test_a_redirect_is_not_followed(receiver: _Receiver) -> None:
    receiver.status = 302
    assert _fails_quietly(Webhook(_url(receiver))).endswith("answered HTTP 302")


@pytest.mark.parametrize(
    "answer",
    [b"garbage\r\n\r\n", b"HTTP/1.1 200 OK\r\nX: " + b"a" * 70000 + b"\r\n\r\n", b""],
)
def test_a_broken_answer_is_an_alert_error(
    raw_server: tuple[int, list[bytes]], answer: bytes
) -> None:
    # http.client's errors (BadStatusLine, LineTooLong, RemoteDisconnected)
    # are not all OSErrors; none may escape into the guard.
    port, answers = raw_server
    answers.append(answer)
    _fails_quietly(Webhook(f"http://127.0.0.1:{port}{SECRET}"))


def test_a_receiver_that_trickles_is_cut_off_at_the_deadline(
    raw_server: tuple[int, list[bytes]],
) -> None:
    # Each byte comes before the socket timeout; only a deadline for the whole
    # answer stops it.
    port, answers = raw_server
    answers.append(b"trickle")
    started = time.monotonic()
    message = _fails_quietly(Webhook(f"http://127.0.0.1:{port}{SECRET}", timeout=0.5))
    assert time.monotonic() - started < 2
    assert message == "webhook http://127.0.0.1 did not answer within 0.5s"


def test_a_bad_url_given_in_python_fails_without_quoting_it() -> None:
    for url in BAD_URLS:
        _fails_quietly(Webhook(url, timeout=2))
        assert "SECRET" not in Webhook(url).where and "SECRET" not in repr(Webhook(url))


@pytest.mark.parametrize("status", [None, 500])
def test_the_guard_survives_a_failing_webhook_and_logs_no_secret(
    receiver: _Receiver, status: int | None
) -> None:
    url = f"http://127.0.0.1:{_closed_port()}{SECRET}" if status is None else _url(receiver)
    receiver.status = status or 200
    out = io.StringIO()
    guard = Guard(
        [],
        DEFAULT_POLICY,
        None,  # type: ignore[arg-type]  # an alert never touches the state store
        WatchOptions(),
        log=Log("json", out),
        webhook=Webhook(url),
    )
    fs = Filesystem("/var/lib/docker", 100, 5, 100, 50)
    guard._alert("high", _Host("unix:///run/docker.sock"), fs, "disk 95% full")
    logged = out.getvalue()
    assert '"alert-failed"' in logged and "secret" not in logged.lower()
