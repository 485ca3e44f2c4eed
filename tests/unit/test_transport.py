"""The unix-socket transport and the engine's reading of statuses, against a tiny
HTTP server on a unix socket that answers what each test tells it to."""

from __future__ import annotations

import contextlib
import json
import socket
import socketserver
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler
from pathlib import Path

import pytest

from bilge.engine.docker import DockerEngine
from bilge.engine.transport import UnixHTTP
from bilge.errors import EngineError, EngineUnreachable, ObjectConflict, ObjectGone

#: path -> (status, body); "/version" answers like dockerd 20.10.
Answers = dict[str, tuple[int, bytes]]


class _Server(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True
    answers: Answers
    seen: list[str]
    close_after_each: bool


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def address_string(self) -> str:  # a unix socket has no client address
        return "unix"

    def _answer(self) -> None:
        self.server.seen.append(f"{self.command} {self.path}")
        path = self.path.split("?")[0]
        status, body = self.server.answers.get(path, (404, b'{"message":"page not found"}'))
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        if self.server.close_after_each:
            self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_DELETE = do_POST = _answer

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def server(tmp_path: Path) -> Iterator[_Server]:
    srv = _Server(str(tmp_path / "docker.sock"), _Handler)
    srv.answers = {"/version": (200, json.dumps({"ApiVersion": "1.41"}).encode())}
    srv.seen = []
    srv.close_after_each = False
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    yield srv
    srv.shutdown()
    srv.server_close()


def _host(srv: _Server) -> str:
    return f"unix://{srv.server_address}"


def test_requests_share_one_connection_and_carry_the_version(server: _Server) -> None:
    server.answers["/v1.41/containers/json"] = (200, b"[]")
    eng = DockerEngine(_host(server))
    assert eng.api_version == "1.41"
    assert eng.containers(size=False) == []
    assert server.seen == ["GET /version", "GET /v1.41/containers/json?all=1&size=0"]


def test_a_connection_the_engine_closed_is_opened_again(server: _Server) -> None:
    server.close_after_each = True
    server.answers["/v1.41/info"] = (200, b"{}")
    eng = DockerEngine(_host(server))
    assert eng.info() == {} and eng.info() == {}


def test_statuses_become_bilge_errors(server: _Server) -> None:
    server.answers["/v1.41/containers/c1"] = (409, b'{"message":"container is running\\nmore"}')
    server.answers["/v1.41/volumes/v1"] = (500, b"not json at all")
    server.answers["/v1.41/info"] = (200, b"{broken")
    eng = DockerEngine(_host(server))
    with pytest.raises(ObjectConflict, match=r"remove container c1: container is running$"):
        eng.remove_container("c1")
    with pytest.raises(ObjectGone):
        eng.inspect_container("c2")
    with pytest.raises(EngineError, match="remove volume v1: not json at all"):
        eng.remove_volume("v1")
    with pytest.raises(EngineError, match="unreadable answer"):
        eng.info()


def test_image_references_are_quoted_into_the_path(server: _Server) -> None:
    server.answers["/v1.41/images/registry.local:5000/team/app:1.0"] = (200, b"[]")
    DockerEngine(_host(server)).remove_image("registry.local:5000/team/app:1.0")
    assert server.seen[-1] == "DELETE /v1.41/images/registry.local:5000/team/app:1.0?force=0"


def test_an_engine_too_old_is_refused(server: _Server) -> None:
    server.answers["/version"] = (200, json.dumps({"ApiVersion": "1.40"}).encode())
    with pytest.raises(EngineError, match=r"needs 1\.41"):
        DockerEngine(_host(server))


def test_no_socket_is_unreachable(tmp_path: Path) -> None:
    http = UnixHTTP(f"unix://{tmp_path}/none.sock", timeout=1)
    with pytest.raises(EngineUnreachable, match="No such file"):
        http.request("GET", "/version")


def test_the_build_cache_alone_is_asked_for_where_the_api_allows_it(server: _Server) -> None:
    server.answers["/v1.41/system/df"] = (200, b"{}")
    # 1.41: BuildKit's API first (this server refuses the upgrade), then /system/df.
    DockerEngine(_host(server)).system_df(build_cache_only=True)
    assert server.seen[-2:] == ["POST /grpc", "GET /v1.41/system/df"]
    server.answers["/version"] = (200, json.dumps({"ApiVersion": "1.43"}).encode())
    server.answers["/v1.43/system/df"] = (200, b"{}")
    DockerEngine(_host(server)).system_df(build_cache_only=True)
    assert server.seen[-1] == "GET /v1.43/system/df?type=build-cache"


# -- HTTP framing, on a socket that answers with scripted bytes --------------------


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


def _ok(body: bytes, *headers: str) -> bytes:
    head = "".join(f"{h}\r\n" for h in headers)
    return f"HTTP/1.1 200 OK\r\n{head}\r\n".encode() + body


def test_bodies_by_length_by_chunks_and_none_on_one_connection(tmp_path: Path) -> None:
    chunked = b"5\r\nhello\r\n7;ext=1\r\n, world\r\n0\r\nX-Trailer: 1\r\n\r\n"
    script: list[bytes | None] = [
        _ok(b'{"a":1}', "Content-Length: 7"),
        _ok(chunked, "Transfer-Encoding: chunked"),
        b"HTTP/1.1 204 No Content\r\n\r\n",
        b"HTTP/1.1 100 Continue\r\n\r\n" + _ok(b"", "Content-Length: 0"),
    ]
    server = Scripted(tmp_path / "engine.sock", [script])
    http = UnixHTTP(f"unix://{server.path}", timeout=5)
    assert http.request("GET", "/a") == (200, b'{"a":1}')
    assert http.request("GET", "/b") == (200, b"hello, world")
    assert http.request("DELETE", "/c") == (204, b"")
    assert http.request("POST", "/d") == (200, b"")
    assert len(server.requests) == 4  # one connection for all four
    assert b"Content-Length: 0" in server.requests[3]
    http.close()
    server.close()


def test_a_body_to_the_end_of_the_connection(tmp_path: Path) -> None:
    script = [[b"HTTP/1.0 200 OK\r\n\r\nall of it"], [_ok(b"x", "Content-Length: 1")]]
    server = Scripted(tmp_path / "engine.sock", script)  # type: ignore[arg-type]
    http = UnixHTTP(f"unix://{server.path}", timeout=5)
    assert http.request("GET", "/a") == (200, b"all of it")
    assert http.request("GET", "/b") == (200, b"x")  # on a new connection
    http.close()
    server.close()


@pytest.mark.parametrize(
    "reply",
    [
        b"SSH-2.0-OpenSSH\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Length: ten\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Le",
    ],
)
def test_broken_answers_are_one_line_errors(tmp_path: Path, reply: bytes) -> None:
    server = Scripted(tmp_path / "engine.sock", [[reply]])
    http = UnixHTTP(f"unix://{server.path}", timeout=5)
    with pytest.raises(EngineError) as caught:
        http.request("GET", "/a")
    assert "answered badly (GET /a)" in str(caught.value)
    assert "\n" not in str(caught.value)
    server.close()


def test_the_transport_retries_a_stale_connection_once(tmp_path: Path) -> None:
    ok = _ok(b"{}", "Content-Length: 2")
    server = Scripted(tmp_path / "engine.sock", [[ok, None], [ok]])
    http = UnixHTTP(f"unix://{server.path}", timeout=5)
    assert http.request("GET", "/a") == (200, b"{}")
    assert http.request("GET", "/b") == (200, b"{}")
    assert [r.split(b" ")[1] for r in server.requests] == [b"/a", b"/b", b"/b"]
    http.close()
    server.close()


def test_a_silent_engine_is_one_clear_error(tmp_path: Path) -> None:
    server = Scripted(tmp_path / "engine.sock", [[None], [None]])
    http = UnixHTTP(f"unix://{server.path}", timeout=5)
    with pytest.raises(EngineUnreachable, match="closed the connection without answering"):
        http.request("GET", "/a")
    server.close()


def test_a_stream_yields_lines_across_chunks(tmp_path: Path) -> None:
    body = b'4\r\n{"a"\r\n5\r\n:1}\n{\r\n5\r\n"b":2\r\n2\r\n}\n\r\n0\r\n\r\n'
    server = Scripted(tmp_path / "engine.sock", [[_ok(body, "Transfer-Encoding: chunked")]])
    stream = UnixHTTP(f"unix://{server.path}", timeout=5).stream("/events")
    assert stream.status == 200
    assert list(stream.lines()) == [b'{"a":1}\n', b'{"b":2}\n']
    server.close()
