"""The one module that talks to the Docker Engine API.

`Engine` is the narrow seam the rest of bilge depends on; `DockerEngine`
implements it with docker-py's low-level `APIClient` (API version negotiated,
so 1.41 and newer behave the same). docker-py's exceptions never leave this
module: a 404 becomes `ObjectGone`, a 409 `ObjectConflict`, a dead socket
`EngineUnreachable`, anything else `EngineError`. Answers are returned as JSON
objects; `collect` is the only reader that turns them into the model.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Protocol, TypeVar

import docker
import docker.errors
import requests.exceptions

from bilge.errors import EngineError, EngineUnreachable, ObjectConflict, ObjectGone

JSONObject = dict[str, Any]
T = TypeVar("T")

DEFAULT_HOST = "unix:///var/run/docker.sock"
#: A generous per-request timeout: listing a crowded host with sizes is slow.
TIMEOUT_SECONDS = 300


class Engine(Protocol):
    """What bilge needs from a Docker engine."""

    host: str

    def version(self) -> JSONObject: ...
    def info(self) -> JSONObject: ...
    def containers(self, *, size: bool) -> list[JSONObject]: ...
    def images(self) -> list[JSONObject]: ...
    def volumes(self) -> list[JSONObject]: ...
    def networks(self) -> list[JSONObject]: ...
    def system_df(self) -> JSONObject: ...
    def inspect_container(self, container_id: str) -> JSONObject: ...
    def inspect_volume(self, name: str) -> JSONObject: ...
    def inspect_image(self, image_id: str) -> JSONObject: ...
    def inspect_network(self, network_id: str) -> JSONObject: ...
    def containers_using(
        self, *, volume: str = "", image: str = "", network: str = ""
    ) -> list[str]: ...
    def remove_container(self, container_id: str, *, volumes: bool = False) -> None: ...
    def remove_volume(self, name: str) -> None: ...
    def remove_image(self, ref: str) -> None: ...
    def remove_network(self, network_id: str) -> None: ...
    def remove_build_cache(self, record_id: str) -> int: ...


def resolve_host(explicit: str | None, env: dict[str, str] | None = None) -> str:
    """The engine address as `docker` would pick it: -H, DOCKER_HOST, context."""
    env = dict(os.environ) if env is None else env
    if explicit:
        return explicit
    if env.get("DOCKER_HOST"):
        return env["DOCKER_HOST"]
    return _context_host(env) or DEFAULT_HOST


def _context_host(env: dict[str, str]) -> str | None:
    """The host of the current Docker context (DOCKER_CONTEXT or config.json)."""
    config_dir = Path(env.get("DOCKER_CONFIG") or Path(env.get("HOME", "/root")) / ".docker")
    name = env.get("DOCKER_CONTEXT") or _current_context(config_dir)
    if not name or name == "default":
        return None
    digest = hashlib.sha256(name.encode()).hexdigest()
    meta = config_dir / "contexts" / "meta" / digest / "meta.json"
    try:
        doc = json.loads(meta.read_text())
        host = doc["Endpoints"]["docker"]["Host"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise EngineError(f"Docker context {name!r}: cannot read {meta}: {exc}") from exc
    return str(host)


def _current_context(config_dir: Path) -> str | None:
    try:
        doc = json.loads((config_dir / "config.json").read_text())
    except (OSError, ValueError):
        return None
    name = doc.get("currentContext") if isinstance(doc, dict) else None
    return name if isinstance(name, str) else None


@contextmanager
def _translated(what: str) -> Iterator[None]:
    """Turn docker-py and requests errors into bilge's."""
    try:
        yield
    except docker.errors.NotFound as exc:
        raise ObjectGone(f"{what}: not found") from exc
    except docker.errors.APIError as exc:
        if exc.status_code == 409:
            raise ObjectConflict(f"{what}: {_explanation(exc)}") from exc
        raise EngineError(f"{what}: {_explanation(exc)}") from exc
    except (requests.exceptions.ConnectionError, FileNotFoundError) as exc:
        raise EngineUnreachable(f"{what}: cannot connect to the engine ({exc})") from exc
    except docker.errors.DockerException as exc:
        raise EngineError(f"{what}: {exc}") from exc
    except requests.exceptions.RequestException as exc:
        raise EngineError(f"{what}: {exc}") from exc
    except ValueError as exc:  # a body that is not JSON
        raise EngineError(f"{what}: unreadable answer from the engine ({exc})") from exc


def _root_cause(exc: BaseException) -> str:
    """The innermost reason, e.g. "No such file or directory", not the wrapper chain."""
    while True:
        inner = exc.__cause__ or exc.__context__
        if inner is None:
            break
        exc = inner
    for arg in exc.args:
        if isinstance(arg, BaseException):
            return _root_cause(arg)
    return getattr(exc, "strerror", None) or str(exc) or type(exc).__name__


def _explanation(exc: docker.errors.APIError) -> str:
    text = str(exc.explanation or exc).strip()
    return text.splitlines()[0] if text else f"HTTP {exc.status_code}"


def _expect(kind: type[T], value: object, what: str) -> T:
    if not isinstance(value, kind):
        raise EngineError(f"{what}: unexpected answer from the engine ({type(value).__name__})")
    return value


class DockerEngine:
    """`Engine` over docker-py's APIClient."""

    def __init__(self, host: str, *, timeout: int = TIMEOUT_SECONDS, pool_size: int = 16):
        self.host = host
        tls = _tls_from_env() if host.startswith(("tcp://", "https://")) else {}
        try:
            # version="auto" asks the engine for its API version right here.
            self._api = docker.APIClient(
                base_url=host, version="auto", timeout=timeout, max_pool_size=pool_size, **tls
            )
        except docker.errors.DockerException as exc:
            raise EngineUnreachable(
                f"cannot connect to the Docker engine at {host} ({_root_cause(exc)});"
                " is it running? (set it with -H or DOCKER_HOST)"
            ) from exc

    @property
    def api_version(self) -> str:
        return str(self._api.api_version)

    def _call(self, what: str, fn: Callable[[], T]) -> T:
        with _translated(what):
            return fn()

    def version(self) -> JSONObject:
        return _expect(dict, self._call("version", self._api.version), "version")

    def info(self) -> JSONObject:
        return _expect(dict, self._call("info", self._api.info), "info")

    def containers(self, *, size: bool) -> list[JSONObject]:
        got = self._call("list containers", lambda: self._api.containers(all=True, size=size))
        return _expect(list, got, "list containers")

    def images(self) -> list[JSONObject]:
        return _expect(list, self._call("list images", self._api.images), "list images")

    def volumes(self) -> list[JSONObject]:
        got = _expect(dict, self._call("list volumes", self._api.volumes), "list volumes")
        return _expect(list, got.get("Volumes") or [], "list volumes")

    def networks(self) -> list[JSONObject]:
        return _expect(list, self._call("list networks", self._api.networks), "list networks")

    def system_df(self) -> JSONObject:
        return _expect(dict, self._call("disk usage", self._api.df), "disk usage")

    def inspect_container(self, container_id: str) -> JSONObject:
        what = f"container {container_id[:12]}"
        return _expect(
            dict, self._call(what, lambda: self._api.inspect_container(container_id)), what
        )

    def inspect_volume(self, name: str) -> JSONObject:
        what = f"volume {name[:24]}"
        return _expect(dict, self._call(what, lambda: self._api.inspect_volume(name)), what)

    def inspect_image(self, image_id: str) -> JSONObject:
        what = f"image {image_id}"
        return _expect(dict, self._call(what, lambda: self._api.inspect_image(image_id)), what)

    def inspect_network(self, network_id: str) -> JSONObject:
        what = f"network {network_id[:12]}"
        return _expect(dict, self._call(what, lambda: self._api.inspect_network(network_id)), what)

    def containers_using(
        self, *, volume: str = "", image: str = "", network: str = ""
    ) -> list[str]:
        """Ids of containers, in any state, that mount `volume`, run `image` (or
        an image built on it: the engine's `ancestor` filter) or join `network`."""
        wanted = {"volume": volume, "ancestor": image, "network": network}
        filters = {key: [value] for key, value in wanted.items() if value}
        if len(filters) != 1:
            raise ValueError("containers_using takes exactly one of volume, image, network")
        got = self._call(
            "list containers", lambda: self._api.containers(all=True, quiet=True, filters=filters)
        )
        return [str(c["Id"]) for c in _expect(list, got, "list containers")]

    def remove_container(self, container_id: str, *, volumes: bool = False) -> None:
        """Remove a stopped container; with `volumes`, also the anonymous volumes the
        engine created for it (never named ones), unless another container uses them."""
        self._call(
            f"remove container {container_id[:12]}",
            lambda: self._api.remove_container(container_id, v=volumes, force=False),
        )

    def remove_volume(self, name: str) -> None:
        self._call(f"remove volume {name[:24]}", lambda: self._api.remove_volume(name, force=False))

    def remove_image(self, ref: str) -> None:
        self._call(f"remove image {ref}", lambda: self._api.remove_image(ref, force=False))

    def remove_network(self, network_id: str) -> None:
        self._call(
            f"remove network {network_id[:12]}", lambda: self._api.remove_network(network_id)
        )

    def remove_build_cache(self, record_id: str) -> int:
        """Prune one build-cache record; returns the bytes the engine reclaimed."""
        got = self._call(
            f"remove build cache {record_id}",
            lambda: self._api.prune_builds(filters={"id": [record_id]}),
        )
        doc = _expect(dict, got, "prune build cache")
        if record_id not in (doc.get("CachesDeleted") or []):
            # BuildKit silently keeps a record that an image or another record uses.
            raise ObjectConflict(f"build cache {record_id[:12]}: still used by an image or record")
        return int(doc.get("SpaceReclaimed") or 0)


def _tls_from_env() -> dict[str, Any]:
    """TLS settings from DOCKER_TLS_VERIFY / DOCKER_CERT_PATH, as `docker` reads them."""
    with _translated("TLS settings"):
        kwargs = docker.utils.kwargs_from_env()
    return {k: v for k, v in kwargs.items() if k == "tls"}
