"""Fixtures for tests against a real, private Docker engine.

`sandbox` (session) starts one engine for the whole run through
`scripts/sandbox-engine`; `disk_sandbox` (session, started only when a test asks for it)
is a second one whose data-root is a 512 MB loop-mounted ext4 filesystem, for disk-full
scenarios. The incident replay has two more: `incident_sandbox` on a 256 MB ext4 disk
(filled to its last block) and `inode_sandbox` on a 256 MB tmpfs with 4,000 inodes
(filled to its last inode). All are stopped at the end of the session, also after a
failure, Ctrl-C or SIGTERM; a session killed outright leaves them behind, and the next
session stops them.

Tests use `engine` / `disk_engine` / `incident_engine` / `inode_engine`: the same
engines, reset after each test (no containers, volumes, custom networks, build cache,
or images but the base image), so that no test sees another's objects. Every test in
this directory is marked `engine` (`pytest -m "not engine"` skips them).

`demo/incident.py`, the incident replay that `scripts/demo` runs, is importable here
as `incident`.
"""

from __future__ import annotations

import fcntl
import os
import signal
import sys
import tempfile
import warnings
from collections.abc import Iterator
from pathlib import Path
from types import FrameType

import pytest

from tests.integration.helpers import Sandbox, reset_engine, start_sandbox, stop_sandbox

HERE = Path(__file__).resolve().parent
PREFIX = "bilge-sandbox-"

# The demo and these tests share the incident replay; it is a script, not a package.
sys.path.insert(0, str(HERE.parents[1] / "demo"))


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if item.path.is_relative_to(HERE):
            item.add_marker(pytest.mark.engine)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _sweep_stale_sandboxes() -> None:
    """Stop sandboxes left behind by sessions that were killed outright (SIGKILL, OOM):
    their directories carry the dead session's pid. Live sessions' ones are left alone."""
    tmp = Path(tempfile.gettempdir())
    locks = Path("/run/lock") if Path("/run/lock").is_dir() else tmp
    with (locks / "bilge-sandbox-sweep.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        for directory in sorted(tmp.glob(f"{PREFIX}*-*")):
            pid = directory.name.removeprefix(PREFIX).split("-")[0]
            if directory.is_dir() and pid.isdigit() and not _alive(int(pid)):
                try:
                    stop_sandbox(directory)
                except RuntimeError as exc:
                    warnings.warn(f"stale sandbox {directory}: {exc}", stacklevel=1)


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def _session_sandbox(
    disk: str | None = None, tmpfs: str | None = None, kind: str = "docker"
) -> Iterator[Sandbox]:
    _sweep_stale_sandboxes()
    # A SIGTERM (CI timeout, `kill`) then tears the engines down like Ctrl-C does.
    trapped = signal.getsignal(signal.SIGTERM) == signal.SIG_DFL
    if trapped:
        signal.signal(signal.SIGTERM, _interrupt)
    # A fresh directory of our own under /tmp, not pytest's basetemp: pytest deletes old
    # basetemps, which must never happen to a directory with mounts in it.
    directory = Path(tempfile.mkdtemp(prefix=f"{PREFIX}{os.getpid()}-"))
    try:
        yield start_sandbox(directory, disk=disk, tmpfs=tmpfs, kind=kind)
    finally:
        stop_sandbox(directory)
        if trapped and signal.getsignal(signal.SIGTERM) is _interrupt:
            signal.signal(signal.SIGTERM, signal.SIG_DFL)


@pytest.fixture(scope="session")
def sandbox() -> Iterator[Sandbox]:
    """The session's private engine (data-root on the host's filesystem)."""
    yield from _session_sandbox(disk=None)


@pytest.fixture(scope="session")
def disk_sandbox() -> Iterator[Sandbox]:
    """A private engine whose data-root is a 512 MB ext4 filesystem of its own."""
    yield from _session_sandbox(disk="512M")


@pytest.fixture(scope="session")
def podman_sandbox() -> Iterator[Sandbox]:
    """A private Podman service (scripts/sandbox-podman), its storage on the host's
    filesystem, driven through its Docker-compatible API by the same client."""
    yield from _session_sandbox(kind="podman")


@pytest.fixture(scope="session")
def podman_disk_sandbox() -> Iterator[Sandbox]:
    """A private Podman service whose storage is a 512 MB ext4 filesystem of its own."""
    yield from _session_sandbox(disk="512M", kind="podman")


@pytest.fixture(scope="session")
def podman_incident_sandbox() -> Iterator[Sandbox]:
    """A private Podman service whose storage is a 256 MB ext4 filesystem (the
    incident replay on Podman)."""
    yield from _session_sandbox(disk="256M", kind="podman")


def _each_engine(request: pytest.FixtureRequest, docker: str, podman: str) -> Iterator[Sandbox]:
    sb: Sandbox = request.getfixturevalue(docker if request.param == "docker" else podman)
    yield sb
    reset_engine(sb)


@pytest.fixture(params=["docker", "podman"])
def either_engine(request: pytest.FixtureRequest) -> Iterator[Sandbox]:
    """Docker's sandbox, then Podman's: a test taking it runs against both, reset
    after each run. Test modules that must hold on both name it `engine`."""
    yield from _each_engine(request, "sandbox", "podman_sandbox")


@pytest.fixture(params=["docker", "podman"])
def either_disk_engine(request: pytest.FixtureRequest) -> Iterator[Sandbox]:
    """Docker's engine, then Podman's, each on a 512 MB disk of its own, reset after
    each run."""
    yield from _each_engine(request, "disk_sandbox", "podman_disk_sandbox")


@pytest.fixture
def engine(sandbox: Sandbox) -> Iterator[Sandbox]:
    """`sandbox`, reset after the test."""
    yield sandbox
    reset_engine(sandbox)


@pytest.fixture
def disk_engine(disk_sandbox: Sandbox) -> Iterator[Sandbox]:
    """`disk_sandbox`, reset after the test."""
    yield disk_sandbox
    reset_engine(disk_sandbox)


@pytest.fixture(scope="session")
def incident_sandbox() -> Iterator[Sandbox]:
    """A private engine whose data-root is a 256 MB ext4 filesystem: small enough to
    fill to its last block in seconds."""
    yield from _session_sandbox(disk="256M")


@pytest.fixture(scope="session")
def inode_sandbox() -> Iterator[Sandbox]:
    """A private engine whose data-root is a 256 MB tmpfs with 4,000 inodes: it runs
    out of inodes long before bytes."""
    yield from _session_sandbox(tmpfs="256M:4000")


@pytest.fixture
def incident_engine(incident_sandbox: Sandbox) -> Iterator[Sandbox]:
    """`incident_sandbox`, reset after the test."""
    yield incident_sandbox
    reset_engine(incident_sandbox)


@pytest.fixture
def inode_engine(inode_sandbox: Sandbox) -> Iterator[Sandbox]:
    """`inode_sandbox`, reset after the test."""
    yield inode_sandbox
    reset_engine(inode_sandbox)
