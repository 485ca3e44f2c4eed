"""Reading the data-root in a child process while the parent does everything else.

Walking every container's directories and every volume's content is most of
what `collect` costs on a crowded host, and it is system calls, not Python:
threads would only fight over the GIL. So as soon as the command line is
parsed, bilge forks a child that reads the data-root of a local engine while
the parent loads the rest of bilge, reads the policy and lists the engine's
objects. The parent then takes the child's answers for the objects the engine
listed, and reads anything the child did not see (created in the meantime)
itself. When anything about the child fails, the parent reads everything
itself, as if there had been no child.
"""

from __future__ import annotations

import contextlib
import json
import os
import pickle
import threading
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from bilge.dataroot import ContainerFiles, DataRoot, VolumeScan, orphaned_layers
from bilge.errors import BilgeError
from bilge.transport import UnixHTTP

#: The child only asks the engine where its data-root is; a slow answer means
#: a busy engine, and the parent's own reading is then as good.
INFO_TIMEOUT_SECONDS = 10


@dataclass
class DataRootFacts:
    """What the child read: per container id and per volume name."""

    path: str
    driver: str
    containers: dict[str, ContainerFiles] = field(default_factory=dict)
    volumes: dict[str, VolumeScan | None] = field(default_factory=dict)
    orphans: list[tuple[str, int, datetime]] | None = None


class Prefetch:
    """A running child reading one local engine's data-root."""

    def __init__(self, pid: int, read_fd: int) -> None:
        self._pid = pid
        self._fd: int | None = read_fd
        self._facts: DataRootFacts | None = None

    @classmethod
    def start(cls, host: str) -> Prefetch | None:
        """Fork the reader for `host`, if it is a local socket and forking is safe."""
        if not host.startswith("unix://") or threading.active_count() > 1:
            return None  # forking a threaded process could copy a held lock
        read_fd, write_fd = os.pipe()
        try:
            pid = os.fork()
        except OSError:
            os.close(read_fd)
            os.close(write_fd)
            return None
        if pid == 0:  # pragma: no cover - the child's coverage is not collected
            os.close(read_fd)
            _child(host, write_fd)
        os.close(write_fd)
        return cls(pid, read_fd)

    def facts(self, path: str, driver: str) -> DataRootFacts | None:
        """The child's answers, if it read this data-root; waits for it to finish."""
        if self._fd is not None:
            self._facts = _receive(self._fd)
            self._fd = None
            self._reap()
        facts = self._facts
        if facts is None or facts.path != path or facts.driver != driver:
            return None
        return facts

    def close(self) -> None:
        """Stop the child if its answers were never asked for (an early error)."""
        if self._fd is not None:
            os.close(self._fd)  # the child's next write fails, and it exits
            self._fd = None
            self._reap()

    def _reap(self) -> None:
        with contextlib.suppress(ChildProcessError):  # already reaped
            os.waitpid(self._pid, 0)


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


def _child(host: str, write_fd: int) -> None:  # pragma: no cover - runs in the child
    code = 0
    try:
        facts = read_data_root(host)
        if facts is not None:
            with os.fdopen(write_fd, "wb") as pipe:
                pipe.write(pickle.dumps(facts, protocol=pickle.HIGHEST_PROTOCOL))
    except BaseException:  # the parent reads the data-root itself
        code = 1
    finally:
        os._exit(code)


def read_data_root(host: str) -> DataRootFacts | None:
    """Every container's and every local volume's facts, read from the data-root
    of the engine at `host` (None when it is not readable from here)."""
    http = UnixHTTP(host, timeout=INFO_TIMEOUT_SECONDS)
    try:
        status, body = http.request("GET", "/info")
        info = json.loads(body) if status == 200 else {}
    except (BilgeError, ValueError):
        return None
    finally:
        http.close()
    path, driver = str(info.get("DockerRootDir") or ""), str(info.get("Driver") or "")
    if not path or not DataRoot.readable(path):
        return None
    root = DataRoot(path, driver)
    facts = DataRootFacts(path, driver)
    for cid in _names(root.path / "containers"):
        facts.containers[cid] = root.container(cid)
    for name in _names(root.path / "volumes"):
        data = root.volume_dir(name) / "_data"
        if data.is_dir():
            facts.volumes[name] = root.scan_volume(name, str(data))
    facts.orphans = orphaned_layers(root)
    return facts


def _names(directory: Path) -> list[str]:
    try:
        return [e.name for e in os.scandir(directory) if e.is_dir(follow_symlinks=False)]
    except OSError:
        return []
