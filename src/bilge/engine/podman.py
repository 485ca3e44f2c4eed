"""Podman's implementation of the Engine seam: its Docker-compatible API, and its own
(/libpod/...) wherever the compatible one is wrong or thin.

Checked on Podman 4.3.1 (docs/architecture.md, "Podman"): the compatible volume
listing does not mark anonymous volumes, while /libpod/volumes/json says `Anonymous`;
the compatible /system/df reports sizes of 0 where /libpod/system/df is right; the
`ancestor` filter matches an image id only without its "sha256:" prefix; removing an
image by id that has several tags answers 500 where Docker answers 409; a failed image
removal still emits an image "delete" event; container deaths may read "died"; and
/libpod/events?stream=false reads back the events Podman keeps on disk. No prune
endpoint is ever called: Podman's compatible volume prune removes named volumes too.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from bilge.engine.base import Capabilities, EventStream, JSONObject
from bilge.engine.docker import DockerEngine, check_status, parse_event_lines
from bilge.engine.libpod import (
    ALL_STATES,
    COMPATIBLE_API,
    LIBPOD,
    LIST_CONTAINERS,
    bare_id,
    compatible_container,
    conflicts,
    libpod_extras,
    location_in,
    objects,
    section,
    with_prefix,
)
from bilge.engine.libpodstate import container_state, container_volumes
from bilge.engine.transport import Transport, quoted
from bilge.errors import EngineError, ObjectGone


class PodmanEngine(DockerEngine):
    """`Engine` for Podman: the compatible API, corrected by libpod's."""

    #: (graph root, driver, volume path) from the last /info: where to read its files.
    _storage: tuple[str, str, str] | None = None

    #: libpod's /info asked when the engine was opened, for the first `info()`.
    _opened_info: JSONObject | None = None

    #: libpod's container listing asked beside that /info, for the first `containers()`.
    _opened_listing: Future[Any] | None = None

    @classmethod
    def opened(
        cls, host: str, transport: Transport, timeout: float, *, list_containers: bool = False
    ) -> PodmanEngine:
        """Podman's engine on `transport`, once it has answered its own ping: its
        version is read from /libpod/info (kept for the first `info()`), and its
        compatible API is spoken at the version every Podman 4 and 5 serves. With
        `list_containers`, for a caller about to list everything, libpod's container
        listing is asked beside /info: Podman takes a third of a second for each."""
        version = {"ApiVersion": COMPATIBLE_API}
        engine = cls(host, timeout=timeout, transport=transport, version=version)
        with ThreadPoolExecutor(max_workers=1) as pool:
            if list_containers:
                engine._opened_listing = pool.submit(
                    engine._libpod, "GET", LIST_CONTAINERS, "list containers", ALL_STATES
                )
            info = engine.libpod_info()
        release = str(section(info, "version").get("Version") or "")
        component = {"Name": "Podman Engine", "Version": release}
        engine.version_answer = {**version, "Version": release, "Components": [component]}
        engine._opened_info = info
        return engine

    @classmethod
    def over(cls, engine: DockerEngine) -> PodmanEngine:
        """Podman's engine on the connection `engine` opened, its /version answered."""
        return cls(
            engine.host,
            timeout=engine.timeout,
            transport=engine._http,
            version=engine.version_answer,
        )

    def capabilities(self) -> Capabilities:
        """Anonymous volumes are marked (libpod's listing); there is no build cache that
        the API can list; the storage is containers/storage."""
        return Capabilities(
            kind="podman",
            same_host=self.host.startswith("unix://"),
            marks_anonymous_volumes=True,
            build_cache=False,
            storage="containers-storage",
        )

    def _libpod(self, method: str, path: str, what: str, params: Any = None) -> Any:
        return self._json(method, LIBPOD + path, what, params)

    def libpod_info(self) -> JSONObject:
        got, self._opened_info = self._opened_info, None
        if got is not None:
            return got
        got = self._libpod("GET", "/info", "info")
        if not isinstance(got, dict):
            raise EngineError("info: unexpected answer from the engine")
        return got

    def version(self) -> JSONObject:
        """The answer given when the engine was opened: Podman takes most of a second
        for each /version (it asks conmon and the OCI runtime theirs)."""
        return self.version_answer

    def info(self) -> JSONObject:
        """libpod's /info, in the compatible names bilge reads: the storage root and
        driver, the volume path and the log driver (the compatible /info leaves that
        empty, and costs as much again)."""
        libpod = self.libpod_info()
        host = section(libpod, "host")
        graph_root, driver, volume_path = self._storage = location_in(libpod)
        return {
            "DockerRootDir": graph_root,
            "Driver": driver,
            "VolumePath": volume_path,
            "LoggingDriver": str(host.get("logDriver") or ""),
            "Name": str(host.get("hostname") or ""),
            "ServerVersion": str(self.version_answer.get("Version") or ""),
        }

    def storage_location(self) -> tuple[str, str, str] | None:
        """(graph root, driver, volume path) as the engine last said, without asking it."""
        if self._storage is None and self._opened_info is not None:
            self._storage = location_in(self._opened_info)
        return self._storage

    def containers(self, *, size: bool) -> list[JSONObject]:
        """libpod's listing, with each container's volumes read from Podman's own
        database when it is on this host (libpodstate.py): the compatible listing
        names them too, but costs seconds on a crowded host. Otherwise, or when
        sizes are asked for, the compatible listing, with each exited container's
        finishing time from libpod's (the compatible one has only "Exited (0) 5
        minutes ago")."""
        got = self._opened_containers() if not size else None
        if got is None:
            got = self._libpod("GET", LIST_CONTAINERS, "list containers", ALL_STATES)
        if not isinstance(got, list):
            raise EngineError("list containers: unexpected answer from the engine")
        listed = objects(got)
        if not size and self.host.startswith("unix://"):
            fast = self._with_state_mounts(listed)
            if fast is not None:
                return fast
        compatible = super().containers(size=size)
        extras = {str(c.get("Id")): libpod_extras(c) for c in listed}
        for item in compatible:
            if isinstance(item, dict):
                item.update(extras.get(str(item.get("Id")), {}))
        return compatible

    def _opened_containers(self) -> Any:
        """The listing asked when the engine was opened, once; None if there is none
        or it failed (the listing is then asked again, and fails the usual way)."""
        listing, self._opened_listing = self._opened_listing, None
        if listing is None or listing.exception() is not None:
            return None
        return listing.result()

    def _with_state_mounts(self, listed: list[JSONObject]) -> list[JSONObject] | None:
        """libpod's listing in the compatible shape, its volume mounts from the
        database; None when the database cannot be read or does not know one of
        the containers (created since it was read: its mounts are not known)."""
        if self.storage_location() is None:
            try:
                self.info()
            except EngineError:
                return None  # the compatible listing then fails or answers for itself
        graph_root, _, volume_path = self._storage or ("", "", "")
        mounts = container_volumes(graph_root) if graph_root else None
        if mounts is None or any(str(c.get("Id")) not in mounts for c in listed):
            return None
        return [compatible_container(c, mounts[str(c.get("Id"))], volume_path) for c in listed]

    def networks(self) -> list[JSONObject]:
        """libpod's listing in the compatible shape: the compatible one takes seconds
        on a host with a few hundred containers (it gathers each network's endpoints,
        which the planner reads from the containers' own listing anyway). Podman's
        default network keeps its name, "podman", which bilge counts as built in."""
        got = self._libpod("GET", "/networks/json", "list networks")
        if not isinstance(got, list):
            raise EngineError("list networks: unexpected answer from the engine")
        return [
            {
                "Id": n.get("id"),
                "Name": n.get("name"),
                "Driver": n.get("driver"),
                "Scope": "local",
                "Created": n.get("created"),
                "Labels": n.get("labels") or {},
                "Containers": {},
            }
            for n in objects(got)
        ]

    def volumes(self) -> list[JSONObject]:
        """libpod's listing: it says which volumes are anonymous."""
        got = self._libpod("GET", "/volumes/json", "list volumes")
        if not isinstance(got, list):
            raise EngineError("list volumes: unexpected answer from the engine")
        return got

    def system_df(self, *, build_cache_only: bool = False) -> JSONObject:
        """libpod's /system/df in the compatible shape bilge reads (images' shared
        bytes, volumes' sizes); Podman has no build cache to list."""
        if build_cache_only:
            return {"BuildCache": []}
        got = self._libpod("GET", "/system/df", "disk usage")
        if not isinstance(got, dict):
            raise EngineError("disk usage: unexpected answer from the engine")
        images = [
            {"Id": with_prefix(str(i.get("ImageID") or "")), "SharedSize": i.get("SharedSize")}
            for i in objects(got.get("Images"))
        ]
        volumes = [
            {"Name": v.get("VolumeName"), "UsageData": {"Size": v.get("Size", -1)}}
            for v in objects(got.get("Volumes"))
        ]
        return {"Images": images, "Volumes": volumes, "BuildCache": []}

    def containers_using(
        self, *, volume: str = "", image: str = "", network: str = ""
    ) -> list[str]:
        """As Docker's, but Podman's `ancestor` filter finds nothing for a
        "sha256:"-prefixed id: the bare id is asked instead."""
        return super().containers_using(volume=volume, image=bare_id(image), network=network)

    def container_state(self, container_id: str) -> JSONObject:
        """From Podman's database when it is on this host (libpodstate.py): an
        inspect costs Podman 7 ms of CPU, as much again as removing the container
        takes, and apply asks this just before each removal."""
        location = self.storage_location()
        if self.host.startswith("unix://") and location is not None and location[0]:
            state = container_state(location[0], container_id)
            if state is not None:
                return state
        return super().container_state(container_id)

    def inspect_image(self, image_id: str) -> JSONObject:
        doc = dict(super().inspect_image(image_id))
        doc["Id"] = with_prefix(str(doc.get("Id") or ""))
        return doc

    def remove_container(self, container_id: str, *, volumes: bool = False) -> None:
        """libpod's removal: on 400 containers a second faster in all than the
        compatible one. libpod calls the compatible `v` `volumes` (and ignores `v`);
        either way only the container's anonymous volumes go with it."""
        params = {"volumes": "true" if volumes else "false", "force": "false", "depend": "false"}
        what = f"remove container {container_id[:12]}"
        with conflicts():
            self._libpod("DELETE", f"/containers/{quoted(container_id)}", what, params)

    def remove_volume(self, name: str) -> None:
        with conflicts():
            super().remove_volume(name)

    def remove_image(self, ref: str) -> None:
        with conflicts():
            super().remove_image(ref)

    def remove_network(self, network_id: str) -> None:
        with conflicts():
            super().remove_network(network_id)

    def remove_build_cache(self, record_id: str) -> int:
        raise EngineError("Podman keeps no build cache that bilge can remove")

    def events(self, kinds: tuple[str, ...]) -> EventStream:
        return _PodmanEvents(self, super().events(kinds))

    def past_events(self, kinds: tuple[str, ...], since: float) -> list[JSONObject]:
        """Events Podman kept on disk since `since` (Unix time): it keeps them across
        restarts, which the compatible API's since/until does not read reliably."""
        # No `until`: with it Podman 4.3 returns only the first event; stream=false
        # ends at the log's current end anyway.
        params = {
            "stream": "false",
            "since": f"{since:.0f}",
            "filters": json.dumps({"type": list(kinds)}),
        }
        status, body = self._http.request("GET", LIBPOD + "/events", params)
        check_status(status, body, "past events")
        lines = body.splitlines()
        return [self.normalise(e) for e in parse_event_lines(lines) if self.believable(e)]

    @staticmethod
    def normalise(event: JSONObject) -> JSONObject:
        """In Docker's words: "died" is "die", image ids carry "sha256:"."""
        event = dict(event)
        if event.get("Action") == "died":
            event["Action"] = event["status"] = "die"
        actor = event.get("Actor")
        if event.get("Type") == "image" and isinstance(actor, dict):
            event["Actor"] = {**actor, "ID": with_prefix(str(actor.get("ID") or ""))}
        return event

    def believable(self, event: JSONObject) -> bool:
        """False for an image "delete" event of an image that is still there: Podman
        emits one even when the removal failed."""
        actor = event.get("Actor")
        if event.get("Type") != "image" or event.get("Action") != "delete":
            return True
        ident = str(actor.get("ID") or "") if isinstance(actor, dict) else ""
        try:
            self.inspect_image(ident)
        except ObjectGone:
            return True
        except EngineError:
            return False
        return False


class _PodmanEvents:
    """The compatible event stream, in Docker's words, without false deletions."""

    def __init__(self, engine: PodmanEngine, stream: EventStream) -> None:
        self._engine, self._stream = engine, stream

    def __iter__(self) -> Iterator[JSONObject]:
        for event in self._stream:
            if self._engine.believable(event):
                yield self._engine.normalise(event)

    def close(self) -> None:
        self._stream.close()
