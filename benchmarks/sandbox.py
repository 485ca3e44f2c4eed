"""Private engines for the benchmarks, through `scripts/sandbox-engine`.

Every scenario is built once on an engine whose data-root is a loop-mounted ext4 file;
the file is kept, and every run of every tool gets a fresh engine on an identical copy
of it. Nothing here ever talks to a system engine: clients get `DOCKER_HOST` pointing
at the sandbox's own socket, and Debian's client `/usr/bin/docker` is used.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import subprocess
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import docker

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "scripts" / "sandbox-engine"
DOCKER = "/usr/bin/docker"
BASE_IMAGE = "bilge-sandbox/busybox:latest"


class SandboxError(RuntimeError):
    """scripts/sandbox-engine failed; the message carries its output."""


@dataclass(frozen=True)
class Engine:
    """A running private engine in `dir`, its data-root on `dir/mnt`."""

    dir: Path

    @property
    def host(self) -> str:
        return f"unix://{self.dir}/docker.sock"

    @property
    def mount(self) -> Path:
        return self.dir / "mnt"

    def environ(
        self, host: str | None = None, extra: Mapping[str, str] | None = None
    ) -> dict[str, str]:
        """A client's environment: no inherited DOCKER_* setting, this engine (or
        `host`, a proxy in front of it), the client config in the sandbox."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("DOCKER_")}
        env |= {"DOCKER_HOST": host or self.host, "DOCKER_CONFIG": str(self.dir / "client")}
        env |= {"DOCKER_BUILDKIT": "0", **(extra or {})}
        return env

    def docker(
        self, *args: str, extra: Mapping[str, str] | None = None, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        """`/usr/bin/docker ARGS` against this engine."""
        env = self.environ(extra=extra)
        proc = subprocess.run([DOCKER, *args], check=False, env=env, capture_output=True, text=True)
        if check and proc.returncode != 0:
            raise SandboxError(f"docker {' '.join(args[:3])} failed: {proc.stderr.strip()[-800:]}")
        return proc

    def api(self) -> Any:  # docker.APIClient: docker-py has no types
        return docker.APIClient(base_url=self.host, version="auto", timeout=900)


def _script(*args: str) -> None:
    argv = [str(SCRIPT), *args]
    proc = subprocess.run(
        argv, check=False, capture_output=True, text=True, stdin=subprocess.DEVNULL
    )
    if proc.returncode != 0:
        raise SandboxError(
            f"sandbox-engine {' '.join(args)}: {(proc.stdout + proc.stderr)[-1500:]}"
        )


def install() -> None:
    """Install the engine's Debian packages if missing (as `make setup` does)."""
    _script("install")


def start(directory: Path, *, disk: str | None = None, disk_from: Path | None = None) -> Engine:
    """A fresh engine in `directory` on a new disk of size `disk` or a copy of `disk_from`."""
    stop(directory)
    args = ["start", str(directory)]
    args += ["--disk", disk] if disk else ["--disk-from", str(disk_from)]
    _script(*args)
    return Engine(directory)


def stop(directory: Path, keep_disk: Path | None = None) -> None:
    """Stop the engine in `directory` (if any) and remove it; keep its disk as `keep_disk`.

    A loop device can be detached by the kernel (autoclear) between the script's listing
    and its own detach, which the script reports as a failure; a second stop then finds
    nothing left to detach and finishes the job.
    """
    if not directory.exists():
        return
    args = ["stop", str(directory)] + (["--keep-disk", str(keep_disk)] if keep_disk else [])
    try:
        _script(*args)
    except SandboxError:
        time.sleep(1)
        _script(*args)


@contextlib.contextmanager
def running(directory: Path, disk_from: Path) -> Iterator[Engine]:
    """An engine on a copy of `disk_from`, stopped and removed afterwards."""
    engine = start(directory, disk_from=disk_from)
    try:
        yield engine
    finally:
        stop(directory)


_libc = ctypes.CDLL(None, use_errno=True)


def free_bytes(path: Path) -> int:
    """Bytes free on the filesystem holding `path`, after committing its journal.

    ext4 gives freed blocks back to statvfs only when its journal commits; syncfs
    forces that for this filesystem alone.
    """
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        if _libc.syncfs(fd) != 0:
            os.sync()
    finally:
        os.close(fd)
    st = os.statvfs(path)
    return st.f_bavail * st.f_frsize


def warm(path: Path) -> None:
    """Read every directory and inode of `path` once, so every tool meets a warm cache."""
    subprocess.run(["du", "-s", str(path)], check=True, capture_output=True)


def drop_caches() -> None:
    """Write dirty pages, then drop the page cache, dentries and inodes (a cold cache)."""
    os.sync()
    Path("/proc/sys/vm/drop_caches").write_text("3\n")
