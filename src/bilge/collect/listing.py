"""The engine's listings: what a snapshot is made of, as the engine answered.

Listing a crowded engine is mostly waiting: dockerd builds each answer while
bilge has nothing to do. So `ListingThread` asks for it as soon as the command
line is parsed, while the main thread is still loading the rest of bilge (a
few hundred milliseconds of CPU that would otherwise come first), and
`collect` takes the answers when it gets there. On any failure the thread's
answer is dropped and `collect` lists the engine itself, so errors surface the
usual way.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime

from bilge.collect import storage
from bilge.engine.base import Capabilities, Engine, JSONObject
from bilge.engine.connect import open_engine
from bilge.engine.docker import DockerEngine


@dataclass(frozen=True)
class Listing:
    """One list call per kind of object, and /system/df for the build cache."""

    #: Taken before the first call: grace periods count from here, and anything
    #: that changed after it (a container started since) is caught by apply's re-check.
    taken_at: datetime
    info: JSONObject
    version: JSONObject
    #: The data-root is readable here: sizes come from the disk, not the engine.
    local: bool
    capabilities: Capabilities
    containers: list[JSONObject]
    images: list[JSONObject]
    volumes: list[JSONObject]
    networks: list[JSONObject]
    system_df: JSONObject

    @property
    def data_root(self) -> str:
        return str(self.info.get("DockerRootDir") or "")

    @property
    def driver(self) -> str:
        return str(self.info.get("Driver") or "")

    @property
    def volume_path(self) -> str:
        """Where the engine keeps local volumes, when it says (Podman does)."""
        return str(self.info.get("VolumePath") or "")


def list_engine(engine: Engine, now: datetime, *, read_data_root: bool = True) -> Listing:
    """Ask the engine for everything a snapshot needs."""
    info = engine.info()
    version = engine.version()
    path = str(info.get("DockerRootDir") or "")
    # Read beside the API only an engine on this machine: a remote one's data-root
    # path may well exist here too, holding another engine's files.
    caps = engine.capabilities()
    local = read_data_root and caps.same_host and storage.readable(caps, path)
    with ThreadPoolExecutor(max_workers=2) as pool:
        # On API 1.41 the engine walks its volumes for /system/df whatever we ask;
        # let it do so while it answers the lists, rather than one after the other.
        # With the data-root readable only the build cache is needed from it.
        df = pool.submit(engine.system_df, build_cache_only=local)
        # Podman builds its compatible container and network listings slowly (4 s
        # and 3.5 s for 400 containers, docs/benchmarks.md): side by side, they cost
        # the longer of the two.
        listed_networks = pool.submit(engine.networks)
        containers = engine.containers(size=not local)
        images = engine.images()
        volumes = engine.volumes()
        networks = listed_networks.result()
        system_df = df.result()
    return Listing(
        now, info, version, local, caps, containers, images, volumes, networks, system_df
    )


class ListingThread:
    """Lists a local engine in the background; `take` hands the answer over once."""

    def __init__(
        self, host: str, on_open: Callable[[DockerEngine | None], None] | None = None
    ) -> None:
        """`on_open` is told the engine as soon as it is open (None if it could not be)."""
        self.host = host
        self._on_open = on_open
        self._engine: DockerEngine | None = None
        self._listing: Listing | None = None
        self._thread = threading.Thread(target=self._run, name="bilge-listing", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        # Before the first request: grace periods count from no later than the listing.
        started = datetime.now(UTC)
        try:
            self._engine = open_engine(self.host, list_containers=True)
        except Exception:  # the caller opens the engine itself, and reports the error
            self._engine = None
        finally:
            if self._on_open is not None:
                self._on_open(self._engine)
        if self._engine is None:
            return
        try:
            self._listing = list_engine(self._engine, started)
        except Exception:  # the caller lists the engine itself, and reports the error
            self._listing = None

    def engine(self, host: str) -> DockerEngine | None:
        """The thread's engine for `host` (its API version negotiated), if it got one."""
        if host != self.host:
            return None
        self._thread.join()
        return self._engine

    def take(self, host: str) -> Listing | None:
        """The listing of `host`, if the thread made one without error; waits for it.
        Given once: whatever asks again wants a fresh one."""
        if host != self.host:
            return None
        self._thread.join()
        listing, self._listing = self._listing, None
        return listing
