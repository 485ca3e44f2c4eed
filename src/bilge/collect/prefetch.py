"""Reading the data-root in child processes while the parent does everything else.

Walking every container's directories and every volume's content is most of
what `collect` costs on a crowded host, and it is system calls, not Python:
threads would only fight over the GIL. So as soon as the command line is
parsed, bilge forks one reader per core (each takes every n-th container and
volume) that reads the data-root of a local engine while the parent loads the
rest of bilge, reads the policy and lists the engine's objects. The parent
then takes the readers' answers for the objects the engine listed, and reads
anything they did not see (created in the meantime, or a reader that failed)
itself. When every reader fails, the parent reads everything itself.

Once the readers are forked (forking a threaded process could copy a held
lock), a thread lists the engine's objects too (listing.py). On Podman that
thread also tells the readers where the storage is, through a pipe each, as soon
as it has opened the engine: asking Podman takes a third of a second of its CPU,
which three processes asking at once would only share.
"""

from __future__ import annotations

import contextlib
import json
import os
import pickle
import select
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from bilge.collect.cstorage import ContainersStorage
from bilge.collect.dataroot import (
    ContainerFiles,
    DataRoot,
    VolumeScan,
    looks_anonymous,
)
from bilge.collect.listing import Listing, ListingThread
from bilge.engine.docker import DockerEngine
from bilge.engine.libpod import LIBPOD
from bilge.engine.podman import PodmanEngine
from bilge.engine.transport import UnixHTTP
from bilge.errors import BilgeError
from bilge.safejson import loads_json

#: The child only asks the engine where its data-root is; a slow answer means
#: a busy engine, and the parent's own reading is then as good.
INFO_TIMEOUT_SECONDS = 10
#: Readers forked at most: one per core helps, more only fight over the disk.
MAX_READERS = 4
#: How long a child waits to be told where Podman's storage is (the parent opens
#: the engine in a few hundred milliseconds, or fails and says so at once).
TOLD_TIMEOUT_SECONDS = 30


@dataclass
class DataRootFacts:
    """What the child read: per container id and per volume name."""

    path: str
    driver: str
    containers: dict[str, ContainerFiles] = field(default_factory=dict)
    volumes: dict[str, VolumeScan | None] = field(default_factory=dict)


class Prefetch:
    """Children reading one local engine's data-root, each its share of it, and
    a thread listing the engine."""

    def __init__(self, readers: list[tuple[int, int, int]], host: str | None = None) -> None:
        """`readers`: (pid, answer fd, location fd) of each child; with `host`, a
        thread lists that engine and tells the children where Podman's storage is."""
        self._readers: list[tuple[int, int, int]] | None = readers
        self._locations = [told for _, _, told in readers]
        self._told = threading.Lock()
        self._facts: DataRootFacts | None = None
        self._lister = ListingThread(host, on_open=self._tell) if host else None

    @classmethod
    def start(
        cls, host: str, count: int | None = None, *, skip_named: bool = False
    ) -> Prefetch | None:
        """Fork the readers for `host`, if it is a local socket and forking is safe:
        one per core (at most MAX_READERS), since walking trees is system calls.
        `skip_named`: the command needs nothing from inside named volumes (a plan
        under a policy that keeps them all): they are left unread, and are then
        "not seen" in the snapshot, as a volume on another machine is."""
        if not host.startswith("unix://") or threading.active_count() > 1:
            return None  # forking a threaded process could copy a held lock
        count = count or max(1, min(MAX_READERS, os.cpu_count() or 1))
        readers: list[tuple[int, int, int]] = []
        for index in range(count):
            inherited = [fd for _, answer, told in readers for fd in (answer, told)]
            reader = _fork(host, index, count, skip_named, inherited)
            if reader is not None:
                readers.append(reader)
        return cls(readers, host) if readers else None

    def _tell(self, engine: DockerEngine | None) -> None:
        """Tell the children where Podman keeps its storage, once the listing thread
        has opened it (it asked that much of Podman already); Docker's children ask
        dockerd themselves, and an engine not opened leaves them nothing to read."""
        location = engine.storage_location() if isinstance(engine, PodmanEngine) else None
        line = json.dumps(list(location)).encode() + b"\n" if location else b"\n"
        with self._told:
            for fd in self._locations:
                with contextlib.suppress(OSError):  # a child that is gone
                    os.write(fd, line)
                os.close(fd)
            self._locations = []

    def engine(self, host: str) -> DockerEngine | None:
        """The listing thread's engine for `host`, ready to use, if it has one."""
        return self._lister.engine(host) if self._lister else None

    def listing(self, host: str) -> Listing | None:
        """The engine's listing, if it was made for `host` (once; waits for it)."""
        return self._lister.take(host) if self._lister else None

    def facts(self, path: str, driver: str) -> DataRootFacts | None:
        """The children's answers, merged, if they read this data-root; waits for them."""
        if self._readers is not None:
            self._facts = _merge([_receive(fd) for _, fd, _ in self._readers])
            self._reap()
        facts = self._facts
        if facts is None or facts.path != path or facts.driver != driver:
            return None
        return facts

    def close(self) -> None:
        """Stop the children if their answers were never asked for (an early error)."""
        self._tell(None)  # a child still waiting to be told reads nothing
        if self._readers is not None:
            for _, fd, _ in self._readers:
                os.close(fd)  # the child's next write fails, and it exits
            self._reap()

    def _reap(self) -> None:
        for pid, _, _ in self._readers or ():
            with contextlib.suppress(ChildProcessError):  # already reaped
                os.waitpid(pid, 0)
        self._readers = None


def _fork(
    host: str, index: int, count: int, skip_named: bool, inherited: list[int]
) -> tuple[int, int, int] | None:
    """A child reading share `index`; returns (pid, its answer, where to tell it).
    `inherited`: the earlier children's pipes, which this one must not hold open."""
    read_fd, write_fd = os.pipe()
    told_fd, tell_fd = os.pipe()
    try:
        pid = os.fork()
    except OSError:
        for fd in (read_fd, write_fd, told_fd, tell_fd):
            os.close(fd)
        return None
    if pid == 0:  # pragma: no cover - the child's coverage is not collected
        for fd in (read_fd, tell_fd, *inherited):
            os.close(fd)
        _child(host, write_fd, told_fd, index, count, skip_named=skip_named)
    os.close(write_fd)
    os.close(told_fd)
    return pid, read_fd, tell_fd


def _merge(parts: list[DataRootFacts | None]) -> DataRootFacts | None:
    """One answer from the shares; a share that failed is read by the parent later."""
    done = [p for p in parts if p is not None]
    if not done or any((p.path, p.driver) != (done[0].path, done[0].driver) for p in done):
        return None
    merged = DataRootFacts(done[0].path, done[0].driver)
    for part in done:
        merged.containers.update(part.containers)
        merged.volumes.update(part.volumes)
    return merged


def _receive(fd: int) -> DataRootFacts | None:
    chunks = []
    with os.fdopen(fd, "rb") as pipe:
        while chunk := pipe.read(1 << 16):
            chunks.append(chunk)
    try:
        # Our own forked child wrote it: the same program, the same user.
        facts = pickle.loads(b"".join(chunks))
    except Exception:  # an empty or cut-off answer: the child failed
        return None
    return facts if isinstance(facts, DataRootFacts) else None


def _child(
    host: str, write_fd: int, told_fd: int, index: int, count: int, *, skip_named: bool
) -> None:  # pragma: no cover
    code = 0
    try:
        facts = read_data_root(host, index, count, skip_named=skip_named, told_fd=told_fd)
        if facts is not None:
            with os.fdopen(write_fd, "wb") as pipe:
                pipe.write(pickle.dumps(facts, protocol=pickle.HIGHEST_PROTOCOL))
    except BaseException:  # the parent reads the data-root itself
        code = 1
    finally:
        os._exit(code)


def read_data_root(
    host: str,
    index: int = 0,
    count: int = 1,
    *,
    skip_named: bool = False,
    told_fd: int | None = None,
) -> DataRootFacts | None:
    """Containers' and local volumes' facts, read from the storage of the engine at
    `host` (None when it is not readable from here): share `index` of `count`, every
    count-th object in name order. With `skip_named`, named volumes are recorded as
    not seen instead of read. dockerd is asked where its data-root is; Podman's
    location is read from `told_fd` (the parent asked Podman, which takes a third of
    a second to answer)."""
    http = UnixHTTP(host, timeout=INFO_TIMEOUT_SECONDS)
    try:
        podman = http.request("GET", LIBPOD + "/_ping")[0] == 200
        status, body = (0, b"") if podman else http.request("GET", "/info")
        info = loads_json(body) if status == 200 else {}
    except (BilgeError, ValueError):
        return None
    finally:
        http.close()
    if podman:
        return _read_podman_storage(told_fd, index, count, skip_named)
    path, driver = str(info.get("DockerRootDir") or ""), str(info.get("Driver") or "")
    if not path or not DataRoot.readable(path):
        return None
    root = DataRoot(path, driver)
    facts = DataRootFacts(path, driver)
    ids = _names(root.path / "containers")[index::count]
    _read_share(root, facts, ids, _names(root.path / "volumes")[index::count], skip_named)
    return facts


def _read_podman_storage(
    told_fd: int | None, index: int, count: int, skip_named: bool
) -> DataRootFacts | None:
    location = _told(told_fd)
    if location is None or not ContainersStorage.readable(location[0]):
        return None
    path, driver, volume_path = location
    root = ContainersStorage(path, driver, volume_path)
    facts = DataRootFacts(path, driver)
    ids = sorted(root.container_ids())[index::count]
    _read_share(root, facts, ids, _names(root.volume_path)[index::count], skip_named)
    return facts


def _told(fd: int | None) -> tuple[str, str, str] | None:
    """The (graph root, driver, volume path) line the parent writes, if it does in time."""
    if fd is None:
        return None
    line = b""
    deadline = time.monotonic() + TOLD_TIMEOUT_SECONDS
    while not line.endswith(b"\n"):
        left = deadline - time.monotonic()
        if left <= 0 or not select.select([fd], [], [], left)[0]:
            return None
        chunk = os.read(fd, 4096)
        if not chunk:
            return None
        line += chunk
    try:
        got = json.loads(line)
    except ValueError:
        return None
    if not isinstance(got, list) or len(got) != 3 or not all(isinstance(x, str) for x in got):
        return None
    return got[0], got[1], got[2]


def _read_share(
    root: DataRoot | ContainersStorage,
    facts: DataRootFacts,
    ids: list[str],
    volumes: list[str],
    skip_named: bool,
) -> None:
    for cid in ids:
        facts.containers[cid] = root.container(cid)
    for name in volumes:
        data = root.volume_dir(name) / "_data"
        if skip_named and not looks_anonymous(name):
            facts.volumes[name] = None  # not seen, so never taken for empty
        elif data.is_dir():
            facts.volumes[name] = root.scan_volume(name, str(data))


def _names(directory: Path) -> list[str]:
    try:
        return sorted(e.name for e in os.scandir(directory) if e.is_dir(follow_symlinks=False))
    except OSError:
        return []
