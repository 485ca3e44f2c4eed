"""HTTP to the engine: a lean client for local unix sockets, docker-py for the rest.

Removing a crowded host is a burst of small requests: one check and one
removal per object. Through requests and urllib3 each costs about 1.4 ms of
client CPU (measured against dockerd 20.10), as much as the engine spends on
the removal itself, and on a 2-core host the two compete. `UnixHTTP` speaks
HTTP/1.1 over the socket with the standard library, one keep-alive connection
per thread (unixhttp.py), at about a twentieth of that. Every other address (tcp://, ssh://,
TLS, npipe://) goes through docker-py's APIClient, which knows them all.

A transport only moves bytes: `request` returns the status and the body, and
`engine.py` decides what a status means.
"""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Iterator
from typing import Any, Protocol
from urllib.parse import quote, urlencode

from bilge.errors import EngineError, EngineUnreachable
from bilge.unixhttp import Connection, Disconnected

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


class UnixHTTP:
    """HTTP/1.1 over a unix socket, one persistent connection per thread."""

    def __init__(self, host: str, *, timeout: float) -> None:
        self.host = host
        self.socket_path = host.removeprefix("unix://")
        self.timeout = timeout
        self._local = threading.local()
        self._lock = threading.Lock()
        self._all: list[Connection] = []

    def request(self, method: str, path: str, params: Params | None = None) -> tuple[int, bytes]:
        url = with_query(path, params)
        conn = self._connection()
        try:
            try:
                return conn.request(method, url)
            except (Disconnected, BrokenPipeError, ConnectionResetError):
                # The engine closed an idle keep-alive connection before it read the
                # request: try once more on a fresh one. (Repeating a removal the
                # engine did carry out is harmless: it answers 404, which is a skip.)
                conn.close()
                return conn.request(method, url)
        except OSError as exc:
            self._drop()
            raise _unreachable(self.socket_path, exc) from exc

    def _connection(self) -> Connection:
        conn: Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = Connection(self.socket_path, self.timeout)
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
        # No timeout: the engine may send nothing for hours; `close` ends it.
        conn = Connection(self.socket_path, timeout=None)
        try:
            status, lines = conn.stream(with_query(path, params))
        except OSError as exc:
            conn.close()
            raise _unreachable(self.socket_path, exc) from exc
        return _UnixStream(conn, status, lines)


class _UnixStream:
    def __init__(self, conn: Connection, status: int, lines: Iterator[bytes]) -> None:
        self._conn, self._lines = conn, lines
        self.status = status

    def lines(self) -> Iterator[bytes]:
        try:
            yield from self._lines
        except (OSError, ValueError):
            return  # closed under us, or the engine went away: the stream ends
        finally:
            self._conn.close()

    def close(self) -> None:
        # Only shut the socket down: that wakes a reader blocked in readline, which
        # then closes the connection itself (closing it here would pull the
        # response out from under the reader).
        sock = self._conn.sock
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)


def _unreachable(socket_path: str, exc: BaseException) -> EngineUnreachable:
    reason = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
    return EngineUnreachable(f"cannot connect to the engine at unix://{socket_path} ({reason})")


class SdkHTTP:
    """HTTP through docker-py's APIClient: tcp://, ssh://, TLS and the rest."""

    def __init__(self, host: str, *, timeout: float, pool_size: int) -> None:
        # Imported here: local hosts never pay for loading requests and urllib3.
        import docker
        import docker.errors

        self.host = host
        tls = _tls_from_env(docker) if host.startswith(("tcp://", "https://")) else {}
        try:
            # The version is ours to negotiate (engine.py): pin one for the client.
            self._api: Any = docker.APIClient(
                base_url=host, version="1.41", timeout=timeout, max_pool_size=pool_size, **tls
            )
        except docker.errors.DockerException as exc:
            raise EngineUnreachable(f"cannot connect to the engine at {host} ({exc})") from exc
        self._api.trust_env = False  # no proxy look-up in the environment per request

    def request(self, method: str, path: str, params: Params | None = None) -> tuple[int, bytes]:
        import requests.exceptions

        try:
            resp = self._api.request(method, self._api.base_url + path, params=params)
        except requests.exceptions.ConnectionError as exc:
            raise EngineUnreachable(f"cannot connect to the engine at {self.host} ({exc})") from exc
        except (requests.exceptions.RequestException, OSError) as exc:
            raise EngineError(f"request to the engine at {self.host} failed: {exc}") from exc
        return int(resp.status_code), bytes(resp.content)

    def stream(self, path: str, params: Params | None = None) -> Stream:
        import requests.exceptions

        try:
            resp = self._api.request(
                "GET", self._api.base_url + path, params=params, stream=True, timeout=None
            )
        except requests.exceptions.RequestException as exc:
            raise EngineUnreachable(f"cannot connect to the engine at {self.host} ({exc})") from exc
        return _SdkStream(resp)

    def close(self) -> None:
        self._api.close()


class _SdkStream:
    def __init__(self, resp: Any) -> None:
        self._resp = resp
        self.status = int(resp.status_code)

    def lines(self) -> Iterator[bytes]:
        try:
            yield from self._resp.iter_lines()
        except Exception:  # closed under us or the connection dropped: the stream ends
            return

    def close(self) -> None:
        self._resp.close()


def _tls_from_env(docker: Any) -> dict[str, Any]:
    """TLS settings from DOCKER_TLS_VERIFY / DOCKER_CERT_PATH, as `docker` reads them."""
    try:
        kwargs = docker.utils.kwargs_from_env()
    except docker.errors.DockerException as exc:
        raise EngineError(f"TLS settings: {exc}") from exc
    return {k: v for k, v in kwargs.items() if k == "tls"}


def open_transport(host: str, *, timeout: float, pool_size: int) -> Transport:
    if host.startswith("unix://"):
        return UnixHTTP(host, timeout=timeout)
    return SdkHTTP(host, timeout=timeout, pool_size=pool_size)
