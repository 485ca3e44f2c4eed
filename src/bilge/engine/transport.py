"""HTTP to the engine: the standard library for unix sockets and plain tcp, docker-py for the rest.

Removing a crowded host is a burst of small requests: one check and one
removal per object. A local engine (unix://) and plain tcp:// are spoken to
with http.client, one keep-alive connection per thread (stdhttp.py): no
dependency, and as fast end to end as a hand-written client and faster than
httpx, as measured ("One HTTP story" in docs/benchmarks.md). Every other
address but ssh:// (TLS, npipe://) goes through docker-py's APIClient
(sdkhttp.py); ssh:// through the system's ssh client and `docker system
dial-stdio`, with http.client over it (sshhttp.py).

Every request has a deadline for its whole answer and a size limit (DESIGN.md,
safety rule 8); either failing is an `EngineError` of one line naming the
engine and the request. The event stream has no deadline but notices an
engine that stopped answering (`EVENTS_IDLE_SECONDS`).

A transport only moves bytes: `request` returns the status and the body, and
`docker.py` decides what a status means.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator, Mapping
from typing import Any, Protocol
from urllib.parse import quote, urlencode, urlsplit

from bilge.engine.stdhttp import (
    Address,
    Connection,
    Disconnected,
    ProtocolError,
    TimedOut,
    TooLarge,
    Unanswered,
)
from bilge.errors import EngineError, EngineUnreachable

Params = dict[str, str]


class Stream(Protocol):
    """A streamed answer, one line at a time; `close` may be called from another thread."""

    status: int

    def lines(self) -> Iterator[bytes]: ...
    def close(self) -> None: ...


class Transport(Protocol):
    host: str

    def request(self, method: str, path: str, params: Params | None = None) -> tuple[int, bytes]:
        """`path` is absolute (e.g. "/v1.41/containers/json"), already quoted."""
        ...

    def stream(self, path: str, params: Params | None = None) -> Stream:
        """GET a long answer (the event stream) on a connection of its own."""
        ...

    def close(self) -> None: ...


def quoted(segment: str) -> str:
    """One path segment: ids, names and image references (`repo/name:tag`)."""
    return quote(segment, safe="/:@")


def with_query(path: str, params: Params | None) -> str:
    return f"{path}?{urlencode(params)}" if params else path


#: The whole answer of one request must arrive within this (connect, headers and
#: body). A listing of a crowded host takes the engine seconds, not minutes; a
#: hung engine must not hang bilge (DESIGN.md, safety rule 8).
REQUEST_TIMEOUT_SECONDS = 60.0
#: The largest answer bilge reads from an engine. The biggest are the listings:
#: a container's entry in /containers/json is 1-3 KB with its labels and
#: mounts, so 256 MiB holds some 100 000 containers, far beyond any host, while
#: a runaway or hostile peer is stopped before it fills the memory bilge needs
#: on a host whose disk is full.
MAX_ANSWER_BYTES = 256 << 20
#: The event stream has no deadline (the engine may stay quiet for hours) and
#: dockerd sends nothing while nothing happens: after this long without a byte
#: the engine is asked /_ping, and a stream whose engine does not answer that
#: within the request timeout is given up (a stopped or wedged engine keeps its
#: socket open, so reading alone would wait for ever).
EVENTS_IDLE_SECONDS = 30.0


class LeanHTTP:
    """HTTP/1.1 with http.client, one persistent connection per thread."""

    def __init__(
        self,
        host: str,
        address: Address,
        *,
        timeout: float = REQUEST_TIMEOUT_SECONDS,
        max_answer: int = MAX_ANSWER_BYTES,
        events_idle: float = EVENTS_IDLE_SECONDS,
    ) -> None:
        self.host = host
        self.address = address
        self.timeout = timeout
        self.max_answer = max_answer
        self.events_idle = events_idle
        self._local = threading.local()
        self._lock = threading.Lock()
        self._all: list[Connection] = []

    def request(self, method: str, path: str, params: Params | None = None) -> tuple[int, bytes]:
        url = with_query(path, params)
        deadline = time.monotonic() + self.timeout
        conn = self._connection()
        try:
            try:
                return conn.request(method, url, deadline=deadline, limit=self.max_answer)
            except (Disconnected, BrokenPipeError, ConnectionResetError) as dropped:
                # The engine closed an idle keep-alive connection before it read the
                # request: try once more on a fresh one, within the same deadline.
                conn.close()
                status, body = conn.request(method, url, deadline=deadline, limit=self.max_answer)
                if status == 404 and method != "GET":
                    # Or it did read it and died before answering: a removal sent
                    # twice finds nothing the second time, which is no "already
                    # gone". Said as a lost answer, for apply to settle.
                    raise EngineError(
                        f"engine at {self.host}: the connection dropped during {method}"
                        f" {path} and the repeated request found nothing; it may have been done"
                    ) from dropped
                return status, body
        except TimedOut as exc:
            self._drop()
            raise self._late(method, path) from exc
        except TooLarge as exc:
            self._drop()
            raise self._too_large(method, path, exc.limit) from exc
        except ProtocolError as exc:
            self._drop()
            if isinstance(exc, Unanswered):
                raise self._unreachable(exc) from exc
            raise EngineError(
                f"engine at {self.host} answered badly ({method} {path}): {exc}"
            ) from exc
        except OSError as exc:
            self._drop()
            raise self._unreachable(exc) from exc

    def _late(self, method: str, path: str) -> EngineError:
        return EngineError(
            f"engine at {self.host} did not answer within {self.timeout:g}s ({method} {path})"
        )

    def _too_large(self, method: str, path: str, limit: int) -> EngineError:
        return EngineError(
            f"engine at {self.host} sent an answer larger than {limit >> 20} MiB"
            f" ({method} {path}); refused"
        )

    def _unreachable(self, exc: BaseException) -> EngineUnreachable:
        reason = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
        return EngineUnreachable(f"cannot connect to the engine at {self.host} ({reason})")

    def _connection(self) -> Connection:
        conn: Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = Connection(self.address, self.timeout)
            self._local.conn = conn
            with self._lock:
                self._all.append(conn)
        return conn

    def _drop(self) -> None:
        conn: Connection | None = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None
            with self._lock:
                self._all.remove(conn)

    def close(self) -> None:
        with self._lock:
            conns, self._all = self._all, []
        for conn in conns:
            conn.close()

    def stream(self, path: str, params: Params | None = None) -> Stream:
        # No deadline once the head is in: the engine may send nothing for hours;
        # `close` ends it, and `_alive` gives up a peer that stopped answering.
        conn = Connection(self.address, None)
        deadline = time.monotonic() + self.timeout
        try:
            status, lines = conn.stream(
                with_query(path, params), deadline=deadline, idle=self.events_idle,
                on_idle=self._alive,
            )  # fmt: skip
        except TimedOut as exc:
            conn.close()
            raise self._late("GET", path) from exc
        except OSError as exc:
            conn.close()
            raise self._unreachable(exc) from exc
        return _LeanStream(conn, status, lines, self.host)

    def _alive(self) -> None:
        """Called when the event stream has been quiet: raises if the engine no
        longer answers a ping (the caller reconnects when the engine is back)."""
        probe = Connection(self.address, self.timeout)
        try:
            status, _ = probe.request("GET", "/_ping", limit=4096)
        except OSError as exc:
            raise EngineError(
                f"engine at {self.host} stopped answering: the event stream was quiet for"
                f" {self.events_idle:g}s and /_ping got no answer within {self.timeout:g}s"
                f" ({exc.strerror or type(exc).__name__})"
            ) from exc
        finally:
            probe.close()
        if status != 200:
            raise EngineError(f"engine at {self.host} answered /_ping with HTTP {status}")


class UnixHTTP(LeanHTTP):
    """The engine on a local unix socket (unix:///var/run/docker.sock)."""

    def __init__(self, host: str, **kwargs: Any) -> None:
        self.socket_path = host.removeprefix("unix://")
        super().__init__(host, self.socket_path, **kwargs)


class TcpHTTP(LeanHTTP):
    """The engine on plain tcp:// (TLS goes through docker-py, see `open_transport`)."""

    def __init__(self, host: str, **kwargs: Any) -> None:
        parts = urlsplit(host)
        try:
            port = parts.port or 2375
        except ValueError as exc:
            raise EngineUnreachable(f"engine address {host}: {exc}") from exc
        if not parts.hostname:
            raise EngineUnreachable(f"engine address {host}: no host name")
        super().__init__(host, (parts.hostname, port), **kwargs)


class _LeanStream:
    def __init__(self, conn: Connection, status: int, lines: Iterator[bytes], host: str) -> None:
        self._conn, self._lines, self._host = conn, lines, host
        self._closed = False
        self.status = status

    def lines(self) -> Iterator[bytes]:
        try:
            yield from self._lines
        except ConnectionError:
            return  # the engine went away (a restart): the stream ends, the caller reconnects
        except (OSError, ValueError) as exc:
            if self._closed:
                return  # closed under us
            raise EngineError(f"event stream from {self._host}: {exc}") from exc
        finally:
            self._conn.close()

    def close(self) -> None:
        # Only shut the socket down: that wakes a reader blocked in recv, which
        # then closes the connection itself (closing it here would pull the
        # response out from under the reader).
        self._closed = True
        self._conn.interrupt()


def open_transport(
    host: str,
    *,
    timeout: float = REQUEST_TIMEOUT_SECONDS,
    pool_size: int = 16,
    max_answer: int = MAX_ANSWER_BYTES,
    env: Mapping[str, str] | None = None,
    tls: Any = None,
) -> Transport:
    """http.client for unix:// and plain tcp://; the system's ssh client for
    ssh:// (sshhttp.py); docker-py for TLS (`tls`, a docker.tls.TLSConfig from a
    context, else as DOCKER_TLS_VERIFY / DOCKER_CERT_PATH ask, the way `docker`
    reads them) and the rest."""
    env = os.environ if env is None else env
    if host.startswith("unix://"):
        return UnixHTTP(host, timeout=timeout, max_answer=max_answer)
    if host.startswith("ssh://"):
        from bilge.engine.sshhttp import SshHTTP

        return SshHTTP(host, env, timeout=timeout, max_answer=max_answer)
    from_env = bool(env.get("DOCKER_CERT_PATH")) or env.get("DOCKER_TLS_VERIFY") not in (None, "")
    if host.startswith("tcp://") and tls is None and not from_env:
        return TcpHTTP(host, timeout=timeout, max_answer=max_answer)
    from bilge.engine.sdkhttp import SdkHTTP  # loads requests and urllib3: only when needed

    return SdkHTTP(host, timeout=timeout, pool_size=pool_size, max_answer=max_answer, tls=tls)


def __getattr__(name: str) -> Any:
    """`SdkHTTP` lives in sdkhttp.py (it loads docker-py); importable from here too."""
    if name == "SdkHTTP":
        from bilge.engine.sdkhttp import SdkHTTP

        return SdkHTTP
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
