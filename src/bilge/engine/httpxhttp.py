"""HTTP/1.1 to the engine with httpx, over its unix-socket transport.

`httpx.Client(transport=httpx.HTTPTransport(uds=path))`, behind the same
interface as unixhttp.Connection: one kept-alive connection, the whole answer
by a deadline, the body under a size limit, a stream that pings a quiet engine.

httpx only knows timeouts per network operation. As for the registry
(registry/deadline.py), the deadline is kept by the network backend under
httpx's connection pool: every connect, read and write has its socket's
timeout set to the time left. The backend belongs to one connection object,
which one thread uses at a time, so the deadline is a plain attribute. The
idle wait of a stream is handled in the backend as well, where a quiet spell
can be waited out without httpcore seeing a timeout.
"""

from __future__ import annotations

import contextlib
import select
import socket
import time
import typing
from collections.abc import Callable, Iterator

import httpcore
import httpx

from bilge.engine.unixhttp import (
    MAX_LINE,
    Address,
    Disconnected,
    ProtocolError,
    TimedOut,
    TooLarge,
    Unanswered,
)

#: A local engine speaks plain HTTP and compresses nothing it is not asked to.
HEADERS = {"User-Agent": "bilge", "Accept-Encoding": "identity"}


class HttpxConnection:
    """One connection to an engine through httpx (see the module docstring)."""

    def __init__(self, address: Address, timeout: float | None) -> None:
        self.address = address
        self.timeout = timeout
        self.deadline: float | None = None
        self.idle: float | None = None
        self.on_idle: Callable[[], None] | None = None
        self.connects = 0
        self.sock: socket.socket | None = None
        uds = address if isinstance(address, str) else None
        if uds is None:
            host, port = typing.cast(tuple[str, int], address)
            self._base = f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"
        else:
            self._base = "http://docker"
        # No TLS on a local engine: no certificates to load.
        transport = httpx.HTTPTransport(uds=uds, verify=False)
        # httpx takes no network backend; its pool does, so the pool is made here.
        self._pool = httpcore.ConnectionPool(
            uds=uds, network_backend=_Backend(self), max_connections=1
        )
        transport._pool = self._pool
        self._client = httpx.Client(transport=transport, timeout=None, trust_env=False)

    def request(
        self, method: str, target: str, *, deadline: float | None = None, limit: int | None = None
    ) -> tuple[int, bytes]:
        if deadline is None and self.timeout is not None:
            deadline = time.monotonic() + self.timeout
        response = self._send(method, target, deadline)
        try:
            body = _read(response, limit)
        except httpx.RemoteProtocolError:
            raise ProtocolError("the connection closed in the middle of an answer") from None
        except httpx.HTTPError as exc:
            raise ProtocolError(str(exc) or type(exc).__name__) from None
        finally:
            response.close()  # an answer not read to its end closes the connection
        return response.status_code, body

    def stream(
        self, target: str, *, deadline: float | None, idle: float, on_idle: Callable[[], None]
    ) -> tuple[int, Iterator[bytes]]:
        response = self._send("GET", target, deadline)
        self.deadline, self.idle, self.on_idle = None, idle, on_idle
        return response.status_code, _lines(response)

    def interrupt(self) -> None:
        sock = self.sock
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

    def close(self) -> None:
        # The pool, not the client: a closed httpx client sends nothing more,
        # and a connection is opened again after a close.
        self._pool.close()

    def _send(self, method: str, target: str, deadline: float | None) -> httpx.Response:
        self.deadline, self.idle, self.on_idle = deadline, None, None
        connects = self.connects
        request = self._client.build_request(method, self._base + target, headers=HEADERS)
        try:
            return self._client.send(request, stream=True)
        except httpx.RemoteProtocolError:
            self.close()
            if self.connects > connects:  # a new connection closed at once
                raise Unanswered("the engine closed the connection without answering") from None
            raise Disconnected("the engine closed the connection") from None
        except httpx.HTTPError as exc:
            self.close()
            raise ProtocolError(str(exc) or type(exc).__name__) from None
        except BaseException:
            self.close()
            raise


def _read(response: httpx.Response, limit: int | None) -> bytes:
    """The whole body, refused when it announces or reaches more than `limit`."""
    announced = response.headers.get("content-length", "")
    if limit is not None and announced.isdigit() and int(announced) > limit:
        raise TooLarge(limit)
    pieces: list[bytes] = []
    total = 0
    for piece in response.iter_raw():
        total += len(piece)
        if limit is not None and total > limit:
            raise TooLarge(limit)
        pieces.append(piece)
    return pieces[0] if len(pieces) == 1 else b"".join(pieces)


def _lines(response: httpx.Response) -> Iterator[bytes]:
    pending = b""
    try:
        for piece in response.iter_raw():
            pending += piece
            *complete, pending = pending.split(b"\n")
            for line in complete:
                yield line + b"\n"
            if len(pending) > MAX_LINE * 16:  # one event is a few hundred bytes
                raise ProtocolError("a line of the stream is too long")
    except httpx.HTTPError as exc:
        raise ProtocolError(str(exc) or type(exc).__name__) from None
    finally:
        response.close()
    if pending:
        yield pending


class _Backend(httpcore.NetworkBackend):
    """Opens the sockets of one `HttpxConnection`, whose deadline they keep."""

    def __init__(self, owner: HttpxConnection) -> None:
        self._owner = owner

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: typing.Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.NetworkStream:
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        sock = self._open(family, (host, port))
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return _Stream(sock, self._owner)

    def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,
        socket_options: typing.Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.NetworkStream:
        return _Stream(self._open(socket.AF_UNIX, path), self._owner)

    def _open(self, family: int, address: Address) -> socket.socket:
        sock = socket.socket(family, socket.SOCK_STREAM)
        try:
            _arm(sock, self._owner)
            sock.connect(address)
        except TimeoutError as exc:
            sock.close()
            raise TimedOut("deadline passed") from exc
        except OSError:
            sock.close()
            raise
        self._owner.connects += 1
        self._owner.sock = sock
        return sock

    def sleep(self, seconds: float) -> None:
        time.sleep(seconds)


def _arm(sock: socket.socket, owner: HttpxConnection) -> None:
    """The socket's timeout: the time left, else the stream's idle period."""
    if owner.deadline is not None:
        left = owner.deadline - time.monotonic()
        if left <= 0:
            raise TimedOut("deadline passed")
        sock.settimeout(left)
    else:
        sock.settimeout(owner.idle)


class _Stream(httpcore.NetworkStream):
    def __init__(self, sock: socket.socket, owner: HttpxConnection) -> None:
        self._sock, self._owner = sock, owner

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        owner = self._owner
        while True:
            _arm(self._sock, owner)
            try:
                return self._sock.recv(max_bytes)
            except TimeoutError:
                if owner.deadline is not None or owner.on_idle is None:
                    raise TimedOut("deadline passed") from None
                owner.on_idle()

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        if not buffer:  # the end of a bodiless request: sending nothing may still fail
            return
        _arm(self._sock, self._owner)
        try:
            self._sock.sendall(buffer)
        except TimeoutError as exc:
            raise TimedOut("deadline passed") from exc

    def close(self) -> None:
        self._sock.close()

    def get_extra_info(self, info: str) -> typing.Any:
        if info == "socket":
            return self._sock
        if info == "is_readable":
            return _readable(self._sock)
        return None


def _readable(sock: socket.socket) -> bool:
    """Whether an idle kept-alive socket has something to read: the engine closed
    it (httpcore then opens a new connection rather than reusing this one)."""
    if sock.fileno() < 0:
        return True
    poll = select.poll()
    poll.register(sock, select.POLLIN)
    return bool(poll.poll(0))
