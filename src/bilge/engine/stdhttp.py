"""HTTP/1.1 to the engine with the standard library's http.client.

`http.client.HTTPConnection` with a `connect` that opens a unix socket (or tcp
for plain tcp://): one request after the other on one kept-alive connection,
the whole answer by a deadline, the body under a size limit, and a stream that
pings a quiet engine. It replaced a hand-written HTTP/1.1 client, which was no
faster end to end ("One HTTP story" in docs/benchmarks.md).

http.client only knows a timeout per socket operation. The whole-answer
deadline comes from the socket itself: `_DeadlineSocket` sets its timeout to
the time left before every receive and send, which is what http.client's
buffered file reads through (`SocketIO.readinto` calls `recv_into`), so a head
or a body dribbled a byte at a time fails at the deadline. The idle wait of a
stream is handled there too, before http.client sees a timeout: its file is
unusable once one has passed through it.
"""

from __future__ import annotations

import contextlib
import http.client
import socket
import time
from collections.abc import Callable, Iterator
from typing import Any

#: One event of the stream is a few hundred bytes; a guard against a runaway peer.
MAX_LINE = 64 * 1024
PIECE = 1 << 16

#: What to dial: a unix socket's path, a (host, port) pair, or a dialer that opens
#: a connected socket by the deadline it is given (ssh://, see sshhttp.py).
Dialer = Callable[[float | None], socket.socket]
Address = str | tuple[str, int] | Dialer


class Disconnected(ConnectionError):
    """The peer closed a kept-alive connection before answering: worth one retry."""


class ProtocolError(OSError):
    """An answer that is not HTTP/1.x, or one cut off."""


class Unanswered(ProtocolError):
    """A fresh connection closed before any answer: nothing engine-like listens."""


class TimedOut(TimeoutError):
    """The whole answer did not arrive before the request's deadline."""


class TooLarge(ProtocolError):
    """The answer's body is larger than the request allows."""

    def __init__(self, limit: int) -> None:
        super().__init__(f"the answer is larger than {limit} bytes")
        self.limit = limit


class _DeadlineSocket(socket.socket):
    """A socket whose every receive and send keeps to `deadline`; without one,
    a receive that waits `idle` seconds calls `on_idle` and waits again."""

    deadline: float | None = None
    on_idle: Callable[[], None] | None = None

    def arm(self) -> None:
        if self.deadline is not None:
            left = self.deadline - time.monotonic()
            if left <= 0:
                raise TimedOut("deadline passed")
            self.settimeout(left)

    def recv_into(self, buffer: Any, nbytes: int = 0, flags: int = 0) -> int:
        while True:
            self.arm()
            try:
                return super().recv_into(buffer, nbytes, flags)
            except TimeoutError:
                if self.deadline is not None or self.on_idle is None:
                    raise TimedOut("deadline passed") from None
                self.on_idle()

    def sendall(self, data: Any, flags: int = 0) -> None:
        self.arm()
        super().sendall(data, flags)


class _Connection(http.client.HTTPConnection):
    def __init__(self, address: Address) -> None:
        self.address = address
        host, port = address if isinstance(address, tuple) else ("docker", None)
        super().__init__(host, port)
        self.deadline: float | None = None

    def connect(self) -> None:
        if callable(self.address):
            raw = self.address(self.deadline)
            dialed = _DeadlineSocket(fileno=raw.detach())
            dialed.deadline = self.deadline
            self.sock = dialed
            return
        family = socket.AF_UNIX if isinstance(self.address, str) else socket.AF_INET
        if not isinstance(self.address, str) and ":" in self.address[0]:
            family = socket.AF_INET6
        sock = _DeadlineSocket(family, socket.SOCK_STREAM)
        sock.deadline = self.deadline
        try:
            sock.arm()
            sock.connect(self.address)
            if family != socket.AF_UNIX:
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except OSError:
            sock.close()
            raise
        self.sock = sock


class Connection:
    """One connection to an engine; requests go one after the other on it.

    `address` is a unix socket's path or a (host, port) pair. `timeout` bounds
    the whole answer of each request that names no deadline (None: no bound)."""

    def __init__(self, address: Address, timeout: float | None) -> None:
        self.address = address
        self.timeout = timeout
        self._conn = _Connection(address)

    @property
    def sock(self) -> _DeadlineSocket | None:
        sock = self._conn.sock
        return sock if isinstance(sock, _DeadlineSocket) else None

    def request(
        self, method: str, target: str, *, deadline: float | None = None, limit: int | None = None
    ) -> tuple[int, bytes]:
        """Send one request and read its whole answer, by `deadline` (else now +
        timeout) and of at most `limit` bytes of body (TooLarge otherwise)."""
        if deadline is None and self.timeout is not None:
            deadline = time.monotonic() + self.timeout
        try:
            response = self._exchange(method, target, deadline)
            # Read even when there is no body: http.client sends the next request
            # only once this answer is marked read.
            body = _read(response, limit)
        except http.client.IncompleteRead:
            self.close()
            raise ProtocolError("the connection closed in the middle of an answer") from None
        except http.client.HTTPException as exc:
            self.close()
            raise _protocol(exc) from None
        except BaseException:
            self.close()  # whatever is left of the answer would be read as the next one
            raise
        if response.will_close:
            self.close()
        return response.status, body

    def stream(
        self, target: str, *, deadline: float | None, idle: float, on_idle: Callable[[], None]
    ) -> tuple[int, Iterator[bytes]]:
        """GET an answer that goes on (the event stream), line by line. Its head
        must arrive by `deadline`; then `on_idle` runs whenever `idle` seconds
        pass without a byte."""
        try:
            response = self._exchange("GET", target, deadline)
        except http.client.HTTPException as exc:
            self.close()
            raise _protocol(exc) from None
        sock = self.sock
        if sock is not None:
            sock.deadline, sock.on_idle = None, on_idle
            sock.settimeout(idle)
        return response.status, _lines(response)

    def interrupt(self) -> None:
        """Shut the socket down from another thread: a reader blocked in recv wakes."""
        sock = self.sock
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

    def close(self) -> None:
        self._conn.close()

    def _exchange(
        self, method: str, target: str, deadline: float | None
    ) -> http.client.HTTPResponse:
        fresh = self._conn.sock is None
        self._conn.deadline = deadline
        try:
            sock = self.sock
            if sock is not None:
                sock.deadline, sock.on_idle = deadline, None
            self._conn.request(method, target, headers={"User-Agent": "bilge"})
            response = self._conn.getresponse()
            if response.msg.defects:  # e.g. headers cut off: http.client carries on
                raise ProtocolError("the answer's headers are malformed or cut off")
            return response
        except http.client.RemoteDisconnected:
            self.close()
            if fresh:  # a new connection closed at once: not a stale keep-alive
                raise Unanswered("the engine closed the connection without answering") from None
            raise Disconnected("the engine closed the connection") from None
        except TimeoutError as exc:
            self.close()
            raise TimedOut("deadline passed") from exc
        except OSError:
            self.close()
            raise


def _protocol(exc: http.client.HTTPException) -> ProtocolError:
    """One line, whatever the peer sent (http.client quotes a bad status line raw)."""
    if isinstance(exc, http.client.BadStatusLine):
        return ProtocolError(f"not an HTTP answer: {str(exc.args[0])[:60]!r}")
    return ProtocolError(repr(str(exc))[1:-1] or type(exc).__name__)


def _read(response: http.client.HTTPResponse, limit: int | None) -> bytes:
    """The whole body, refused when it announces or reaches more than `limit`."""
    announced = response.getheader("content-length")
    if announced is not None and not response.chunked and not announced.strip().isdigit():
        # http.client would read such an answer to the end of the connection.
        raise ProtocolError("malformed Content-Length")
    if limit is not None and response.length is not None and response.length > limit:
        raise TooLarge(limit)
    pieces: list[bytes] = []
    total = 0
    while piece := response.read(PIECE):
        total += len(piece)
        if limit is not None and total > limit:
            raise TooLarge(limit)
        pieces.append(piece)
    if response.length:  # http.client returns a body cut short without a word
        raise http.client.IncompleteRead(b"".join(pieces), response.length)
    return pieces[0] if len(pieces) == 1 else b"".join(pieces)


def _lines(response: http.client.HTTPResponse) -> Iterator[bytes]:
    pending = b""
    try:
        while piece := response.read1(PIECE):
            pending += piece
            *complete, pending = pending.split(b"\n")
            for line in complete:
                yield line + b"\n"
            if len(pending) > MAX_LINE * 16:  # one event is a few hundred bytes
                raise ProtocolError("a line of the stream is too long")
    except http.client.HTTPException as exc:
        raise _protocol(exc) from None
    if pending:
        yield pending
