"""The seam between bilge and a container engine.

collect, plan and apply see only `Engine`: the calls bilge makes, answered as
JSON objects, and `Capabilities`: what this engine can tell and what bilge may
read beside its API. Whatever differs between engines (which API tells the
truth about anonymous volumes, whether the storage can be read from here,
whether there is a build cache) is asked of the engine through these, never
guessed from its address. `DockerEngine` (docker.py) is the implementation for
Docker, `PodmanEngine` (podman.py) the one for Podman; `open_engine`
(connect.py) asks the engine which it is.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Protocol

JSONObject = dict[str, Any]

#: Parallel removals apply makes by default: best measured on a 2-core host
#: against dockerd 20.10 (docs/benchmarks.md, removal concurrency). Here, in a
#: module without imports, because the command line needs it before anything
#: heavy is loaded.
DEFAULT_CONCURRENCY = 16


@dataclass(frozen=True)
class Capabilities:
    """What an engine can tell bilge, and what bilge may read beside its API."""

    #: "docker", or another engine's name: shown, and written in JSON documents.
    kind: str
    #: The engine runs on this machine, so its storage (the data-root) may be read
    #: directly when readable: exact sizes, database files, logs, orphans.
    same_host: bool
    #: Its volume listing marks anonymous volumes (a label); without it, bilge
    #: recognises them by their names (64 hex digits).
    marks_anonymous_volumes: bool
    #: It keeps a build cache that can be listed and pruned record by record.
    build_cache: bool
    #: How its storage is laid out on disk: "docker" (a dockerd data-root) or
    #: "containers-storage" (Podman's graphRoot); collect picks its reader by it.
    storage: str = "docker"

    @property
    def display_name(self) -> str:
        return engine_name(self.kind)


def engine_name(kind: str) -> str:
    """An engine's kind ("docker", "podman") as people write it: "Docker", "Podman"."""
    return {"docker": "Docker", "podman": "Podman"}.get(kind, kind)


class Engine(Protocol):
    """What bilge needs from a container engine."""

    host: str

    def capabilities(self) -> Capabilities: ...
    def version(self) -> JSONObject: ...
    def info(self) -> JSONObject: ...
    def containers(self, *, size: bool) -> list[JSONObject]: ...
    def images(self) -> list[JSONObject]: ...
    def volumes(self) -> list[JSONObject]: ...
    def networks(self) -> list[JSONObject]: ...
    def system_df(self, *, build_cache_only: bool = False) -> JSONObject: ...
    def inspect_container(self, container_id: str) -> JSONObject: ...
    def container_state(self, container_id: str) -> JSONObject: ...
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
    def events(self, kinds: tuple[str, ...]) -> EventStream: ...
    def past_events(self, kinds: tuple[str, ...], since: float) -> list[JSONObject]: ...


class EventStream(Protocol):
    """The engine's events as they happen; `close` (from any thread) ends them."""

    def __iter__(self) -> Iterator[JSONObject]: ...
    def close(self) -> None: ...
