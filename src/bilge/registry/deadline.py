"""Whole-answer deadlines and size limits for the registry's HTTP (httpx).

httpx only knows timeouts per network operation: a registry that sends a byte
every few seconds would never time out. Here a thread's current deadline (set
by `Deadlines.within` around one request, token round trip included) is read
by the network backend under httpx's connection pool, which shortens the
timeout of every connect, TLS handshake, read and write to the time that is
left. Requests run synchronously in their caller's thread, so a thread-local
deadline belongs to exactly one request.
"""

from __future__ import annotations

import contextlib
import ssl
import threading
import time
import typing
from collections.abc import Iterator

import httpcore
import httpx

#: The whole answer of one request (token round trip included) must arrive
#: within this; a registry that needs longer is broken or overloaded.
REQUEST_TIMEOUT_SECONDS = 60.0


class TooLarge(Exception):
    """An answer above the size limit, refused before or while it is read."""

    def __init__(self, limit: int) -> None:
        super().__init__(f"the answer is larger than {_size(limit)}; refused")
        self.limit = limit


def _size(limit: int) -> str:
    return f"{limit >> 20} MiB" if limit >= 1 << 20 else f"{limit} bytes"


class Deadlines:
    """The current request's deadline, per thread."""

    def __init__(self) -> None:
        self._local = threading.local()

    @contextlib.contextmanager
    def within(self, seconds: float) -> Iterator[None]:
        """A deadline `seconds` from now, or the enclosing one if that is sooner."""
        before: float | None = getattr(self._local, "at", None)
        at = time.monotonic() + seconds
        self._local.at = at if before is None else min(before, at)
        try:
            yield
        finally:
            self._local.at = before

    def expired(self) -> bool:
        at: float | None = getattr(self._local, "at", None)
        return at is not None and time.monotonic() >= at

    def clamp(self, timeout: float | None, kind: type[httpcore.TimeoutException]) -> float | None:
        """`timeout` shortened to the time left; `kind` raised when none is."""
        at: float | None = getattr(self._local, "at", None)
        if at is None:
            return timeout
        left = at - time.monotonic()
        if left <= 0:
            raise kind("deadline passed")
        return left if timeout is None else min(timeout, left)


def read_limited(response: httpx.Response, limit: int, deadlines: Deadlines) -> bytes:
    """A streamed answer's body: refused when it announces or reaches more than
    `limit` bytes (decoded), never read whole into memory first."""
    announced = response.headers.get("content-length", "")
    if response.request.method != "HEAD" and announced.isdigit() and int(announced) > limit:
        raise TooLarge(limit)
    pieces: list[bytes] = []
    total = 0
    for piece in response.iter_bytes():
        total += len(piece)
        if total > limit:
            raise TooLarge(limit)
        pieces.append(piece)
        if deadlines.expired():  # a transport of one's own bypasses the backend
            raise httpx.ReadTimeout("deadline passed", request=response.request)
    return b"".join(pieces)


def transport(verify: ssl.SSLContext | bool, deadlines: Deadlines) -> httpx.HTTPTransport:
    """httpx's transport over a network backend that keeps to `deadlines`."""
    made = httpx.HTTPTransport(verify=verify)
    context = verify if isinstance(verify, ssl.SSLContext) else httpx.create_ssl_context(verify)
    # httpx takes no network backend; its pool does, so the pool is made here.
    made._pool = httpcore.ConnectionPool(ssl_context=context, network_backend=_Backend(deadlines))
    return made


class _Backend(httpcore.NetworkBackend):
    def __init__(self, deadlines: Deadlines) -> None:
        self._inner = httpcore.SyncBackend()
        self._deadlines = deadlines

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: typing.Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.NetworkStream:
        timeout = self._deadlines.clamp(timeout, httpcore.ConnectTimeout)
        inner = self._inner.connect_tcp(host, port, timeout, local_address, socket_options)
        return _Stream(inner, self._deadlines)

    def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,
        socket_options: typing.Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.NetworkStream:
        timeout = self._deadlines.clamp(timeout, httpcore.ConnectTimeout)
        inner = self._inner.connect_unix_socket(path, timeout, socket_options)
        return _Stream(inner, self._deadlines)

    def sleep(self, seconds: float) -> None:
        self._inner.sleep(seconds)


class _Stream(httpcore.NetworkStream):
    def __init__(self, inner: httpcore.NetworkStream, deadlines: Deadlines) -> None:
        self._inner, self._deadlines = inner, deadlines

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return self._inner.read(max_bytes, self._deadlines.clamp(timeout, httpcore.ReadTimeout))

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self._inner.write(buffer, self._deadlines.clamp(timeout, httpcore.WriteTimeout))

    def close(self) -> None:
        self._inner.close()

    def start_tls(
        self,
        ssl_context: ssl.SSLContext,
        server_hostname: str | None = None,
        timeout: float | None = None,
    ) -> httpcore.NetworkStream:
        timeout = self._deadlines.clamp(timeout, httpcore.ConnectTimeout)
        return _Stream(
            self._inner.start_tls(ssl_context, server_hostname, timeout), self._deadlines
        )

    def get_extra_info(self, info: str) -> typing.Any:
        return self._inner.get_extra_info(info)
