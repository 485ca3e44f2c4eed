"""HTTP to the engine through docker-py's APIClient: TLS, ssh:// and the rest.

requests and urllib3 only know per-read timeouts. Here each request still
gets a deadline for its whole answer: the connect and every read of the head
are bounded by the whole timeout, and the body is read piece by piece with the
socket's timeout set to the time left before each piece, so an engine that
dribbles its body fails at the deadline. (A head dribbled byte by byte is only
bounded per read: urllib3 reads it out of reach. http.client (stdhttp.py),
used for unix:// and plain tcp://, bounds that too.) Bodies have
the same size limit as there.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from typing import Any

from bilge.engine.transport import (
    EVENTS_IDLE_SECONDS,
    MAX_ANSWER_BYTES,
    REQUEST_TIMEOUT_SECONDS,
    Params,
    Stream,
)
from bilge.errors import EngineError, EngineUnreachable
from bilge.safejson import loads_json

PIECE = 1 << 16


class SdkHTTP:
    """HTTP through docker-py's APIClient: tcp:// with TLS, ssh://, and the rest."""

    def __init__(
        self,
        host: str,
        *,
        timeout: float = REQUEST_TIMEOUT_SECONDS,
        pool_size: int = 16,
        max_answer: int = MAX_ANSWER_BYTES,
        events_idle: float = EVENTS_IDLE_SECONDS,
        tls: Any = None,
    ) -> None:
        """`tls`: a docker.tls.TLSConfig (a context's TLS files), else TLS is
        as DOCKER_TLS_VERIFY / DOCKER_CERT_PATH say."""
        # Imported here: local hosts never pay for loading requests and urllib3.
        import docker
        import docker.errors

        self.host = host
        self.timeout = timeout
        self.max_answer = max_answer
        self.events_idle = events_idle
        if tls is not None:
            tls = {"tls": tls}
        else:
            tls = _tls_from_env(docker) if host.startswith(("tcp://", "https://")) else {}
        try:
            # The version is ours to negotiate (docker.py): pin one for the client.
            self._api: Any = docker.APIClient(
                base_url=host, version="1.41", timeout=timeout, max_pool_size=pool_size, **tls
            )
        except docker.errors.DockerException as exc:
            raise EngineUnreachable(f"cannot connect to the engine at {host} ({exc})") from exc
        self._api.trust_env = False  # no proxy look-up in the environment per request

    def request(self, method: str, path: str, params: Params | None = None) -> tuple[int, bytes]:
        import requests.exceptions
        import urllib3.exceptions

        deadline = time.monotonic() + self.timeout
        try:
            resp = self._api.request(
                method, self._api.base_url + path, params=params, stream=True, timeout=self.timeout
            )
            try:
                return int(resp.status_code), self._body(resp, deadline, method, path)
            finally:
                resp.close()
        except requests.exceptions.ConnectionError as exc:
            if isinstance(exc, requests.exceptions.ConnectTimeout) or _past(deadline):
                raise self._late(method, path) from exc
            raise EngineUnreachable(f"cannot connect to the engine at {self.host} ({exc})") from exc
        except (requests.exceptions.Timeout, urllib3.exceptions.TimeoutError) as exc:
            raise self._late(method, path) from exc
        except (requests.exceptions.RequestException, urllib3.exceptions.HTTPError, OSError) as exc:
            if _past(deadline):
                raise self._late(method, path) from exc
            raise EngineError(f"request to the engine at {self.host} failed: {exc}") from exc

    def _body(self, resp: Any, deadline: float, method: str, path: str) -> bytes:
        """The body, read by the deadline and refused beyond the size limit."""
        limit = self.max_answer
        announced = resp.headers.get("content-length", "")
        if announced.isdigit() and int(announced) > limit:
            raise self._too_large(method, path)
        sock = _socket_of(resp)
        got: list[bytes] = []
        total = 0
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise self._late(method, path)
            if sock is not None:
                sock.settimeout(left)
            piece = resp.raw.read1(PIECE)
            if not piece:
                return b"".join(got)
            total += len(piece)
            if total > limit:
                raise self._too_large(method, path)
            got.append(piece)

    def _late(self, method: str, path: str) -> EngineError:
        return EngineError(
            f"engine at {self.host} did not answer within {self.timeout:g}s ({method} {path})"
        )

    def _too_large(self, method: str, path: str) -> EngineError:
        return EngineError(
            f"engine at {self.host} sent an answer larger than {self.max_answer >> 20} MiB"
            f" ({method} {path}); refused"
        )

    def stream(self, path: str, params: Params | None = None) -> Stream:
        return _SdkStream(self, path, params)

    def open_stream(self, path: str, params: Params | None) -> Any:
        import requests.exceptions

        try:
            # Reads wait at most the idle period: then the stream checks the engine.
            return self._api.request(
                "GET", self._api.base_url + path, params=params, stream=True,
                timeout=(self.timeout, self.events_idle),
            )  # fmt: skip
        except requests.exceptions.RequestException as exc:
            raise EngineUnreachable(f"cannot connect to the engine at {self.host} ({exc})") from exc

    def close(self) -> None:
        self._api.close()


class _SdkStream:
    """The event stream. urllib3 cannot go on reading after a read timed out, so
    after a quiet spell, once the engine has answered /_ping, the stream is
    opened again from the time of the last event seen (the engine replays what
    happened since)."""

    def __init__(self, http: SdkHTTP, path: str, params: Params | None) -> None:
        self._http, self._path, self._params = http, path, dict(params or {})
        self._closed = False
        self._resp = http.open_stream(path, self._params)
        self.status = int(self._resp.status_code)

    def lines(self) -> Iterator[bytes]:
        import requests.exceptions

        while not self._closed:
            try:
                for line in self._resp.iter_lines():
                    self._note(line)
                    yield line
                return  # the engine ended the stream
            except requests.exceptions.ConnectionError as exc:
                if self._closed or "timed out" not in str(exc).lower():
                    return  # closed under us or the connection dropped: the stream ends
            except Exception:  # closed under us: the stream ends
                return
            self._resp.close()
            status, _ = self._http.request("GET", "/_ping")  # EngineError when it is gone
            if status != 200:
                raise EngineError(f"engine at {self._http.host} answered /_ping with HTTP {status}")
            self._resp = self._http.open_stream(self._path, self._params)

    def _note(self, line: bytes) -> None:
        """Remember the last event's time, where a reopened stream starts."""
        with contextlib.suppress(ValueError):
            stamp = loads_json(line).get("time") if line.startswith(b"{") else None
            if isinstance(stamp, int):
                self._params["since"] = str(stamp)

    def close(self) -> None:
        self._closed = True
        self._resp.close()


def _past(deadline: float) -> bool:
    return time.monotonic() >= deadline


def _socket_of(resp: Any) -> Any:
    """The socket under a streamed response, if urllib3 lets it be found."""
    conn = getattr(resp.raw, "connection", None)
    sock = getattr(conn, "sock", None)
    return sock if callable(getattr(sock, "settimeout", None)) else None


def _tls_from_env(docker: Any) -> dict[str, Any]:
    """TLS settings from DOCKER_TLS_VERIFY / DOCKER_CERT_PATH, as `docker` reads them."""
    try:
        kwargs = docker.utils.kwargs_from_env()
    except docker.errors.DockerException as exc:
        raise EngineError(f"TLS settings: {exc}") from exc
    return {k: v for k, v in kwargs.items() if k == "tls"}
