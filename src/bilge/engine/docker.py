"""Docker's implementation of the Engine seam (base.py): the Engine API.

`DockerEngine` implements `Engine` over a transport (transport.py: the standard library on a local
unix socket, docker-py's APIClient for every other address). The API version
is negotiated with the engine, so 1.41 and newer behave the same. A 404
becomes `ObjectGone`, a 409 `ObjectConflict`, a dead socket
`EngineUnreachable`, anything else `EngineError`. Answers are returned as JSON
objects; `collect` is the only reader that turns them into the model.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Iterator
from datetime import timedelta
from typing import Any, TypeVar

from bilge.engine import buildkit
from bilge.engine.base import (
    Capabilities,
    EventStream,
    JSONObject,
)
from bilge.engine.buildkit import BuildKitError
from bilge.engine.transport import (
    MAX_ANSWER_BYTES,
    REQUEST_TIMEOUT_SECONDS,
    Params,
    Stream,
    Transport,
    UnixHTTP,
    open_transport,
    quoted,
)
from bilge.errors import EngineError, EngineUnreachable, ObjectConflict, ObjectGone
from bilge.safejson import loads_json

T = TypeVar("T")

#: The deadline for each request's whole answer (transport.py says why 60 s);
#: `DockerEngine(timeout=...)` sets another, e.g. `[engine] request_timeout`.
TIMEOUT_SECONDS = REQUEST_TIMEOUT_SECONDS


MIN_API_VERSION = (1, 41)


def _expect(kind: type[T], value: object, what: str) -> T:
    if not isinstance(value, kind):
        raise EngineError(f"{what}: unexpected answer from the engine ({type(value).__name__})")
    return value


class DockerEngine:
    """`Engine` over the Engine API, its version negotiated with the engine."""

    def __init__(
        self,
        host: str,
        *,
        timeout: float | timedelta = TIMEOUT_SECONDS,
        max_answer: int = MAX_ANSWER_BYTES,
        pool_size: int = 16,
        transport: Transport | None = None,
        version: JSONObject | None = None,
    ) -> None:
        """`timeout` bounds the whole answer of every request (connect, headers and
        body); `max_answer` is the largest body read. Either failing is an
        `EngineError` naming the request. `version` is the engine's /version answer
        when the caller has asked for it already (connect.py)."""
        self.host = host
        seconds = timeout.total_seconds() if isinstance(timeout, timedelta) else float(timeout)
        if seconds <= 0:
            raise ValueError(f"the engine request timeout must be positive, not {timeout}")
        self.timeout = seconds
        self._http = transport or open_transport(
            host, timeout=seconds, pool_size=pool_size, max_answer=max_answer
        )
        try:
            self.version_answer = version if version is not None else self.ask_version()
            self.api_version = self._negotiate(self.version_answer)
        except BaseException:
            if transport is None:  # ours to close: nobody else holds it
                self._http.close()
            raise
        self._prefix = f"/v{self.api_version}"

    def ask_version(self) -> JSONObject:
        """The engine's unversioned /version answer."""
        try:
            doc = self._json("GET", "/version", "version")
        except EngineUnreachable as exc:
            raise unreachable(exc) from exc
        return _expect(dict, doc, "version")

    def _negotiate(self, doc: JSONObject) -> str:
        """The engine's own API version (as `docker` does), refused below 1.41."""
        version = str(doc.get("ApiVersion") or "")
        try:
            number = tuple(int(part) for part in version.split("."))
        except ValueError:
            number = ()
        if len(number) != 2:
            raise EngineError(f"version: the engine reports API version {version!r}")
        if number < MIN_API_VERSION:
            raise EngineError(
                f"the engine at {self.host} speaks API {version}; bilge needs 1.41 (Docker 20.10)"
                " or newer"
            )
        return version

    def close(self) -> None:
        self._http.close()

    def _json(self, method: str, path: str, what: str, params: Params | None = None) -> Any:
        status, body = self._http.request(method, path, params)
        check_status(status, body, what)
        if not body.strip():
            return None
        try:
            return loads_json(body)
        except ValueError as exc:
            raise EngineError(f"{what}: unreadable answer from the engine ({exc})") from exc

    def _api(self, method: str, path: str, what: str, params: Params | None = None) -> Any:
        return self._json(method, self._prefix + path, what, params)

    def version(self) -> JSONObject:
        return _expect(dict, self._api("GET", "/version", "version"), "version")

    def info(self) -> JSONObject:
        return _expect(dict, self._api("GET", "/info", "info"), "info")

    def capabilities(self) -> Capabilities:
        """A unix socket is this machine's engine: its data-root may be read here
        (when readable). Docker 23 (API 1.42) labels anonymous volumes."""
        return Capabilities(
            kind="docker",
            same_host=self.host.startswith("unix://"),
            marks_anonymous_volumes=self._api_at_least(1, 42),
            build_cache=True,
        )

    def containers(self, *, size: bool) -> list[JSONObject]:
        params = {"all": "1", "size": "1" if size else "0"}
        got = self._api("GET", "/containers/json", "list containers", params)
        return _expect(list, got, "list containers")

    def images(self) -> list[JSONObject]:
        return _expect(list, self._api("GET", "/images/json", "list images"), "list images")

    def volumes(self) -> list[JSONObject]:
        got = _expect(dict, self._api("GET", "/volumes", "list volumes"), "list volumes")
        return _expect(list, got.get("Volumes") or [], "list volumes")

    def networks(self) -> list[JSONObject]:
        return _expect(list, self._api("GET", "/networks", "list networks"), "list networks")

    def system_df(self, *, build_cache_only: bool = False) -> JSONObject:
        """/system/df; `build_cache_only` asks for the build cache alone where the API
        allows it (1.42 and newer). Before, the engine walks every volume and container
        for it, as `docker system df -v` does: on a local socket BuildKit's own API is
        asked instead (buildkit.py), and /system/df only if that fails."""
        new_api = self._api_at_least(1, 42)
        if build_cache_only and not new_api and isinstance(self._http, UnixHTTP):
            path, timeout = self._http.socket_path, self._http.timeout
            try:
                return {"BuildCache": buildkit.disk_usage(path, timeout)}
            except BuildKitError as exc:  # then /system/df, the long way
                if exc.timed_out:  # a wedged engine: /system/df would wait as long again
                    raise EngineError(str(exc)) from exc
        params = {"type": "build-cache"} if build_cache_only and new_api else None
        got = self._api("GET", "/system/df", "disk usage", params)
        return _expect(dict, got, "disk usage")

    def _api_at_least(self, major: int, minor: int) -> bool:
        return tuple(int(p) for p in self.api_version.split(".")) >= (major, minor)

    def _inspect(self, path: str, what: str) -> JSONObject:
        return _expect(dict, self._api("GET", path, what), what)

    def inspect_container(self, container_id: str) -> JSONObject:
        return self._inspect(
            f"/containers/{quoted(container_id)}/json", f"container {container_id[:12]}"
        )

    def container_state(self, container_id: str) -> JSONObject:
        """The "State" of the container's inspect (Status, StartedAt, ...)."""
        state = self.inspect_container(container_id).get("State")
        return state if isinstance(state, dict) else {}

    def inspect_volume(self, name: str) -> JSONObject:
        return self._inspect(f"/volumes/{quoted(name)}", f"volume {name[:24]}")

    def inspect_image(self, image_id: str) -> JSONObject:
        return self._inspect(f"/images/{quoted(image_id)}/json", f"image {image_id}")

    def inspect_network(self, network_id: str) -> JSONObject:
        return self._inspect(f"/networks/{quoted(network_id)}", f"network {network_id[:12]}")

    def containers_using(
        self, *, volume: str = "", image: str = "", network: str = ""
    ) -> list[str]:
        """Ids of containers, in any state, that mount `volume`, run `image` (or
        an image built on it: the engine's `ancestor` filter) or join `network`."""
        wanted = {"volume": volume, "ancestor": image, "network": network}
        filters = {key: [value] for key, value in wanted.items() if value}
        if len(filters) != 1:
            raise ValueError("containers_using takes exactly one of volume, image, network")
        params = {"all": "1", "filters": json.dumps(filters)}
        got = self._api("GET", "/containers/json", "list containers", params)
        got = _expect(list, got, "list containers")
        return [str(_expect(dict, c, "list containers").get("Id")) for c in got]

    def remove_container(self, container_id: str, *, volumes: bool = False) -> None:
        """Remove a stopped container; with `volumes`, also the anonymous volumes the
        engine created for it (never named ones), unless another container uses them."""
        params = {"v": "1" if volumes else "0", "force": "0"}
        what = f"remove container {container_id[:12]}"
        self._api("DELETE", f"/containers/{quoted(container_id)}", what, params)

    def remove_volume(self, name: str) -> None:
        what = f"remove volume {name[:24]}"
        self._api("DELETE", f"/volumes/{quoted(name)}", what, {"force": "0"})

    def remove_image(self, ref: str) -> None:
        self._api("DELETE", f"/images/{quoted(ref)}", f"remove image {ref}", {"force": "0"})

    def remove_network(self, network_id: str) -> None:
        self._api("DELETE", f"/networks/{quoted(network_id)}", f"remove network {network_id[:12]}")

    def remove_build_cache(self, record_id: str) -> int:
        """Prune one build-cache record; returns the bytes the engine reclaimed."""
        params = {"filters": json.dumps({"id": [record_id]})}
        got = self._api("POST", "/build/prune", f"remove build cache {record_id}", params)
        doc = _expect(dict, got, "prune build cache")
        if record_id not in (doc.get("CachesDeleted") or []):
            # BuildKit silently keeps a record that an image or another record uses.
            raise ObjectConflict(f"build cache {record_id[:12]}: still used by an image or record")
        return int(doc.get("SpaceReclaimed") or 0)

    def events(self, kinds: tuple[str, ...]) -> EventStream:
        """Events of these types (container, image, ...) from now on."""
        params = {"filters": json.dumps({"type": list(kinds)})}
        stream = self._http.stream(self._prefix + "/events", params)
        if stream.status >= 400:
            stream.close()
            check_status(stream.status, b"", "events")
        return _Events(stream)

    def past_events(self, kinds: tuple[str, ...], since: float) -> list[JSONObject]:
        """The events the engine still remembers since `since` (Unix time), up to now:
        dockerd keeps its last 1,000 in memory."""
        params = {
            "filters": json.dumps({"type": list(kinds)}),
            "since": f"{since:.0f}",
            "until": f"{time.time():.0f}",
        }
        status, body = self._http.request("GET", self._prefix + "/events", params)
        check_status(status, body, "past events")
        return list(parse_event_lines(body.splitlines()))


def parse_event_lines(lines: Iterable[bytes]) -> Iterator[JSONObject]:
    """Events given one JSON object per line; a torn line (a stream closed midway) or
    anything but an object is skipped."""
    for line in lines:
        try:
            event = loads_json(line)
        except ValueError:
            continue
        if isinstance(event, dict):
            yield event


class _Events:
    def __init__(self, stream: Stream) -> None:
        self._stream = stream

    def __iter__(self) -> Iterator[JSONObject]:
        return parse_event_lines(self._stream.lines())

    def close(self) -> None:
        self._stream.close()


def unreachable(exc: EngineUnreachable) -> EngineUnreachable:
    """The first request to an engine failed to reach it: say what to check."""
    return EngineUnreachable(f"{exc}; is it running? (set it with -H or DOCKER_HOST)")


def check_status(status: int, body: bytes, what: str) -> None:
    """404 is ObjectGone, 409 ObjectConflict, any other failure EngineError."""
    if status < 400:
        return
    message = _message(body) or f"HTTP {status}"
    if status == 404:
        raise ObjectGone(f"{what}: not found")
    if status == 409:
        raise ObjectConflict(f"{what}: {message}")
    raise EngineError(f"{what}: {message}")


def _message(body: bytes) -> str:
    """The engine's error text: {"message": ...}, first line only."""
    try:
        doc = loads_json(body)
        text = str(doc.get("message") or "") if isinstance(doc, dict) else ""
    except ValueError:
        text = body.decode("utf-8", "replace")
    text = text.strip()
    return text.splitlines()[0][:300] if text else ""
