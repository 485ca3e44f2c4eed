"""HTTP/1.1 over a unix socket, just what the Engine API needs of it.

The standard library's http.client parses every answer's headers with the
email package: a quarter of bilge's CPU while it removes a crowded host, time a
2-core machine would rather give the engine. Here the status line and headers
are split by hand, and the body is read by Content-Length, by chunks, or to the
end of the connection, which are the three ways an HTTP/1.1 server may send it.
"""

from __future__ import annotations

import io
import socket
from collections.abc import Iterator

#: Far beyond anything dockerd sends; a guard against a runaway peer.
MAX_LINE = 64 * 1024
MAX_HEADERS = 200
NO_BODY_STATUSES = frozenset({204, 304})


class Disconnected(ConnectionError):
    """The peer closed the connection before answering (a stale keep-alive)."""


class ProtocolError(OSError):
    """An answer that is not HTTP/1.x."""


class Connection:
    """One connection to a unix socket; requests go one after the other on it."""

    def __init__(self, socket_path: str, timeout: float | None) -> None:
        self.socket_path = socket_path
        self.timeout = timeout
        self.sock: socket.socket | None = None
        self._file: io.BufferedReader | None = None

    def request(self, method: str, target: str) -> tuple[int, bytes]:
        """Send one request and read its whole answer."""
        status, headers, file = self._exchange(method, target)
        bodiless = method == "HEAD" or status in NO_BODY_STATUSES
        body = b"" if bodiless else b"".join(_body(file, headers))
        if not _keeps_alive(headers, bodiless):
            self.close()
        return status, body

    def stream(self, target: str) -> tuple[int, Iterator[bytes]]:
        """GET an answer that goes on (the event stream), line by line."""
        status, headers, file = self._exchange("GET", target)
        return status, _lines(_body(file, headers))

    def close(self) -> None:
        sock, self.sock, self._file = self.sock, None, None
        if sock is not None:
            sock.close()

    def _exchange(self, method: str, target: str) -> tuple[int, dict[str, str], io.BufferedReader]:
        fresh = self.sock is None
        file = self._connect()
        assert self.sock is not None
        head = f"{method} {target} HTTP/1.1\r\nHost: docker\r\nUser-Agent: bilge\r\n"
        if method in ("POST", "PUT"):
            head += "Content-Length: 0\r\n"
        try:
            self.sock.sendall((head + "\r\n").encode("latin-1"))
            status, headers = _read_head(file)
        except Disconnected:
            self.close()
            if fresh:  # a new connection closed at once: not a stale keep-alive
                raise ProtocolError("the engine closed the connection without answering") from None
            raise
        except OSError:
            self.close()
            raise
        return status, headers, file

    def _connect(self) -> io.BufferedReader:
        if self._file is None:
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            sock.settimeout(self.timeout)
            try:
                sock.connect(self.socket_path)
            except OSError:
                sock.close()
                raise
            self.sock, self._file = sock, sock.makefile("rb")
        return self._file


def _read_head(file: io.BufferedReader) -> tuple[int, dict[str, str]]:
    """The status and headers of the next final answer (1xx ones are skipped)."""
    while True:
        line = _line(file)
        if not line:
            raise Disconnected("the engine closed the connection")
        version, _, rest = line.partition(b" ")
        code = rest[:3]
        if not version.startswith(b"HTTP/1.") or not code.isdigit():
            raise ProtocolError(f"not an HTTP answer: {line[:60]!r}")
        headers = _headers(file)
        headers[":version"] = version.decode("latin-1")
        status = int(code)
        if not 100 <= status < 200:
            return status, headers


def _headers(file: io.BufferedReader) -> dict[str, str]:
    headers: dict[str, str] = {}
    for _ in range(MAX_HEADERS):
        line = _line(file)
        if line in (b"\r\n", b"\n"):
            return headers
        if not line.endswith(b"\n"):
            raise ProtocolError("the answer ended inside its headers")
        name, sep, value = line.partition(b":")
        if not sep:
            raise ProtocolError(f"malformed header: {line[:60]!r}")
        headers[name.strip().lower().decode("latin-1")] = value.strip().decode("latin-1")
    raise ProtocolError("too many headers")


def _line(file: io.BufferedReader) -> bytes:
    line = file.readline(MAX_LINE + 1)
    if len(line) > MAX_LINE:
        raise ProtocolError("header line too long")
    return line


def _body(file: io.BufferedReader, headers: dict[str, str]) -> Iterator[bytes]:
    """The body's pieces, however the server chose to delimit it."""
    if "chunked" in headers.get("transfer-encoding", "").lower():
        yield from _chunks(file)
    elif "content-length" in headers:
        try:
            length = int(headers["content-length"])
        except ValueError:
            raise ProtocolError("malformed Content-Length") from None
        yield _exactly(file, length)
    else:  # delimited by the end of the connection
        while piece := file.read1(1 << 16):
            yield piece


def _chunks(file: io.BufferedReader) -> Iterator[bytes]:
    while True:
        size_line = _line(file).split(b";")[0].strip()
        try:
            size = int(size_line, 16)
        except ValueError:
            raise ProtocolError(f"malformed chunk size: {size_line[:20]!r}") from None
        if size == 0:
            while _line(file) not in (b"\r\n", b"\n", b""):
                pass  # trailers
            return
        yield _exactly(file, size)
        _line(file)  # the CRLF after each chunk


def _exactly(file: io.BufferedReader, length: int) -> bytes:
    data = file.read(length)
    if len(data) < length:
        raise ProtocolError("the connection closed in the middle of an answer")
    return data


def _lines(pieces: Iterator[bytes]) -> Iterator[bytes]:
    pending = b""
    for piece in pieces:
        pending += piece
        *complete, pending = pending.split(b"\n")
        for line in complete:
            yield line + b"\n"
    if pending:
        yield pending


def _keeps_alive(headers: dict[str, str], bodiless: bool) -> bool:
    """Whether the connection may carry the next request."""
    connection = headers.get("connection", "").lower()
    if headers.get(":version") == "HTTP/1.0":
        return "keep-alive" in connection
    framed = "content-length" in headers or "chunked" in headers.get("transfer-encoding", "")
    return "close" not in connection and (bodiless or framed)
