"""HTTP/1.1 over a stream socket (unix or tcp), just what the Engine API needs of it.

The standard library's http.client parses every answer's headers with the
email package: a quarter of bilge's CPU while it removes a crowded host, time a
2-core machine would rather give the engine. Here the status line and headers
are split by hand, and the body is read by Content-Length, by chunks, or to the
end of the connection, which are the three ways an HTTP/1.1 server may send it.

Every request has a deadline for its whole answer (connect, headers and body):
before each send and receive the socket's timeout is set to the time that is
left, so a peer that never answers, or dribbles a byte a second, fails at the
deadline and not a read timeout later per byte. Bodies have a size limit,
checked against Content-Length before reading and counted while reading
otherwise. Buffering is done here rather than by `socket.makefile`, whose file
is unusable after a timeout: a long-lived stream must be able to wait out a
quiet spell (`on_idle`) and carry on reading.
"""

from __future__ import annotations

import contextlib
import socket
import time
from collections.abc import Callable, Iterator

#: Far beyond anything dockerd sends; a guard against a runaway peer.
MAX_LINE = 64 * 1024
MAX_HEADERS = 200
NO_BODY_STATUSES = frozenset({204, 304})
RECV_SIZE = 1 << 16

Address = str | tuple[str, int]


class Disconnected(ConnectionError):
    """The peer closed the connection before answering (a stale keep-alive)."""


class ProtocolError(OSError):
    """An answer that is not HTTP/1.x."""


class Unanswered(ProtocolError):
    """A fresh connection closed before any answer: nothing engine-like listens."""


class TimedOut(TimeoutError):
    """The whole answer did not arrive before the request's deadline."""


class TooLarge(ProtocolError):
    """The answer's body is larger than the request allows."""

    def __init__(self, limit: int) -> None:
        super().__init__(f"the answer is larger than {limit} bytes")
        self.limit = limit


class Reader:
    """Buffered reading from a socket under a deadline (`time.monotonic()` value).

    Without a deadline the socket's own timeout is the idle period of a stream:
    when it passes with nothing received, `on_idle` is called and reading goes
    on if it returns (it raises when the peer is to be given up)."""

    __slots__ = ("buf", "deadline", "on_idle", "sock")

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.buf = bytearray()
        self.deadline: float | None = None
        self.on_idle: Callable[[], None] | None = None

    def arm(self) -> None:
        """Set the socket's timeout to the time left before the deadline."""
        if self.deadline is not None:
            left = self.deadline - time.monotonic()
            if left <= 0:
                raise TimedOut("deadline passed")
            self.sock.settimeout(left)

    def fill(self) -> bool:
        """Receive more into the buffer; False at the end of the connection."""
        while True:
            self.arm()
            try:
                data = self.sock.recv(RECV_SIZE)
            except TimeoutError:
                if self.deadline is not None or self.on_idle is None:
                    raise TimedOut("deadline passed") from None
                self.on_idle()
                continue
            if not data:
                return False
            self.buf += data
            return True

    def line(self, limit: int = MAX_LINE) -> bytes:
        """The next line with its newline; what is left at the end of the connection."""
        start = 0
        while True:
            end = self.buf.find(b"\n", start)
            if end >= 0:
                return self.take(end + 1)
            if len(self.buf) > limit:
                raise ProtocolError("line too long")
            start = len(self.buf)
            if not self.fill():
                return self.take(len(self.buf))

    def exactly(self, length: int) -> bytes:
        while len(self.buf) < length:
            if not self.fill():
                raise ProtocolError("the connection closed in the middle of an answer")
        return self.take(length)

    def some(self) -> bytes:
        """What is buffered, or the next piece received (b"" at the end)."""
        if not self.buf and not self.fill():
            return b""
        return self.take(len(self.buf))

    def take(self, length: int) -> bytes:
        data = bytes(self.buf[:length])
        del self.buf[:length]  # cheap: bytearray drops its head without moving the rest
        return data


class Connection:
    """One connection to an engine; requests go one after the other on it.

    `address` is a unix socket's path or a (host, port) pair. `timeout` bounds
    the whole answer of each request that names no deadline (None: no bound)."""

    def __init__(self, address: Address, timeout: float | None) -> None:
        self.address = address
        self.timeout = timeout
        self.sock: socket.socket | None = None
        self._reader: Reader | None = None

    @property
    def socket_path(self) -> str:
        return self.address if isinstance(self.address, str) else ""

    def request(
        self, method: str, target: str, *, deadline: float | None = None, limit: int | None = None
    ) -> tuple[int, bytes]:
        """Send one request and read its whole answer, by `deadline` (else now +
        timeout) and of at most `limit` bytes of body (TooLarge otherwise)."""
        if deadline is None and self.timeout is not None:
            deadline = time.monotonic() + self.timeout
        try:
            status, headers, reader = self._exchange(method, target, deadline)
            bodiless = method == "HEAD" or status in NO_BODY_STATUSES
            body = b"" if bodiless else _join(_body(reader, headers, limit), limit)
        except BaseException:
            self.close()  # whatever is left of the answer would be read as the next one
            raise
        if not _keeps_alive(headers, bodiless):
            self.close()
        return status, body

    def stream(
        self, target: str, *, deadline: float | None, idle: float, on_idle: Callable[[], None]
    ) -> tuple[int, Iterator[bytes]]:
        """GET an answer that goes on (the event stream), line by line. Its head
        must arrive by `deadline`; then `on_idle` runs whenever `idle` seconds
        pass without a byte."""
        status, headers, reader = self._exchange("GET", target, deadline)
        reader.deadline, reader.on_idle = None, on_idle
        reader.sock.settimeout(idle)
        return status, _lines(_body(reader, headers, None))

    def interrupt(self) -> None:
        """Shut the socket down from another thread: a reader blocked in recv wakes."""
        sock = self.sock
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

    def close(self) -> None:
        sock, self.sock, self._reader = self.sock, None, None
        if sock is not None:
            sock.close()

    def _exchange(
        self, method: str, target: str, deadline: float | None
    ) -> tuple[int, dict[str, str], Reader]:
        fresh = self.sock is None
        try:
            reader = self._connect(deadline)
            reader.deadline = deadline
            head = f"{method} {target} HTTP/1.1\r\nHost: docker\r\nUser-Agent: bilge\r\n"
            if method in ("POST", "PUT"):
                head += "Content-Length: 0\r\n"
            reader.arm()
            reader.sock.sendall((head + "\r\n").encode("latin-1"))
            status, headers = _read_head(reader)
        except Disconnected:
            self.close()
            if fresh:  # a new connection closed at once: not a stale keep-alive
                raise Unanswered("the engine closed the connection without answering") from None
            raise
        except TimeoutError as exc:  # connect and sendall time out as the plain kind
            self.close()
            raise TimedOut("deadline passed") from exc
        except OSError:
            self.close()
            raise
        return status, headers, reader

    def _connect(self, deadline: float | None) -> Reader:
        if self._reader is None:
            family = socket.AF_UNIX if isinstance(self.address, str) else socket.AF_INET
            if not isinstance(self.address, str) and ":" in self.address[0]:
                family = socket.AF_INET6
            sock = socket.socket(family, socket.SOCK_STREAM)
            if family != socket.AF_UNIX:
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            reader = Reader(sock)
            reader.deadline = deadline
            try:
                reader.arm()
                sock.connect(self.address)
            except OSError:
                sock.close()
                raise
            self.sock, self._reader = sock, reader
        return self._reader


def _read_head(reader: Reader) -> tuple[int, dict[str, str]]:
    """The status and headers of the next final answer (1xx ones are skipped)."""
    while True:
        line = reader.line()
        if not line:
            raise Disconnected("the engine closed the connection")
        version, _, rest = line.partition(b" ")
        code = rest[:3]
        if not version.startswith(b"HTTP/1.") or not code.isdigit():
            raise ProtocolError(f"not an HTTP answer: {line[:60]!r}")
        headers = _headers(reader)
        headers[":version"] = version.decode("latin-1")
        status = int(code)
        if not 100 <= status < 200:
            return status, headers


def _headers(reader: Reader) -> dict[str, str]:
    headers: dict[str, str] = {}
    for _ in range(MAX_HEADERS):
        line = reader.line()
        if line in (b"\r\n", b"\n"):
            return headers
        if not line.endswith(b"\n"):
            raise ProtocolError("the answer ended inside its headers")
        name, sep, value = line.partition(b":")
        if not sep:
            raise ProtocolError(f"malformed header: {line[:60]!r}")
        headers[name.strip().lower().decode("latin-1")] = value.strip().decode("latin-1")
    raise ProtocolError("too many headers")


def _body(reader: Reader, headers: dict[str, str], limit: int | None) -> Iterator[bytes]:
    """The body's pieces, however the server chose to delimit it; a length
    announced above `limit` is refused before any of it is read."""
    if "chunked" in headers.get("transfer-encoding", "").lower():
        yield from _chunks(reader, limit)
    elif "content-length" in headers:
        try:
            length = int(headers["content-length"])
        except ValueError:
            raise ProtocolError("malformed Content-Length") from None
        if limit is not None and length > limit:
            raise TooLarge(limit)
        yield reader.exactly(length)
    else:  # delimited by the end of the connection
        while piece := reader.some():
            yield piece


def _chunks(reader: Reader, limit: int | None) -> Iterator[bytes]:
    total = 0
    while True:
        size_line = reader.line().split(b";")[0].strip()
        try:
            size = int(size_line, 16)
        except ValueError:
            raise ProtocolError(f"malformed chunk size: {size_line[:20]!r}") from None
        if size == 0:
            while reader.line() not in (b"\r\n", b"\n", b""):
                pass  # trailers
            return
        total += size
        if limit is not None and total > limit:
            raise TooLarge(limit)
        yield reader.exactly(size)
        reader.line()  # the CRLF after each chunk


def _join(pieces: Iterator[bytes], limit: int | None) -> bytes:
    """The whole body, counted as it comes (an answer delimited by the end of
    the connection announces no length)."""
    got: list[bytes] = []
    total = 0
    for piece in pieces:
        total += len(piece)
        if limit is not None and total > limit:
            raise TooLarge(limit)
        got.append(piece)
    return got[0] if len(got) == 1 else b"".join(got)


def _lines(pieces: Iterator[bytes]) -> Iterator[bytes]:
    pending = b""
    for piece in pieces:
        pending += piece
        *complete, pending = pending.split(b"\n")
        for line in complete:
            yield line + b"\n"
        if len(pending) > MAX_LINE * 16:  # one event is a few hundred bytes
            raise ProtocolError("a line of the stream is too long")
    if pending:
        yield pending


def _keeps_alive(headers: dict[str, str], bodiless: bool) -> bool:
    """Whether the connection may carry the next request."""
    connection = headers.get("connection", "").lower()
    if headers.get(":version") == "HTTP/1.0":
        return "keep-alive" in connection
    framed = "content-length" in headers or "chunked" in headers.get("transfer-encoding", "")
    return "close" not in connection and (bodiless or framed)
