"""A counting proxy: how many Engine API requests a tool makes, and which.

The tool talks to a unix socket of ours; each connection is relayed to the engine's
socket. The client's side is parsed as HTTP/1.1 (request line, headers, a body framed
by Content-Length or chunked encoding), so that every request on a keep-alive
connection is counted; the engine's answers are copied back untouched. A request that
upgrades the connection (attach, exec) is counted, and the rest of that connection is
relayed as raw bytes.

Requests are counted by method and path shape: the API version prefix and the query
are dropped and object ids and names become `{id}`, so that `DELETE
/v1.41/containers/3f2a...?v=1` counts as `DELETE /containers/{id}`.

    with CountingProxy(engine_socket, Path("/tmp/p.sock")) as proxy:
        run_the_tool(f"unix://{proxy.path}")
    proxy.counts   # Counter({"DELETE /containers/{id}": 1000, ...})
"""

from __future__ import annotations

import contextlib
import re
import socket
import socketserver
import threading
from collections import Counter
from pathlib import Path
from types import TracebackType

#: Second path segments that name a collection or an action, not an object.
_COLLECTION_WORDS = frozenset(
    {"json", "prune", "create", "load", "search", "get", "df", "events", "info", "version"}
)
#: Last path segments that name what is done to an object.
_ACTION_WORDS = frozenset(
    {"json", "start", "stop", "wait", "kill", "restart", "attach", "logs", "top", "changes"}
    | {"export", "stats", "resize", "pause", "unpause", "archive", "exec", "rename", "update"}
    | {"history", "push", "tag", "get", "connect", "disconnect", "upgrade"}
)
_VERSION = re.compile(r"^/v\d+\.\d+(?=/)")
_CHUNK = 1 << 16


def path_shape(target: str) -> str:
    """The request target without version, query or object names."""
    path = _VERSION.sub("", target.split("?", 1)[0])
    parts = path.strip("/").split("/")
    resource, rest = parts[0], parts[1:]
    if not rest or (len(rest) == 1 and rest[0] in _COLLECTION_WORDS):
        return "/" + "/".join(parts)
    # Image names contain slashes ("repo/app:1"): everything between the resource
    # and a trailing action word is the object's name.
    if len(rest) > 1 and rest[-1] in _ACTION_WORDS:
        return f"/{resource}/{{id}}/{rest[-1]}"
    return f"/{resource}/{{id}}"


class _Stream:
    """Buffered reads from a socket, for parsing requests."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.buf = b""

    def _fill(self) -> bool:
        data = self.sock.recv(_CHUNK)
        self.buf += data
        return bool(data)

    def until(self, marker: bytes) -> bytes | None:
        """Bytes up to and including `marker`; None at end of stream."""
        while (end := self.buf.find(marker)) < 0:
            if not self._fill():
                return None
        end += len(marker)
        out, self.buf = self.buf[:end], self.buf[end:]
        return out

    def exactly(self, count: int) -> bytes | None:
        while len(self.buf) < count:
            if not self._fill():
                return None
        out, self.buf = self.buf[:count], self.buf[count:]
        return out


class CountingProxy:
    """Relays `listen` (a unix socket it creates) to `upstream`, counting requests."""

    def __init__(self, upstream: Path, listen: Path) -> None:
        self.upstream = upstream
        self.path = listen
        self.counts: Counter[str] = Counter()
        self._lock = threading.Lock()
        self._server: socketserver.ThreadingUnixStreamServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    def count(self, method: str, target: str) -> None:
        with self._lock:
            self.counts[f"{method} {path_shape(target)}"] += 1

    def __enter__(self) -> CountingProxy:
        self.path.unlink(missing_ok=True)
        proxy = self

        class Handler(socketserver.BaseRequestHandler):
            def handle(self) -> None:
                proxy._relay(self.request)

        server = socketserver.ThreadingUnixStreamServer(str(self.path), Handler)
        server.daemon_threads = True
        self._server = server
        self._thread = threading.Thread(target=server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        self.path.unlink(missing_ok=True)

    def _relay(self, client: socket.socket) -> None:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as engine:
            engine.connect(str(self.upstream))
            back = threading.Thread(target=_copy, args=(engine, client), daemon=True)
            back.start()
            try:
                self._requests(_Stream(client), engine)
            except OSError:
                pass
            finally:
                _shutdown_write(engine)
                back.join()

    def _requests(self, client: _Stream, engine: socket.socket) -> None:
        """Forward requests one by one, counting each; raw bytes after an upgrade."""
        while (head := client.until(b"\r\n\r\n")) is not None:
            request_line, *lines = head.decode("latin-1").split("\r\n")
            method, target, *_ = [*request_line.split(" "), "", ""]
            self.count(method, target)
            engine.sendall(head)
            headers = {
                name.strip().lower(): value.strip()
                for name, _, value in (line.partition(":") for line in lines if line)
            }
            if not _forward_body(client, engine, headers):
                return
            if "upgrade" in headers.get("connection", "").lower():
                engine.sendall(client.buf)
                _copy(client.sock, engine)
                return


def _forward_body(client: _Stream, engine: socket.socket, headers: dict[str, str]) -> bool:
    """Forward one request's body; False when the client went away mid-body."""
    if "chunked" in headers.get("transfer-encoding", "").lower():
        while True:
            size_line = client.until(b"\r\n")
            if size_line is None:
                return False
            engine.sendall(size_line)
            size = int(size_line.split(b";")[0].strip() or b"0", 16)
            if size == 0:
                trailer = client.until(b"\r\n")  # no trailers from Docker's clients
                if trailer is None:
                    return False
                engine.sendall(trailer)
                return True
            data = client.exactly(size + 2)
            if data is None:
                return False
            engine.sendall(data)
    length = int(headers.get("content-length", "0") or "0")
    if length:
        data = client.exactly(length)
        if data is None:
            return False
        engine.sendall(data)
    return True


def _copy(src: socket.socket, dst: socket.socket) -> None:
    """Copy bytes until `src` ends, then end `dst`'s writing side."""
    try:
        while data := src.recv(_CHUNK):
            dst.sendall(data)
    except OSError:
        pass
    finally:
        _shutdown_write(dst)


def _shutdown_write(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_WR)
