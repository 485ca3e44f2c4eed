"""What Podman's own database says of its containers: the volumes each mounts,
and each one's state.

Podman's libpod listing answers in a fraction of a second but names only the
mount points of a container, not its volumes; the compatible listing names
them but costs seconds on a host with a few hundred containers (2 to 4 s for
400 on Podman 4.3, against 0.3 s). An inspect costs Podman 7 ms of CPU, as much
again as removing the container, and apply asks for the state of each just
before removing it. Both facts are in libpod's database, which Podman 4 keeps
as a bbolt file beside its storage (`<graphRoot>/libpod/bolt_state.db` unless
its static dir was moved). When that file is readable here it answers exactly,
in microseconds; otherwise the caller asks the engine.

Consistency, without ever making Podman wait: bbolt never writes over a page
that the latest committed transaction can reach, and a page freed by
transaction T+1 is reused at the earliest by T+2, which writes its pages before
its meta page: it may be under way, unseen, as soon as T+1 is committed. So a
read that starts from meta page T is sound if, once it is done, T is still the
newest transaction; otherwise it is read again. (At most T+1 is not enough: a
test that reads while Podman creates and removes containers once found a
container missing that way.) A flock would make it simpler, but Podman opens
the file for each operation and, finding it locked, sleeps 50 ms before trying
again: 400 removals took 9 s instead of 4 that way. The database must also say
it belongs to the storage the engine reported (its runtime config records the
graph root), else it is another Podman's and is not used.
"""

from __future__ import annotations

import contextlib
import mmap
import os
import stat
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TypeVar

from bilge.engine.base import JSONObject
from bilge.engine.boltdb import BoltError, BoltFile
from bilge.safejson import loads_json

T = TypeVar("T")

DB_NAME = "bolt_state.db"
#: Reads overtaken by a commit: more in a row means Podman is busy writing, and the
#: engine's own answer is as quick then.
ATTEMPTS = 8
#: A database larger than this is not read (a million containers would not need it).
MAX_DB_BYTES = 1 << 30

Mounts = dict[str, tuple[tuple[str, str], ...]]
#: Podman's container states (its define.ContainerStatus, in order), in the words of
#: Docker's inspect: "configured" is created but not yet in the OCI runtime,
#: "stopped" exited but not yet cleaned up.
_STATES = {
    1: "created",
    2: "created",
    3: "running",
    4: "exited",
    5: "paused",
    6: "exited",
    7: "removing",
    8: "stopping",
}


def database_path(graph_root: str) -> Path:
    """Where Podman keeps its database by default: the static dir under the graph root."""
    return Path(graph_root, "libpod", DB_NAME)


def container_volumes(graph_root: str) -> Mounts | None:
    """Container id -> the (volume name, destination) pairs it mounts, for every
    container in the database of the Podman whose storage is `graph_root`; None
    when that database cannot be read here or cannot be trusted."""

    def read(db: BoltFile) -> Mounts | None:
        containers = db.root.bucket(b"ctr")
        if containers is None:
            return None
        return {
            key.decode(): _named_volumes(bucket.get(b"config"))
            for key, bucket in containers.buckets()
        }

    return _consistent(graph_root, read)


def container_state(graph_root: str, container_id: str) -> JSONObject | None:
    """The state Podman recorded for the container, in the words of Docker's
    inspect ("Status", "StartedAt", "FinishedAt"); None when the database cannot
    be read here or does not hold the container (the engine is asked then).

    A start holds the container's lock until its state is saved as running, and
    a removal takes that lock and refuses a running container; an exit not yet
    noticed reads as still running: a removal then skipped, never a wrong one."""

    def read(db: BoltFile) -> JSONObject | None:
        containers = db.root.bucket(b"ctr")
        found = containers.bucket(container_id.encode()) if containers is not None else None
        raw = found.get(b"state") if found is not None else None
        doc = loads_json(raw) if raw is not None else None
        if not isinstance(doc, dict) or not isinstance(doc.get("state"), int):
            return None
        return {
            "Status": _STATES.get(doc["state"], "unknown"),
            "StartedAt": str(doc.get("startedTime") or ""),
            "FinishedAt": str(doc.get("finishedTime") or ""),
        }

    return _consistent(graph_root, read)


def _consistent(graph_root: str, read: Callable[[BoltFile], T | None]) -> T | None:
    """`read` on the database of the Podman whose storage is `graph_root`, done
    again while a commit may have reused what it read (module docstring); None
    when the file is not that storage's, not readable, or keeps changing."""
    try:
        with _mapped(database_path(graph_root)) as data:
            for _ in range(ATTEMPTS):
                db = BoltFile(data)
                try:
                    if not _belongs_to(db, graph_root):
                        return None
                    got: T | None = read(db)
                except (BoltError, ValueError):
                    got = None  # garbage from a page reused under the read, or the file's
                if BoltFile(data).txid == db.txid:
                    return got
    except (OSError, BoltError, ValueError):
        pass
    return None


def _belongs_to(db: BoltFile, graph_root: str) -> bool:
    config = db.root.bucket(b"runtime-config")
    recorded = config.get(b"graph-root") if config is not None else None
    if recorded is None:
        return False
    return os.path.normpath(recorded.decode()) == os.path.normpath(graph_root)


@contextlib.contextmanager
def _mapped(path: Path) -> Iterator[memoryview]:
    """The file mapped read-only (shared: Podman's later commits show through)."""
    # Non-blocking: a FIFO in its place must not hang bilge; only a file is read.
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC | os.O_NOFOLLOW | os.O_NONBLOCK)
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode) or st.st_size == 0 or st.st_size > MAX_DB_BYTES:
            raise BoltError(f"{path}: not a database file of a readable size")
        size = st.st_size
        mapped = mmap.mmap(fd, size, mmap.MAP_SHARED, mmap.PROT_READ)
    finally:
        os.close(fd)  # the map keeps its own reference to the file
    try:
        yield memoryview(mapped)
    finally:
        with contextlib.suppress(BufferError):  # views still alive: unmapped with them
            mapped.close()


def _named_volumes(raw: bytes | None) -> tuple[tuple[str, str], ...]:
    """(name, destination) of each volume in one container's config."""
    doc = loads_json(raw) if raw is not None else None
    if not isinstance(doc, dict):
        raise ValueError("a container without its config")
    named = doc.get("namedVolumes")
    if not isinstance(named, list | None):
        raise ValueError("namedVolumes is not a list")
    mounts = []
    for volume in named or ():
        name = volume.get("volumeName") if isinstance(volume, dict) else None
        dest = volume.get("dest") if isinstance(volume, dict) else None
        if not isinstance(name, str) or not name or not isinstance(dest, str):
            raise ValueError("a named volume without its name")
        mounts.append((name, dest))
    return tuple(mounts)
