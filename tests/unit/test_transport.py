"""The unix-socket transport and the engine's reading of statuses, against a tiny
HTTP server on a unix socket that answers what each test tells it to."""

from __future__ import annotations

import json
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
