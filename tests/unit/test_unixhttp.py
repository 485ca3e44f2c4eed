"""The hand-rolled HTTP/1.1 client, against a unix socket that answers with bytes
each test scripts: every way a server may delimit a body, and broken answers."""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from bilge.engine.transport import UnixHTTP
from bilge.engine.unixhttp import Connection, Disconnected, ProtocolError
from bilge.errors import EngineUnreachable


class Scripted:
    """Answers the n-th request on a connection with the n-th scripted reply (bytes,
    or None to close the connection without answering); one script per connection."""

    def __init__(self, path: Path, scripts: list[list[bytes | None]]) -> None:
        self.path = str(path)
        self.requests: list[bytes] = []
        self._scripts = scripts
        self._server = socket.socket(socket.AF_UNIX)
        self._server.bind(self.path)
        self._server.listen()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        for script in self._scripts:
            try:
                conn, _ = self._server.accept()
            except OSError:  # closed by the test
                return
            with conn:
                for reply in script:
                    request = b""
                    while b"\r\n\r\n" not in request:
                        chunk = conn.recv(4096)
                        if not chunk:
                            return
                        request += chunk
                    self.requests.append(request)
                    if reply is None:
                        break
                    conn.sendall(reply)

    def close(self) -> None:
        # Shut down first: that wakes the thread if it waits in accept.
        with contextlib.suppress(OSError):
            self._server.shutdown(socket.SHUT_RDWR)
        self._server.close()
        self._thread.join(timeout=10)
        assert not self._thread.is_alive()


@pytest.fixture
def sock_path(tmp_path: Path) -> Iterator[Path]:
    yield tmp_path / "engine.sock"


def _ok(body: bytes, *headers: str) -> bytes:
    head = "".join(f"{h}\r\n" for h in headers)
    return f"HTTP/1.1 200 OK\r\n{head}\r\n".encode() + body


def test_bodies_by_length_and_by_chunks_on_one_connection(sock_path: Path) -> None:
    chunked = b"5\r\nhello\r\n7;ext=1\r\n, world\r\n0\r\nX-Trailer: 1\r\n\r\n"
    server = Scripted(
        sock_path,
        [
            [
                _ok(b'{"a":1}', "Content-Length: 7"),
                _ok(chunked, "Transfer-Encoding: chunked"),
                b"HTTP/1.1 204 No Content\r\n\r\n",
                _ok(b"", "Content-Length: 0"),
            ]
        ],
    )
    conn = Connection(server.path, timeout=5)
    assert conn.request("GET", "/a") == (200, b'{"a":1}')
    assert conn.request("GET", "/b") == (200, b"hello, world")
    assert conn.request("DELETE", "/c") == (204, b"")
    assert conn.request("POST", "/d") == (200, b"")
    assert server.requests[0].startswith(b"GET /a HTTP/1.1\r\nHost: docker\r\n")
    assert b"Content-Length: 0" in server.requests[3]
    server.close()


def test_a_body_to_the_end_of_the_connection(sock_path: Path) -> None:
    server = Scripted(
        sock_path, [[b"HTTP/1.0 200 OK\r\n\r\nall of it"], [_ok(b"x", "Content-Length: 1")]]
    )
    conn = Connection(server.path, timeout=5)
    assert conn.request("GET", "/a") == (200, b"all of it")
    assert conn.sock is None  # not reusable: the next request opens a new connection
    assert conn.request("GET", "/b") == (200, b"x")
    server.close()


def test_informational_answers_are_skipped(sock_path: Path) -> None:
    reply = b"HTTP/1.1 100 Continue\r\n\r\n" + _ok(b"ok", "Content-Length: 2")
    server = Scripted(sock_path, [[reply]])
    assert Connection(server.path, timeout=5).request("GET", "/") == (200, b"ok")
    server.close()


@pytest.mark.parametrize(
    ("reply", "message"),
    [
        (b"SSH-2.0-OpenSSH\r\n\r\n", "not an HTTP answer"),
        (b"HTTP/1.1 200 OK\r\nno colon here\r\n\r\n", "malformed header"),
        (b"HTTP/1.1 200 OK\r\nContent-Length: ten\r\n\r\n", "malformed Content-Length"),
        (b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort", "closed in the middle"),
        (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", "malformed chunk"),
        (b"HTTP/1.1 200 OK\r\nContent-Le", "ended inside its headers"),
    ],
)
def test_broken_answers_are_protocol_errors(sock_path: Path, reply: bytes, message: str) -> None:
    server = Scripted(sock_path, [[reply]])
    with pytest.raises(ProtocolError, match=message):
        Connection(server.path, timeout=5).request("GET", "/")
    server.close()


def test_a_stale_keep_alive_is_told_apart_from_a_silent_engine(sock_path: Path) -> None:
    server = Scripted(sock_path, [[_ok(b"1", "Content-Length: 1"), None], [None]])
    conn = Connection(server.path, timeout=5)
    conn.request("GET", "/a")
    with pytest.raises(Disconnected):  # reused connection closed: worth one retry
        conn.request("GET", "/b")
    with pytest.raises(ProtocolError):  # a fresh one closed at once: the engine's fault
        conn.request("GET", "/c")
    server.close()


def test_the_transport_retries_a_stale_connection_once(sock_path: Path) -> None:
    ok = _ok(b"{}", "Content-Length: 2")
    server = Scripted(sock_path, [[ok, None], [ok]])
    http = UnixHTTP(f"unix://{server.path}", timeout=5)
    assert http.request("GET", "/a") == (200, b"{}")
    assert http.request("GET", "/b") == (200, b"{}")
    assert [r.split(b" ")[1] for r in server.requests] == [b"/a", b"/b", b"/b"]
    server.close()


def test_a_silent_engine_is_one_clear_error(sock_path: Path) -> None:
    server = Scripted(sock_path, [[None], [None]])
    http = UnixHTTP(f"unix://{server.path}", timeout=5)
    with pytest.raises(EngineUnreachable, match="closed the connection without answering"):
        http.request("GET", "/a")
    server.close()


def test_a_stream_yields_lines_across_chunks(sock_path: Path) -> None:
    body = b'4\r\n{"a"\r\n5\r\n:1}\n{\r\n5\r\n"b":2\r\n2\r\n}\n\r\n0\r\n\r\n'
    server = Scripted(sock_path, [[_ok(body, "Transfer-Encoding: chunked")]])
    stream = UnixHTTP(f"unix://{server.path}", timeout=5).stream("/events")
    assert stream.status == 200
    assert list(stream.lines()) == [b'{"a":1}\n', b'{"b":2}\n']
    server.close()
