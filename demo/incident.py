"""The incident bilge exists for (see README.md), replayed on a private Docker engine.

A "couchdb" service keeps writing small JSON documents into its named volume
couchdb-data. The engine's data-root then fills up the way the incident's host did:
exited containers and the anonymous volumes they hold, containers removed without
`-v` (their volumes stay behind), dangling volumes, created containers that never
ran, a container logging without limit, and finally filler, until the filesystem
has no free block (or, on a tmpfs with few inodes, no free inode). The service's
writes then fail with "No space left on device" while its reads still work.

The demo (`scripts/demo`) and the integration tests share these functions. They
use only the standard library and Debian's client `/usr/bin/docker`, whose
environment must name a private engine in `DOCKER_HOST`; `fill` also reads the
data-root filesystem with statvfs, so it runs on the engine's host.

    python3 demo/incident.py replay [--inodes] -- BILGE_COMMAND...
    python3 demo/incident.py service | fill [--inodes] | write | read | checksum
"""

from __future__ import annotations

import argparse
import errno
import hashlib
import json
import os
import shlex
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, TextIO

DOCKER_CLI = "/usr/bin/docker"
BASE_IMAGE = "bilge-sandbox/busybox:latest"
#: The base image with `VOLUME /data`: each container of it gets an anonymous volume.
JOB_IMAGE = "bilge-incident/job:latest"
SERVICE = "couchdb"
VOLUME = "couchdb-data"
DATA_DIR = "/opt/couchdb/data"
DOCS_DIR = f"{DATA_DIR}/docs"
#: Every clutter object carries this label, with what it stands for as its value.
LABEL = "bilge-incident.role"
SYSTEM_HOSTS = frozenset({"unix:///var/run/docker.sock", "unix:///run/docker.sock"})
ENOSPC_TEXT = "No space left on device"

Env = Mapping[str, str]
Mode = Literal["bytes", "inodes"]

#: The service: seeds the volume once (a database marker and a few binary
#: attachments), then writes one new avatar document every half second and never
#: deletes one. A write that fails is logged the way CouchDB logs it, and the loop
#: goes on with the next document, so a failed write never touches an older file.
SERVICE_SCRIPT = r"""
set -u
d=/opt/couchdb/data
mkdir -p $d/docs $d/attachments
if [ ! -e $d/_dbs.couch ]; then
    printf 'couchdb-1 _dbs\n' > $d/_dbs.couch
    for i in 1 2 3 4; do
        dd if=/dev/urandom of=$d/attachments/avatar-$i.png bs=4096 count=4 2>/dev/null
    done
fi
n=$(ls $d/docs | wc -l)
while true; do
    n=$((n + 1))
    id=$(printf 'avatar-%06d' $n)
    [ -e $d/docs/$id.json ] && continue
    printf '{"_id":"%s","type":"avatar","owner":"user-%d","bytes":%d,"at":"%s"}\n' \
        $id $((n % 97)) $((n * 37 % 9000 + 1000)) "$(date -u +%Y-%m-%dT%H:%M:%SZ)" \
        > $d/docs/$id.json 2>/dev/null ||
        echo "[error] couchdb: {error,enospc} writing $id" >&2
    sleep 0.5
done
"""

#: An access-log line, for the containers that log without limit.
LOG_LINE = '10.0.3.7 - - "PUT /avatars/user-4711 HTTP/1.1" 201 - 0.004s couchdb'


class DockerFailed(RuntimeError):
    """A `docker` command failed; the message ends with what docker said."""

    def __init__(self, argv: Sequence[str], code: int, stderr: str) -> None:
        self.code = code
        self.stderr = stderr.strip()
        super().__init__(f"{shlex.join(argv)} failed (exit {code}): {self.stderr[-1000:]}")

    @property
    def disk_full(self) -> bool:
        """Whether the engine (or the container) ran out of space (bytes or inodes)."""
        return ENOSPC_TEXT.lower() in self.stderr.lower()


# --- talking to the engine ------------------------------------------------------------


def engine_env(host: str | None = None, base: Env | None = None) -> dict[str, str]:
    """The environment for `/usr/bin/docker`: `base` (default: this process's) with
    `DOCKER_HOST` set to `host` when given. A system engine is refused."""
    env = dict(os.environ if base is None else base)
    if host:
        env["DOCKER_HOST"] = host
    _check_env(env)
    return env


def _check_env(env: Env) -> None:
    # Everything here fills or cleans an engine: never the host's own.
    host = env.get("DOCKER_HOST", "")
    if not host or host in SYSTEM_HOSTS:
        raise ValueError(f"DOCKER_HOST must name a private engine, not {host or 'nothing'!r}")


def docker(
    env: Env, *args: str, check: bool = True, timeout: float = 300
) -> subprocess.CompletedProcess[str]:
    """Run `/usr/bin/docker ARGS` with `env`; raise `DockerFailed` if it fails and
    `check` is true."""
    _check_env(env)
    argv = [DOCKER_CLI, *args]
    proc = subprocess.run(
        argv,
        env=dict(env),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        stdin=subprocess.DEVNULL,
    )
    if check and proc.returncode != 0:
        raise DockerFailed(argv, proc.returncode, proc.stderr or proc.stdout)
    return proc


def data_root(env: Env) -> Path:
    """The engine's data-root (its filesystem is the one that fills up)."""
    return Path(docker(env, "info", "--format", "{{.DockerRootDir}}").stdout.strip())


@dataclass(frozen=True)
class Usage:
    """The data-root filesystem's blocks and inodes, as statvfs reports them to
    an unprivileged writer (ext4's reserved blocks count as used)."""

    total_bytes: int
    free_bytes: int
    total_inodes: int
    free_inodes: int

    @classmethod
    def of(cls, path: Path) -> Usage:
        st = os.statvfs(path)
        return cls(st.f_blocks * st.f_frsize, st.f_bavail * st.f_frsize, st.f_files, st.f_favail)

    def describe(self) -> str:
        used = self.total_bytes - self.free_bytes
        used_inodes = self.total_inodes - self.free_inodes
        return (
            f"{_mb(used)} of {_mb(self.total_bytes)} used ({_pct(used, self.total_bytes)}), "
            f"{_mb(self.free_bytes)} free; inodes {used_inodes:,} of "
            f"{self.total_inodes:,} used ({_pct(used_inodes, self.total_inodes)})"
        )


def _mb(n: int) -> str:
    return f"{n / 1e6:.1f} MB"


def _pct(part: int, whole: int) -> str:
    return f"{100 * part / whole:.0f}%" if whole else "-"


# --- the service ----------------------------------------------------------------------


def start_service(env: Env, *, ready_at: int = 4, timeout: float = 30) -> str:
    """Start the "couchdb" service (named volume couchdb-data at /opt/couchdb/data, no
    network, a log without limit as Docker's default) and wait until it has written
    `ready_at` documents; return its container id. An existing service is reused."""
    if docker(env, "container", "inspect", SERVICE, check=False).returncode != 0:
        docker(env, "volume", "create", VOLUME)
        docker(
            env, "run", "-d", "--name", SERVICE, "--network", "none",
            "-v", f"{VOLUME}:{DATA_DIR}", BASE_IMAGE, "sh", "-c", SERVICE_SCRIPT,
        )  # fmt: skip
    else:
        docker(env, "start", SERVICE)
    wait_for_documents(env, ready_at, timeout=timeout)
    return docker(env, "inspect", "-f", "{{.Id}}", SERVICE).stdout.strip()


def documents(env: Env) -> list[str]:
    """The names of the service's documents, sorted (an empty file is one too: the
    trace of a write that failed)."""
    out = docker(env, "exec", SERVICE, "ls", DOCS_DIR).stdout
    return sorted(out.split())


def wait_for_documents(env: Env, count: int, *, timeout: float = 30) -> list[str]:
    """Wait until the service has at least `count` documents; return their names."""
    deadline = time.monotonic() + timeout
    while len(names := documents(env)) < count:
        if time.monotonic() > deadline:
            raise TimeoutError(f"{SERVICE} wrote {len(names)} of {count} documents")
        time.sleep(0.2)
    return names


def write_probe_argv(name: str) -> list[str]:
    """The `docker` arguments of one document write through the service, as a user
    would try it: a new file `name` in the documents directory."""
    doc = json.dumps({"_id": name.removesuffix(".json"), "type": "avatar"}, separators=(",", ":"))
    # echo, not printf: busybox's printf fails without saying why.
    script = 'echo "$1" > "$2"'
    return ["exec", SERVICE, "sh", "-c", script, "sh", doc, f"{DOCS_DIR}/{name}"]


def write_probe(env: Env, name: str | None = None) -> tuple[bool, str]:
    """Write one new document (`name`, default a fresh one) through the service;
    return whether it worked and what the write said (on a full disk:
    "... No space left on device")."""
    name = name or _new_upload()
    proc = docker(env, *write_probe_argv(name), check=False)
    if proc.returncode != 0:
        # A half-created document must not pass for the service's data later on.
        docker(env, "exec", SERVICE, "rm", "-f", f"{DOCS_DIR}/{name}", check=False)
        return False, (proc.stderr or proc.stdout).strip()
    return True, f"wrote {DOCS_DIR}/{name}"


def _new_upload() -> str:
    return f"upload-{time.time_ns() // 1000}.json"


def read_probe(env: Env) -> tuple[bool, str]:
    """Read the service's first document and count them all; return whether that
    worked and what was read."""
    script = f'cd {DOCS_DIR} && set -- avatar-*.json && echo "$# documents" && cat "$1"'
    proc = docker(env, "exec", SERVICE, "sh", "-c", script, check=False)
    text = (proc.stdout if proc.returncode == 0 else proc.stderr).strip()
    return proc.returncode == 0 and '"_id"' in text, text


# --- checksums ------------------------------------------------------------------------

#: path (relative to the volume's root, "./..."): sha256 of the content
Manifest = dict[str, str]


def volume_manifest(env: Env, volume: str, root: Path | None = None) -> Manifest:
    """Every regular file of `volume` with the sha256 of its content. Read through
    `docker exec` in the running container that mounts it, or from the engine's
    data-root `root` on this host when given."""
    if root is not None:
        return _manifest_of_dir(root / "volumes" / volume / "_data")
    container, mount = _mounting_container(env, volume)
    script = 'cd "$1" && find . -type f -exec sha256sum {} +'
    try:
        out = docker(env, "exec", container, "sh", "-c", script, "sh", mount).stdout
    except DockerFailed as exc:
        # Podman records every exec in its database, on the full disk too: then the
        # volume's files are read where they are, on this host.
        local = data_root(env) / "volumes" / volume / "_data"
        if not exc.disk_full or not local.is_dir():
            raise
        return _manifest_of_dir(local)
    manifest: Manifest = {}
    for line in out.splitlines():
        digest, _, path = line.partition("  ")
        manifest[path] = digest
    return manifest


def _manifest_of_dir(top: Path) -> Manifest:
    manifest: Manifest = {}
    for dirpath, _dirs, files in os.walk(top):
        for name in files:
            path = Path(dirpath, name)
            if path.is_file() and not path.is_symlink():
                rel = "./" + path.relative_to(top).as_posix()
                manifest[rel] = hashlib.sha256(path.read_bytes()).hexdigest()
    return manifest


def _mounting_container(env: Env, volume: str) -> tuple[str, str]:
    """A running container that mounts `volume`, and where."""
    ids = docker(env, "ps", "-q", "--filter", f"volume={volume}").stdout.split()
    if not ids:
        raise LookupError(f"no running container mounts volume {volume}")
    mounts = json.loads(docker(env, "inspect", "-f", "{{json .Mounts}}", ids[0]).stdout)
    return ids[0], next(m["Destination"] for m in mounts if m.get("Name") == volume)


def digest(manifest: Manifest, paths: Iterable[str] | None = None) -> str:
    """One sha256 over the paths and contents of `manifest` (only `paths` if given;
    a path missing from `manifest` changes the digest)."""
    h = hashlib.sha256()
    for path in sorted(manifest if paths is None else paths):
        h.update(f"{path}\0{manifest.get(path, 'missing')}\n".encode())
    return h.hexdigest()


def checksum_volume(env: Env, volume: str, root: Path | None = None) -> str:
    """A digest of every file's path and content in `volume` (see `volume_manifest`)."""
    return digest(volume_manifest(env, volume, root))


# --- filling the disk -----------------------------------------------------------------


@dataclass
class FillReport:
    """What `fill` made, and how full the filesystem ended up."""

    mode: Mode
    made: dict[str, int] = field(default_factory=dict)
    engine_error: str = ""  # the engine's own "no space left on device", if it said so
    usage: Usage | None = None
    seconds: float = 0.0

    def note(self, role: str, count: int = 1) -> None:
        self.made[role] = self.made.get(role, 0) + count


@dataclass(frozen=True)
class Recipe:
    """How much of each kind of clutter, and what each writes into its volume."""

    jobs: int  # exited containers whose anonymous volume holds data
    removed: int  # containers removed without -v: their volumes stay behind
    dangling: int  # volumes created and filled, never used again
    created: int  # containers created and never started
    payload: str  # shell writing a job's data into /data
    filler: str  # shell writing {n} MiB or {n} files into /data
    margin: int  # MiB or inodes the filler leaves for the engine to record its exit


BYTES = Recipe(
    jobs=6,
    removed=4,
    dangling=3,
    created=4,
    payload="dd if=/dev/urandom of=/data/out.bin bs=1M count=10 2>/dev/null",
    filler="dd if=/dev/zero of=/data/filler bs=1M count={n} 2>/dev/null",
    margin=4,
)
INODES = Recipe(
    jobs=6,
    removed=3,
    dangling=2,
    created=4,
    payload="i=0; while [ $i -lt 250 ]; do echo $i > /data/part-$i || exit 1; i=$((i+1)); done",
    filler="i=0; while [ $i -lt {n} ]; do : > /data/f-$i || exit 1; i=$((i+1)); done",
    margin=150,
)
RECIPES: dict[Mode, Recipe] = {"bytes": BYTES, "inodes": INODES}
#: Rounds of topping up: delayed allocation can hand blocks back after a write failed.
TOP_UP_ROUNDS = 5


def fill(env: Env, mode: Mode = "bytes", *, root: Path | None = None) -> FillReport:
    """Add what a neglected host collects until the data-root filesystem is full: no
    free block for an unprivileged writer ("bytes"), or no free inode ("inodes").

    The clutter comes first, big before small; then a filler job writes all but a
    margin into its anonymous volume, and the last of the space is taken from this
    host, in that volume's directory. The margin lets the engine record the
    filler's exit: dockerd 20.10 cannot write the state of a container that exits
    on a full disk, and goes on listing it as running. Last, the engine is asked
    for one more container, and says it has no space left.
    """
    started = time.monotonic()
    root = root or data_root(env)
    recipe = RECIPES[mode]
    report = FillReport(mode)
    steps: list[Callable[[Env, Recipe, FillReport], None]] = [
        _build_job_image,
        _unbounded_logs,
        _exited_jobs,
        _removed_jobs,
        _dangling_volumes,
        _created_containers,
        lambda env, recipe, report: _filler(env, recipe, report, Usage.of(root), mode),
    ]
    for step in steps:
        try:
            step(env, recipe, report)
        except DockerFailed as exc:
            if not exc.disk_full:
                raise
            report.engine_error = exc.stderr
            break
    _top_up(env, root, mode)
    _ask_for_one_more(env, report)
    _top_up(env, root, mode)  # whatever the refused container's clean-up gave back
    report.usage = Usage.of(root)
    report.seconds = time.monotonic() - started
    return report


def is_full(usage: Usage, mode: Mode) -> bool:
    """Whether a new file or block can no longer be had (by an unprivileged writer)."""
    return (usage.free_bytes if mode == "bytes" else usage.free_inodes) == 0


def _run(env: Env, role: str, *args: str) -> str:
    """Create a container labelled with its `role`, without network; return its id.
    `args`: further `docker create` arguments, the image and the command."""
    return docker(
        env, "create", "--network", "none", "--label", f"{LABEL}={role}", *args
    ).stdout.strip()


def _start_and_wait(env: Env, cid: str) -> None:
    docker(env, "start", cid)
    docker(env, "wait", cid)


def _build_job_image(env: Env, recipe: Recipe, report: FillReport) -> None:
    # The classic builder: no build cache, and the image adds no layer of its own.
    dockerfile = f"FROM {BASE_IMAGE}\nVOLUME /data\nLABEL {LABEL}=job-image\n"
    build_env = {**env, "DOCKER_BUILDKIT": "0"}
    proc = subprocess.run(
        [DOCKER_CLI, "build", "-q", "--network=none", "-t", JOB_IMAGE, "-"],
        input=dockerfile,
        env=build_env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if proc.returncode != 0:
        raise DockerFailed(proc.args, proc.returncode, proc.stderr)


def _unbounded_logs(env: Env, recipe: Recipe, report: FillReport) -> None:
    """json-file logs without max-size: one container that keeps logging (a burst,
    then a line every 0.2 s), and an exited one that left a large log."""
    burst = f"yes '{LOG_LINE}' | head -c 6000000"
    then = 'while true; do echo "$(date) GET /_up 200"; sleep 0.2; done'
    ticker = _run(env, "logs-running", "--name", "ticker", BASE_IMAGE, "sh", "-c",
                  f"{burst}; {then}")  # fmt: skip
    docker(env, "start", ticker)
    report.note("logs-running")
    chatty = _run(env, "logs-exited", "--name", "chatty", BASE_IMAGE, "sh", "-c",
                  f"yes '{LOG_LINE}' | head -c 16000000")  # fmt: skip
    _start_and_wait(env, chatty)
    report.note("logs-exited")


def _exited_jobs(env: Env, recipe: Recipe, report: FillReport) -> None:
    for i in range(recipe.jobs):
        cid = _run(env, "exited-job", "--name", f"job-{i + 1}", JOB_IMAGE, "sh", "-c",
                   recipe.payload + "; echo done > /job.log")  # fmt: skip
        _start_and_wait(env, cid)
        report.note("exited-job")


def _removed_jobs(env: Env, recipe: Recipe, report: FillReport) -> None:
    """`docker rm` without -v: the container goes, its anonymous volume stays."""
    for _ in range(recipe.removed):
        cid = _run(env, "removed-job", JOB_IMAGE, "sh", "-c", recipe.payload)
        _start_and_wait(env, cid)
        docker(env, "rm", cid)
        report.note("volume-left-by-rm")


def _dangling_volumes(env: Env, recipe: Recipe, report: FillReport) -> None:
    for _ in range(recipe.dangling):
        name = docker(env, "volume", "create", "--label", f"{LABEL}=dangling").stdout.strip()
        docker(env, "run", "--rm", "--network", "none", "-v", f"{name}:/data",
               BASE_IMAGE, "sh", "-c", recipe.payload)  # fmt: skip
        report.note("dangling-volume")


def _created_containers(env: Env, recipe: Recipe, report: FillReport) -> None:
    for i in range(recipe.created):
        _run(env, "created", "--name", f"never-started-{i + 1}", JOB_IMAGE, "true")
        report.note("created")


def _filler(env: Env, recipe: Recipe, report: FillReport, usage: Usage, mode: Mode) -> None:
    """A job that writes all the free space but `recipe.margin` into its volume."""
    free = usage.free_bytes >> 20 if mode == "bytes" else usage.free_inodes
    if free > recipe.margin:
        cid = _run(env, "filler", JOB_IMAGE, "sh", "-c",
                   recipe.filler.format(n=free - recipe.margin))  # fmt: skip
        _start_and_wait(env, cid)
        report.note("filler")


def _top_up(env: Env, root: Path, mode: Mode) -> None:
    """Take the last free blocks or inodes, writing from this host into the volume
    of an exited job: no container has to exit on the full disk."""
    target = _exited_job_volume(env)
    for round_ in range(TOP_UP_ROUNDS):
        os.sync()
        if is_full(Usage.of(root), mode):
            return
        if mode == "bytes":
            _take_blocks(target, round_)
        else:
            _take_inodes(target, round_)


def _exited_job_volume(env: Env) -> Path:
    """The directory of the anonymous volume of the last exited filler or job."""
    for role in ("filler", "exited-job"):
        ids = docker(env, "ps", "-aq", "--filter", f"label={LABEL}={role}").stdout.split()
        if ids:
            mounts = json.loads(docker(env, "inspect", "-f", "{{json .Mounts}}", ids[0]).stdout)
            return Path(mounts[0]["Source"])
    raise LookupError("no exited job to hold the rest of the filling")


def _take_blocks(directory: Path, round_: int) -> None:
    # One file written in ever smaller pieces takes the last whole megabytes, then
    # tiny files take the last blocks (each needs one block of its own).
    with _no_space_left():
        fd = os.open(directory / f"top-up-{round_}", os.O_WRONLY | os.O_CREAT | os.O_APPEND)
        try:
            for size in (1 << 20, 1 << 14, 1 << 10):
                with _no_space_left():
                    while True:
                        os.write(fd, bytes(size))
        finally:
            os.close(fd)
        for i in range(1 << 20):
            (directory / f"top-up-{round_}-{i}").write_bytes(b"x")


def _take_inodes(directory: Path, round_: int) -> None:
    with _no_space_left():
        for i in range(1 << 20):
            (directory / f"top-up-{round_}-{i}").touch(exist_ok=False)


@contextmanager
def _no_space_left() -> Iterator[None]:
    """Stop the writing inside at "No space left on device"; let other errors through."""
    try:
        yield
    except OSError as exc:
        if exc.errno != errno.ENOSPC:
            raise


def _ask_for_one_more(env: Env, report: FillReport) -> None:
    """One more job, as the host's scheduler would start it: the engine refuses it."""
    proc = docker(env, "create", "--network", "none", "--label", f"{LABEL}=created",
                  JOB_IMAGE, "true", check=False)  # fmt: skip
    if proc.returncode != 0:
        report.engine_error = proc.stderr.strip()
    else:
        report.note("created")


# --- the replay -----------------------------------------------------------------------


@dataclass
class Replay:
    """What the replay saw, for its summary and its exit code."""

    before: Usage | None = None
    full: Usage | None = None
    after: Usage | None = None
    failed_write: str = ""
    findings: list[str] = field(default_factory=list)
    removed: dict[str, int] = field(default_factory=dict)
    logs: list[str] = field(default_factory=list)
    write_after: str = ""
    write_ok: bool = False
    service_writes: bool = False
    files: int = 0
    digest_before: str = ""
    digest_after: str = ""

    @property
    def recovered(self) -> bool:
        return (
            bool(self.failed_write)
            and self.write_ok
            and self.service_writes
            and self.digest_before == self.digest_after != ""
        )


class Printer:
    """Steps printed as "$ command" (bold on a terminal), then their output."""

    def __init__(self, out: TextIO) -> None:
        self.out = out
        self.terminal = out.isatty()

    def step(self, command: str) -> None:
        text = f"$ {command}"
        self.out.write(f"\n\033[1m{text}\033[0m\n" if self.terminal else f"\n{text}\n")
        self.out.flush()

    def say(self, text: str) -> None:
        self.out.write(text.rstrip("\n") + "\n")
        self.out.flush()


def replay(
    env: Env, bilge: Sequence[str], *, mode: Mode = "bytes", out: TextIO = sys.stdout
) -> Replay:
    """The incident and its repair, step by step: the service, the disk filling, the
    failing write, `bilge doctor`, `bilge apply --yes`, the write working again, the
    service's data unchanged, `bilge status`; then a summary. `bilge` is the command
    line that runs bilge against this engine (policy and state dir included)."""
    p = Printer(out)
    r = Replay()
    root = data_root(env)
    _replay_service(env, p)
    r.before = Usage.of(root)
    p.say(f"data-root filesystem: {r.before.describe()}")
    _replay_fill(env, p, mode, root, r)
    _replay_failure(env, p, r)
    manifest = volume_manifest(env, VOLUME)
    r.files, r.digest_before = len(manifest), digest(manifest)
    p.step(f"sha256 over every file of {VOLUME} (path and content)")
    p.say(f"{r.digest_before}  ({r.files} files)")
    _replay_bilge(env, p, bilge, r)
    _replay_recovery(env, p, manifest, root, r)
    p.step(_show([*bilge, "status"]))
    _run_shown(p, env, [*bilge, "status"])
    _summary(p, r)
    return r


def _show(argv: Sequence[str]) -> str:
    """A command as the demo shows it: bilge's options stay out of the way."""
    if argv and Path(argv[0]).name == "bilge":
        rest = list(argv[1:])
        while rest and rest[0] in {"-c", "--config", "--state-dir", "-H", "--host"}:
            rest = rest[2:]
        return shlex.join(["bilge", *rest])
    return shlex.join(argv)


def _run_shown(p: Printer, env: Env, argv: Sequence[str]) -> None:
    """Run a command of the demo's against the engine, and show all it printed: on a
    terminal by handing it over, so that bilge renders for it (colours, width)."""
    if p.terminal:
        code = subprocess.run(list(argv), env=dict(env), check=False, timeout=600).returncode
    else:
        proc = subprocess.run(
            list(argv), env=dict(env), capture_output=True, text=True, check=False, timeout=600
        )
        p.say(proc.stdout + proc.stderr)
        code = proc.returncode
    if code != 0:
        p.say(f"(exit {code})")


def _replay_service(env: Env, p: Printer) -> None:
    p.step(
        f"docker run -d --name {SERVICE} --network none -v {VOLUME}:{DATA_DIR} "
        f"{BASE_IMAGE} sh -c '<write an avatar document every 0.5 s>'"
    )
    start_service(env)
    names = documents(env)
    p.say(f"{SERVICE} is up and has written {len(names)} documents ({names[-1]}, ...)")


def _replay_fill(env: Env, p: Printer, mode: Mode, root: Path, r: Replay) -> None:
    what = "its last free block" if mode == "bytes" else "its last free inode"
    p.step(f"python3 demo/incident.py fill{' --inodes' if mode == 'inodes' else ''}")
    p.say(f"(a neglected host: the engine's data-root fills up to {what})")
    report = fill(env, mode, root=root)
    for role, count in report.made.items():
        p.say(f"  {count:3d}  {ROLES.get(role, role)}")
    if report.engine_error:
        p.say(f"the engine, at the end: {report.engine_error.splitlines()[0]}")
    r.full = Usage.of(root)
    p.say(f"data-root filesystem: {r.full.describe()}  ({report.seconds:.0f} s)")


#: How the replay names each kind of clutter.
ROLES = {
    "logs-running": "running container logging without limit (ticker)",
    "logs-exited": "exited container that left a big log (chatty)",
    "exited-job": "exited job whose anonymous volume holds its output",
    "volume-left-by-rm": "job removed with `docker rm` (no -v): its volume stays",
    "dangling-volume": "dangling volume, created, filled, forgotten",
    "created": "container created and never started",
    "filler": "exited job that wrote until the disk was full",
}


def _replay_failure(env: Env, p: Printer, r: Replay) -> None:
    name = _new_upload()
    p.step("docker " + shlex.join(write_probe_argv(name)))
    ok, text = write_probe(env, name)
    p.say(text)
    r.failed_write = "" if ok else text
    p.step(f"docker exec {SERVICE} cat {DOCS_DIR}/avatar-000001.json")
    ok, text = read_probe(env)
    p.say(("reads still work: " if ok else "reads fail too: ") + text.replace("\n", "; "))


def _replay_bilge(env: Env, p: Printer, bilge: Sequence[str], r: Replay) -> None:
    p.step(_show([*bilge, "doctor"]))
    _run_shown(p, env, [*bilge, "doctor"])
    r.findings = _findings(env, bilge)
    before = _inventory(env)
    logs_before = _log_sizes(env)
    p.step(_show([*bilge, "apply", "--yes"]))
    _run_shown(p, env, [*bilge, "apply", "--yes"])
    after = _inventory(env)
    r.removed = {kind: len(ids - after[kind]) for kind, ids in before.items()}
    logs_after = _log_sizes(env)
    r.logs = [
        f"{name} {_mb(size)} → {_mb(logs_after[name])}"
        for name, size in logs_before.items()
        if name in logs_after and logs_after[name] < size
    ]


def _findings(env: Env, bilge: Sequence[str]) -> list[str]:
    """The findings of `bilge doctor --json` that are not ok, as "severity id"."""
    proc = subprocess.run(
        [*bilge, "doctor", "--json"],
        env=dict(env),
        capture_output=True,
        text=True,
        check=False,
        timeout=600,
    )
    try:
        found = json.loads(proc.stdout)["findings"]
        return [f"{f['severity']} {f['id']}" for f in found if f["severity"] != "ok"]
    except (ValueError, KeyError, TypeError):
        return [f"(bilge doctor --json failed, exit {proc.returncode})"]


def _inventory(env: Env) -> dict[str, set[str]]:
    def ids(*args: str) -> set[str]:
        return set(docker(env, *args).stdout.split())

    return {
        "containers": ids("ps", "-aq", "--no-trunc"),
        "volumes": ids("volume", "ls", "-q"),
        "images": ids("images", "-aq", "--no-trunc"),
    }


def _log_sizes(env: Env) -> dict[str, int]:
    """The json-file log size of each running container, by name."""
    out = docker(env, "ps", "-q", "--no-trunc").stdout.split()
    if not out:
        return {}
    lines = docker(env, "inspect", "-f", "{{.Name}} {{.LogPath}}", *out).stdout.splitlines()
    sizes: dict[str, int] = {}
    for line in lines:
        name, _, path = line.partition(" ")
        if path and os.path.exists(path):
            sizes[name.lstrip("/")] = os.path.getsize(path)
    return sizes


def _replay_recovery(env: Env, p: Printer, manifest: Manifest, root: Path, r: Replay) -> None:
    name = _new_upload()
    p.step("docker " + shlex.join(write_probe_argv(name)))
    r.write_ok, r.write_after = write_probe(env, name)
    p.say(r.write_after)
    count = len(documents(env))
    try:
        wait_for_documents(env, count + 2, timeout=10)
        r.service_writes = True
    except TimeoutError:
        r.service_writes = False
    p.say(f"{SERVICE} writes again on its own: {'yes' if r.service_writes else 'no'}")
    now = volume_manifest(env, VOLUME)
    r.digest_after = digest(now, manifest)
    p.step(f"sha256 over the same {r.files} files of {VOLUME}")
    p.say(f"{r.digest_after}  ({'equal' if r.digest_after == r.digest_before else 'DIFFERENT'})")
    r.after = Usage.of(root)


def _summary(p: Printer, r: Replay) -> None:
    assert r.before and r.full and r.after
    p.say("\nSummary")
    p.say(f"  before      {r.before.describe()}")
    p.say(f"  full        {r.full.describe()}")
    p.say(f"  the write   {r.failed_write or '(did not fail)'}")
    p.say(f"  bilge found {', '.join(r.findings) or 'nothing'}")
    removed = ", ".join(f"{n} {kind}" for kind, n in r.removed.items() if n)
    p.say(f"  removed     {removed or 'nothing'}")
    if r.logs:
        p.say(f"  truncated   {', '.join(r.logs)}")
    p.say(f"  after       {r.after.describe()}")
    p.say(f"  the write   {r.write_after}")
    same = "equal" if r.digest_before == r.digest_after else "DIFFERENT"
    p.say(f"  {VOLUME}  {r.files} files, sha256 {r.digest_before[:16]}… before and after: {same}")
    p.say("The incident is over." if r.recovered else "The service has NOT recovered.")


# --- command line ---------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    """The command line (see the module's docstring); the engine is $DOCKER_HOST."""
    parser = argparse.ArgumentParser(prog="incident.py", description=__doc__.split("\n")[0])
    parser.add_argument(
        "action", choices=["replay", "service", "fill", "write", "read", "checksum"]
    )
    parser.add_argument("--inodes", action="store_true", help="exhaust inodes, not bytes")
    parser.add_argument("bilge", nargs="*", help="replay: the bilge command line")
    args = parser.parse_args(argv)
    env = engine_env()
    mode: Mode = "inodes" if args.inodes else "bytes"
    if args.action == "replay":
        if not args.bilge:
            parser.error("replay needs the bilge command after --")
        return 0 if replay(env, args.bilge, mode=mode).recovered else 1
    return _one_action(env, args.action, mode)


def _one_action(env: Env, action: str, mode: Mode) -> int:
    if action == "service":
        print(start_service(env))
    elif action == "fill":
        report = fill(env, mode)
        assert report.usage is not None
        print(f"made {report.made}; {report.usage.describe()}; {report.seconds:.1f} s")
    elif action == "checksum":
        print(checksum_volume(env, VOLUME))
    else:
        ok, text = (write_probe if action == "write" else read_probe)(env)
        print(text)
        return 0 if ok else 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
