"""Rootless Podman: bilge run by an unprivileged user finds that user's Podman socket
($XDG_RUNTIME_DIR/podman/podman.sock) with no -H and no environment, reads the
user's own storage (~/.local/share/containers/storage), keeps a database's volume and
removes the rest.

A throw-away user (subordinate uid and gid ranges, a home under /tmp) runs its own
`podman system service`, stopped by its pid afterwards; its storage is removed with
the home. bilge runs as that user on Debian's python3 with this checkout's sources and
the virtual environment's packages (the venv's own interpreter lives under /root).
"""

from __future__ import annotations

import contextlib
import json
import os
import pwd
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.integration.helpers import REPO_ROOT

SYSTEM_PYTHON = Path("/usr/bin/python3")
CONF = """[containers]
default_ulimits = ["nofile=1024:1024", "nproc=1024:1024"]
netns = "none"
[engine]
cgroup_manager = "cgroupfs"
events_logger = "file"
lock_type = "file"
"""
POLICY = '[containers]\nexited_after = "0s"\n[volumes]\nanonymous_after = "0s"\n'


@dataclass(frozen=True)
class User:
    name: str
    uid: int
    home: Path
    runtime: Path

    def env(self) -> dict[str, str]:
        code = self.home / "py"
        return {
            "HOME": str(self.home),
            "USER": self.name,
            "PATH": "/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin",
            "XDG_RUNTIME_DIR": str(self.runtime),
            "CONTAINERS_CONF": str(self.home / "containers.conf"),
            "PYTHONPATH": f"{code / 'src'}:{code / 'site-packages'}",
        }

    def run(self, *argv: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run(
            ["runuser", "-u", self.name, "--", *argv],
            env=self.env(), cwd=self.home, capture_output=True, text=True, timeout=300,
            check=False,
        )  # fmt: skip
        if check and proc.returncode != 0:
            raise AssertionError(f"{argv}: exit {proc.returncode}: {proc.stderr[-1500:]}")
        return proc

    def podman(self, *args: str) -> subprocess.CompletedProcess[str]:
        return self.run("podman", *args)

    def bilge(self, *args: str) -> subprocess.CompletedProcess[str]:
        config = str(self.home / "bilge.toml")
        return self.run(str(SYSTEM_PYTHON), "-m", "bilge", "-c", config, *args, check=False)


@pytest.fixture(scope="module")
def rootless() -> Iterator[User]:
    if not SYSTEM_PYTHON.exists() or shutil.which("newuidmap") is None:
        pytest.fail("scripts/sandbox-engine install provides python3 and uidmap")
    home = Path(tempfile.mkdtemp(prefix="bilge-rootless-"))
    name = f"bilgerl{os.getpid() % 100000}"
    subprocess.run(["useradd", "-d", str(home), "-M", "-s", "/bin/sh", name], check=True)
    entry = pwd.getpwnam(name)
    user = User(name, entry.pw_uid, home, Path(f"/run/user/{entry.pw_uid}"))
    service: subprocess.Popen[bytes] | None = None
    try:
        _ranges(name)
        user.runtime.mkdir(parents=True, exist_ok=True)
        for path in (home, user.runtime):
            os.chown(path, entry.pw_uid, entry.pw_gid)
            path.chmod(0o700)
        _share_code(home)
        (home / "containers.conf").write_text(CONF)
        (home / "bilge.toml").write_text(POLICY)
        service = _start_service(user)
        _build_base(user)
        yield user
    finally:
        if service is not None:
            os.killpg(service.pid, signal.SIGTERM)
            service.wait(timeout=30)
        _stop_processes_of(entry.pw_uid)  # rootless Podman's pause process outlives it
        subprocess.run(["userdel", name], check=False, capture_output=True)
        shutil.rmtree(user.runtime, ignore_errors=True)
        shutil.rmtree(home, ignore_errors=True)


def _stop_processes_of(uid: int) -> None:
    """Every process the throw-away user still runs (all started by this test), by pid."""
    for status in Path("/proc").glob("[0-9]*/status"):
        try:
            uids = next(line for line in status.read_text().splitlines() if line.startswith("Uid:"))
        except (OSError, StopIteration):
            continue
        if int(uids.split()[1]) == uid:
            with contextlib.suppress(ProcessLookupError):
                os.kill(int(status.parent.name), signal.SIGKILL)


def _ranges(name: str) -> None:
    """Subordinate ids for the user (useradd adds them only when configured to)."""
    for table in (Path("/etc/subuid"), Path("/etc/subgid")):
        text = table.read_text() if table.exists() else ""
        if not any(line.startswith(f"{name}:") for line in text.splitlines()):
            with table.open("a") as f:
                f.write(f"{name}:{300000 + (os.getpid() % 1000) * 65536}:65536\n")


def _share_code(home: Path) -> None:
    """This checkout's sources and the venv's packages where the user can read them (a
    checkout under /root is not): hard links, or copies across filesystems."""
    site = next((REPO_ROOT / ".venv" / "lib").glob("python3*/site-packages"))
    for source, name in ((REPO_ROOT / "src", "src"), (site, "site-packages")):
        target = home / "py" / name
        target.parent.mkdir(exist_ok=True)
        linked = subprocess.run(
            ["cp", "-al", str(source), str(target)], check=False, capture_output=True
        )
        if linked.returncode != 0:
            shutil.rmtree(target, ignore_errors=True)
            shutil.copytree(source, target, symlinks=True)
    subprocess.run(["chmod", "-R", "a+rX", str(home / "py")], check=True)


def _start_service(user: User) -> subprocess.Popen[bytes]:
    (user.runtime / "podman").mkdir(exist_ok=True)
    os.chown(user.runtime / "podman", user.uid, -1)
    socket = user.runtime / "podman" / "podman.sock"
    service = subprocess.Popen(
        ["runuser", "-u", user.name, "--", "podman", "system", "service", "--time=0",
         f"unix://{socket}"],
        env=user.env(), cwd=user.home, start_new_session=True,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    deadline = time.monotonic() + 60
    while not socket.exists():
        assert service.poll() is None and time.monotonic() < deadline, "no rootless service"
        time.sleep(0.1)
    return service


def _build_base(user: User) -> None:
    ctx = user.home / "base"
    ctx.mkdir()
    shutil.copy("/bin/busybox", ctx / "busybox")
    (ctx / "Containerfile").write_text(
        'FROM scratch\nCOPY busybox /bin/busybox\nRUN ["/bin/busybox","--install","-s","/bin"]\n'
    )
    subprocess.run(["chown", "-R", f"{user.uid}", str(ctx)], check=True)
    user.podman("build", "-q", "--layers=false", "--network=none", "-t", "base:1", str(ctx))


def test_rootless_podman_is_found_read_and_cleaned_safely(rootless: User) -> None:
    user = rootless
    run = ["run", "--network", "none"]
    user.podman(*run, "--name", "pg", "-v", "/var/lib/postgresql/data", "base:1",
                "sh", "-c", "mkdir -p /var/lib/postgresql/data/base && "
                "echo 15 > /var/lib/postgresql/data/PG_VERSION")  # fmt: skip
    user.podman(*run, "--name", "job", "-v", "/out", "base:1", "sh", "-c", "echo x > /out/r")

    status = user.bilge("status", "--json")
    assert status.returncode == 0, status.stderr
    engine = json.loads(status.stdout)["engine"]
    assert engine["kind"] == "podman"
    assert engine["host"] == f"unix://{user.runtime}/podman/podman.sock"
    assert engine["data_root"] == f"{user.home}/.local/share/containers/storage"
    assert engine["local"], "the user's own storage is read"

    applied = user.bilge("apply", "--yes", "--json")
    assert applied.returncode == 0, applied.stderr
    removed = {a["name"] for a in json.loads(applied.stdout)["actions"]
               if a["outcome"] == "removed"}  # fmt: skip
    assert "job" in removed and "pg" not in removed
    left = user.podman("ps", "-a", "--format", "{{.Names}}").stdout.split()
    assert left == ["pg"]
    pg_volume = user.podman("inspect", "-f", "{{range .Mounts}}{{.Name}}{{end}}", "pg").stdout
    assert user.podman("volume", "ls", "-q").stdout.split() == [pg_volume.strip()]
