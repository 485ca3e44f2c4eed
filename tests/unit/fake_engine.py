"""An in-memory stand-in for the Engine seam, for unit tests of collect and apply.

It answers like dockerd 20.10 (API 1.41) does, from plain dictionaries, and
records every removal so tests can assert what was (not) attempted.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from bilge.engine.base import Capabilities
from bilge.errors import EngineUnreachable, ObjectConflict, ObjectGone

JSON = dict[str, Any]


@dataclass
class FakeEngine:
    host: str = "unix:///fake/docker.sock"
    container_list: list[JSON] = field(default_factory=list)
    image_list: list[JSON] = field(default_factory=list)
    volume_list: list[JSON] = field(default_factory=list)
    network_list: list[JSON] = field(default_factory=list)
    df: JSON = field(default_factory=lambda: {"BuildCache": [], "Volumes": [], "Images": []})
    info_doc: JSON = field(
        default_factory=lambda: {"DockerRootDir": "/nonexistent/docker", "Driver": "overlay2"}
    )
    #: Objects whose removal the engine refuses with 409.
    conflicts: set[str] = field(default_factory=set)
    #: Volumes the engine created for a container (removed by remove_container(volumes=True)).
    anonymous: set[str] = field(default_factory=set)
    unreachable: bool = False
    removed: list[tuple[str, str]] = field(default_factory=list)
    inspected: list[str] = field(default_factory=list)
    #: What `events` streams (those of the kinds asked for), then the stream ends.
    event_list: list[JSON] = field(default_factory=list)
    #: What `past_events` reads back (those of the kinds asked for, since the time given).
    past_event_list: list[JSON] = field(default_factory=list)

    def _check(self) -> None:
        if self.unreachable:
            raise EngineUnreachable("cannot connect to the engine (fake)")

    def version(self) -> JSON:
        self._check()
        return {"ApiVersion": "1.41", "Version": "20.10.24"}

    def info(self) -> JSON:
        self._check()
        return self.info_doc

    def capabilities(self) -> Capabilities:
        # Like a local socket: whether the data-root is read depends on the path.
        return Capabilities(
            "docker", same_host=True, marks_anonymous_volumes=False, build_cache=True
        )

    def containers(self, *, size: bool) -> list[JSON]:
        self._check()
        return self.container_list

    def images(self) -> list[JSON]:
        return self.image_list

    def volumes(self) -> list[JSON]:
        return self.volume_list

    def networks(self) -> list[JSON]:
        return self.network_list

    def system_df(self, *, build_cache_only: bool = False) -> JSON:
        return self.df

    def _find(self, items: list[JSON], key: str, value: str) -> JSON:
        self.inspected.append(value)
        for item in items:
            if item.get(key) == value:
                return item
        raise ObjectGone(f"{value}: not found")

    def inspect_container(self, container_id: str) -> JSON:
        c = self._find(self.container_list, "Id", container_id)
        return {"State": {"Status": c["State"], "StartedAt": c.get("StartedAt", "")}}

    def container_state(self, container_id: str) -> JSON:
        state = self.inspect_container(container_id)["State"]
        assert isinstance(state, dict)
        return state

    def inspect_volume(self, name: str) -> JSON:
        return self._find(self.volume_list, "Name", name)

    def inspect_image(self, image_id: str) -> JSON:
        return self._find(self.image_list, "Id", image_id)

    def inspect_network(self, network_id: str) -> JSON:
        return self._find(self.network_list, "Id", network_id)

    def containers_using(
        self, *, volume: str = "", image: str = "", network: str = ""
    ) -> list[str]:
        out = []
        for c in self.container_list:
            mounts = {m.get("Name") for m in c.get("Mounts") or []}
            nets = (c.get("NetworkSettings") or {}).get("Networks") or {}
            if (
                (volume and volume in mounts)
                or (image and c.get("ImageID") == image)
                or (network and any(n.get("NetworkID") == network for n in nets.values()))
            ):
                out.append(str(c["Id"]))
        return out

    def _remove(self, kind: str, items: list[JSON], key: str, value: str) -> None:
        self._check()
        if value in self.conflicts:
            raise ObjectConflict(f"{value}: conflict (fake)")
        found = [i for i in items if i.get(key) == value]
        if not found:
            raise ObjectGone(f"{value}: not found")
        items.remove(found[0])
        self.removed.append((kind, value))

    def remove_container(self, container_id: str, *, volumes: bool = False) -> None:
        found = [c for c in self.container_list if c.get("Id") == container_id]
        self._remove("container", self.container_list, "Id", container_id)
        for mount in found[0].get("Mounts") or [] if volumes else []:
            # like the engine: an anonymous volume goes unless another container uses it
            name = mount.get("Name")
            if name in self.anonymous and not self.containers_using(volume=name):
                self.volume_list[:] = [v for v in self.volume_list if v.get("Name") != name]
                self.removed.append(("volume", name))

    def remove_volume(self, name: str) -> None:
        self._remove("volume", self.volume_list, "Name", name)

    def remove_image(self, ref: str) -> None:
        for img in self.image_list:
            if ref in (img.get("RepoTags") or []):
                img["RepoTags"] = [t for t in img["RepoTags"] if t != ref]
                self.removed.append(("tag", ref))
                if not img["RepoTags"]:
                    self._remove("image", self.image_list, "Id", img["Id"])
                return
        self._remove("image", self.image_list, "Id", ref)

    def remove_network(self, network_id: str) -> None:
        self._remove("network", self.network_list, "Id", network_id)

    def events(self, kinds: tuple[str, ...]) -> FakeEventStream:
        self._check()
        return FakeEventStream([e for e in self.event_list if e.get("Type") in kinds])

    def past_events(self, kinds: tuple[str, ...], since: float) -> list[JSON]:
        self._check()
        return [
            e
            for e in self.past_event_list
            if e.get("Type") in kinds and float(e.get("time") or 0) >= since
        ]

    def remove_build_cache(self, record_id: str) -> int:
        records = self.df["BuildCache"]
        self._remove("build-cache", records, "ID", record_id)
        return 0


@dataclass
class FakeEventStream:
    """The events given, then the end of the stream (as when the engine stops)."""

    pending: list[JSON]
    closed: bool = False

    def __iter__(self) -> Iterator[JSON]:
        while self.pending and not self.closed:
            yield self.pending.pop(0)

    def close(self) -> None:
        self.closed = True
