"""Small helpers for tests against the private sandbox engine.

A sandbox is a dockerd started by `scripts/sandbox-engine` in a directory of its own.
Everything here talks to it through Debian's client `/usr/bin/docker` (or the raw API)
with `DOCKER_HOST` pointing at the sandbox socket; nothing ever reaches a system engine.
No image can be pulled: every image is built from `bilge-sandbox/busybox:latest`.
"""

from __future__ import annotations

import contextlib
import io
import os
import secrets
import shlex
import signal
import subprocess
import tarfile
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import docker
import docker.errors

REPO_ROOT = Path(__file__).resolve().parents[2]
SCRIPT = REPO_ROOT / "scripts" / "sandbox-engine"
DOCKER_CLI = "/usr/bin/docker"
BASE_IMAGE = "bilge-sandbox/busybox:latest"
SYSTEM_SOCKETS = frozenset({"unix:///var/run/docker.sock", "unix:///run/docker.sock"})

#: Exit status of a `run_container` script whose `write` step failed.
WRITE_FAILED = 97
#: The largest `bytes` content `write`/`files` pass on a command line; use a size beyond.
MAX_INLINE_BYTES = 32 * 1024
DD_BLOCK = 1 << 16

ContainerState = Literal["created", "exited", "running"]
#: Files to write: path -> exact content, or a size in bytes of random data.
Files = Mapping[str, bytes | int]


class DockerError(subprocess.CalledProcessError):
    """A failed `docker` command; unlike its base class it shows what docker said."""

    def __str__(self) -> str:
        out = (self.stderr or self.stdout or "").strip()
        return f"{super().__str__()}\n{out[-2000:]}"


@dataclass(frozen=True)
class Sandbox:
    """A running private engine."""

    dir: Path
    host: str  # "unix:///.../docker.sock" (or podman.sock)
    data_root: Path
    #: "docker", or "podman": a private Podman service that the same Docker client
    #: drives through its Docker-compatible API.
    kind: str = "docker"

    def environ(self, extra: Mapping[str, str] | None = None) -> dict[str, str]:
        """The process environment for a client of this sandbox.

        Every inherited `DOCKER_*` variable is dropped (contexts, TLS, API version),
        `DOCKER_HOST` is the sandbox and cannot be overridden by `extra`, and the client
        config lives in the sandbox directory. The classic builder is the default;
        `extra={"DOCKER_BUILDKIT": "1"}` selects BuildKit.
        """
        env = {k: v for k, v in os.environ.items() if not k.startswith("DOCKER_")}
        env["DOCKER_CONFIG"] = str(self.dir / "client")
        env["DOCKER_BUILDKIT"] = "0"
        env.update(extra or {})
        if env.get("DOCKER_HOST", self.host) != self.host:
            raise ValueError(f"DOCKER_HOST must stay {self.host}, not {env['DOCKER_HOST']}")
        env["DOCKER_HOST"] = self.host
        return env

    def docker(
        self,
        *args: str,
        check: bool = True,
        input: str | None = None,
        env: Mapping[str, str] | None = None,
        timeout: float = 600,
    ) -> subprocess.CompletedProcess[str]:
        """Run `/usr/bin/docker ARGS` against this sandbox; raise `DockerError` if it fails
        and `check` is true. `env` adds variables (not `DOCKER_HOST`)."""
        proc = subprocess.run(
            [DOCKER_CLI, *args],
            input=input,
            env=self.environ(env),
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        if check and proc.returncode != 0:
            raise DockerError(proc.returncode, proc.args, proc.stdout, proc.stderr)
        return proc

    def api(self) -> Any:  # docker.APIClient (docker-py has no type information)
        """A raw API client for this sandbox, API version negotiated. Close it when done
        (it is a context manager)."""
        return docker.APIClient(base_url=self.host, version="auto")


# --- starting and stopping ------------------------------------------------------------


def _run_script(*args: str, interruptible: bool) -> None:
    """Run scripts/sandbox-engine in its own session, so a Ctrl-C aimed at pytest cannot
    kill it half-way; its output is shown only when it fails.

    With `interruptible`, a KeyboardInterrupt stops the script and is re-raised; without,
    the script always runs to its end and the interrupt is re-raised afterwards.
    """
    with tempfile.TemporaryFile(mode="w+") as log:
        proc = subprocess.Popen(
            [str(SCRIPT), *args],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        interrupted: KeyboardInterrupt | None = None
        while True:
            try:
                proc.wait()
                break
            except KeyboardInterrupt as exc:
                interrupted = exc
                if interruptible:
                    os.killpg(proc.pid, signal.SIGTERM)
        if interrupted is not None:
            raise interrupted
        if proc.returncode != 0:
            log.seek(0)
            raise RuntimeError(
                f"{SCRIPT.name} {' '.join(args)} failed (exit {proc.returncode}):\n{log.read()}"
            )


def start_sandbox(
    directory: Path,
    *,
    disk: str | None = None,
    tmpfs: str | None = None,
    kind: str = "docker",
) -> Sandbox:
    """Start a sandbox engine in `directory` (`disk`: size of a loop-mounted ext4
    data-root, e.g. "512M"; `tmpfs`: "SIZE:INODES" of a tmpfs data-root, e.g.
    "256M:4000"; `kind`: "docker" or "podman") and return it. Call `stop_sandbox`
    even if this fails."""
    args = ["start", str(directory)] + (["--disk", disk] if disk else [])
    args += ["--tmpfs", tmpfs] if tmpfs else []
    args += ["--podman"] if kind == "podman" else []
    _run_script(*args, interruptible=True)
    exports: dict[str, str] = {}
    for line in (directory / "env").read_text().splitlines():
        key, _, value = line.removeprefix("export ").partition("=")
        exports[key] = value
    host = exports["DOCKER_HOST"]
    socket = "podman.sock" if kind == "podman" else "docker.sock"
    if host in SYSTEM_SOCKETS or host != f"unix://{directory}/{socket}":
        raise RuntimeError(f"sandbox in {directory} reports an unexpected host {host}")
    data_root = Path(exports["BILGE_SANDBOX_DATA_ROOT"])
    return Sandbox(dir=directory, host=host, data_root=data_root, kind=kind)


def stop_sandbox(directory: Path) -> None:
    """Stop the sandbox in `directory` and remove every trace of it (idempotent).
    Runs to its end even through Ctrl-C."""
    _run_script("stop", str(directory), interruptible=False)


def ensure_base_image(sb: Sandbox) -> None:
    """Rebuild `bilge-sandbox/busybox:latest` if a test removed it."""
    if sb.docker("image", "inspect", BASE_IMAGE, check=False).returncode != 0:
        podman = ["--podman"] if sb.kind == "podman" else []
        _run_script("start", str(sb.dir), *podman, interruptible=True)


def _base_image_ids(api: Any) -> set[str]:
    """The base image and its ancestors (the classic builder's intermediate images)."""
    ids: set[str] = set()
    ref = BASE_IMAGE
    while ref:
        info = api.inspect_image(ref)
        ids.add(info["Id"])
        ref = info.get("Parent") or ""
    return ids


def _remove_images(api: Any) -> None:
    """Remove every image but the base image; untag other names of the base image."""
    keep = _base_image_ids(api)
    # Podman names it with its registry, localhost/.
    base_names = {BASE_IMAGE, f"localhost/{BASE_IMAGE}"}
    for _ in range(20):
        left = False
        for image in api.images(all=True):
            tags = [t for t in image.get("RepoTags") or [] if t != "<none>:<none>"]
            if image["Id"] in keep:
                for tag in tags:
                    if tag not in base_names:
                        api.remove_image(tag)
                continue
            left = True
            try:
                api.remove_image(image["Id"], force=True)
            except docker.errors.NotFound:
                pass
            except docker.errors.APIError as exc:
                if exc.status_code != 409:  # a child image goes first, in a later round
                    raise
        if not left:
            return
    raise RuntimeError("images left in the sandbox after 20 rounds of removal")


def reset_engine(sb: Sandbox) -> None:
    """Bring the engine back to its start state: no containers, volumes, custom networks,
    images other than the base image, or build cache. Uses force: test teardown only."""
    with sb.api() as api:
        for container in api.containers(all=True):
            with contextlib.suppress(docker.errors.NotFound):
                api.remove_container(container["Id"], v=True, force=True)
        for volume in api.volumes().get("Volumes") or []:
            api.remove_volume(volume["Name"], force=True)
        for network in api.networks():
            if network["Name"] not in {"bridge", "host", "none"}:
                api.remove_network(network["Id"])
        ensure_base_image(sb)
        _remove_images(api)
    if sb.kind == "docker":  # Podman keeps no build cache
        sb.docker("builder", "prune", "-af")


# --- objects --------------------------------------------------------------------------


def _check_path(path: str) -> None:
    if not path.startswith("/") or ".." in Path(path).parts:
        raise ValueError(f"need an absolute path without '..': {path!r}")


def _printf_literal(content: bytes) -> str:
    """`content` as a single-quoted printf format that prints exactly those bytes."""
    if len(content) > MAX_INLINE_BYTES:
        raise ValueError(f"{len(content)} bytes is too much to inline; pass a size instead")
    safe = set(range(0x20, 0x7F)) - {ord("\\"), ord("'"), ord("%")}
    body = "".join(chr(b) if b in safe else f"\\{b:03o}" for b in content)
    return f"'{body}'"


def _dd_random(quoted_path: str, size: int) -> str:
    """Commands writing `size` random bytes with dd: a full disk then fails with
    "No space left on device", as it does for real programs."""
    dd = "dd if=/dev/urandom status=none iflag=fullblock"
    blocks, rest = divmod(size, DD_BLOCK)
    cmds = [f": > {quoted_path}"]
    if blocks:
        cmds.append(f"{dd} of={quoted_path} bs={DD_BLOCK} count={blocks}")
    if rest:
        cmds.append(f"{dd} of={quoted_path} bs={rest} count=1 oflag=append conv=notrunc")
    return " && ".join(cmds)


def _write_script(files: Files) -> str:
    """A busybox sh script writing `files` (absolute paths): random data with dd from
    /dev/urandom, exact bytes with printf."""
    lines = []
    for path, what in files.items():
        _check_path(path)
        quoted = shlex.quote(path)
        lines.append(f"mkdir -p $(dirname {quoted})")
        if isinstance(what, int):
            lines.append(_dd_random(quoted, what))
        else:
            lines.append(f"printf {_printf_literal(what)} > {quoted}")
    return " && ".join(lines)


def _tar_of(files: Files) -> bytes:
    """A tar archive of `files`, to be extracted at "/" of a container."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        dirs: set[str] = set()
        for path, what in files.items():
            _check_path(path)
            parts = Path(path).parts[1:]
            for i in range(1, len(parts)):
                name = "/".join(parts[:i])
                if name not in dirs:
                    dirs.add(name)
                    info = tarfile.TarInfo(name)
                    info.type = tarfile.DIRTYPE
                    info.mode = 0o755
                    tar.addfile(info)
            data = os.urandom(what) if isinstance(what, int) else what
            info = tarfile.TarInfo("/".join(parts))
            info.size = len(data)
            info.mode = 0o644
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def _labels(labels: Mapping[str, str] | None) -> list[str]:
    return [arg for k, v in (labels or {}).items() for arg in ("--label", f"{k}={v}")]


def _container_argv(
    command: str | Sequence[str] | None, state: ContainerState, write: Files | None
) -> list[str]:
    """The command a `run_container` container is created with."""
    if command is None:
        command = "sleep 3600" if state == "running" else "true"
    if write and state == "exited":
        # The writes happen in the container itself, before its command runs.
        tail = command if isinstance(command, str) else f"exec {shlex.join(command)}"
        return ["sh", "-c", f"{{ {_write_script(write)}; }} || exit {WRITE_FAILED}\n{tail}"]
    return ["sh", "-c", command] if isinstance(command, str) else list(command)


def run_container(
    sb: Sandbox,
    *,
    name: str | None = None,
    image: str = BASE_IMAGE,
    command: str | Sequence[str] | None = None,
    state: ContainerState = "exited",
    volumes: Iterable[str] = (),
    labels: Mapping[str, str] | None = None,
    write: Files | None = None,
) -> str:
    """Create a container (network none) and leave it `created`, `exited` or `running`;
    return its full id.

    `command` is a shell string (run by `sh -c`) or an argv; it defaults to `true`, or to
    `sleep 3600` for a running container. `volumes` are "name:/path" (named) or "/path"
    (anonymous). `write` maps absolute paths (in the writable layer or in a volume) to
    exact content or to a size of random data; the files are written inside the
    container before it exits: by its own script for `exited` (the command runs after
    the writes, and `DockerError` is raised if they fail), by `docker exec` for
    `running`, and through the archive API for `created` (it never runs).
    """
    create = ["create", "--network", "none"]
    if name:
        create += ["--name", name]
    for spec in volumes:
        create += ["-v", spec]
    create += _labels(labels)
    cid = sb.docker(*create, image, *_container_argv(command, state, write)).stdout.strip()

    if state == "exited":
        proc = sb.docker("start", "-a", cid, check=False)
        if write and proc.returncode == WRITE_FAILED:
            raise DockerError(proc.returncode, proc.args, proc.stdout, proc.stderr)
        if (now := container_state(sb, cid)) != "exited":
            raise RuntimeError(f"container {cid} is {now}, not exited")
    elif state == "running":
        sb.docker("start", cid)
        if write:
            sb.docker("exec", cid, "sh", "-c", _write_script(write))
    elif write:
        with sb.api() as api:
            api.put_archive(cid, "/", _tar_of(write))
    return cid


def container_state(sb: Sandbox, container: str) -> str:
    """The engine's State.Status of a container: created, running, exited, ..."""
    return sb.docker("inspect", "-f", "{{.State.Status}}", container).stdout.strip()


def make_volume(
    sb: Sandbox,
    name: str,
    *,
    files: Files | None = None,
    labels: Mapping[str, str] | None = None,
) -> None:
    """Create the named volume `name` and fill it with `files` (paths relative to the
    volume's root: exact content or a size of random data) through a throwaway
    container, removed afterwards."""
    sb.docker("volume", "create", *_labels(labels), name)
    if files:
        inside = {f"/v/{path.lstrip('/')}": what for path, what in files.items()}
        sb.docker(
            "run", "--rm", "--network", "none", "-v", f"{name}:/v", BASE_IMAGE,
            "sh", "-c", _write_script(inside),
        )  # fmt: skip


def build_image(
    sb: Sandbox,
    tag: str,
    *,
    size: int = 0,
    labels: Mapping[str, str] | None = None,
    base: str = BASE_IMAGE,
    buildkit: bool = False,
) -> str:
    """Build `tag` from `base` with one layer of its own: `size` bytes of random data in
    a uniquely named file (so no two builds share that layer); return the image id.

    `--network=none`, from a temporary build context. The classic builder by default;
    `buildkit=True` builds with `DOCKER_BUILDKIT=1`, which leaves build-cache records.
    """
    with tempfile.TemporaryDirectory(prefix="bilge-build-") as tmp:
        ctx = Path(tmp)
        with (ctx / "blob").open("wb") as blob:
            left = size
            while left > 0:
                chunk = min(left, 1 << 20)
                blob.write(os.urandom(chunk))
                left -= chunk
        (ctx / "Dockerfile").write_text(
            f"FROM {base}\nCOPY blob /bilge-layer-{secrets.token_hex(8)}\n"
        )
        iidfile = ctx / "iid"
        sb.docker(
            "build", "--network=none", "-q", "--iidfile", str(iidfile), "-t", tag,
            *_labels(labels), str(ctx),
            env={"DOCKER_BUILDKIT": "1" if buildkit else "0"},
        )  # fmt: skip
        iid = iidfile.read_text().strip()
        return iid if iid.startswith("sha256:") else f"sha256:{iid}"  # Podman's is bare


def make_dangling(sb: Sandbox, tag: str, size: int) -> str:
    """Build `tag` twice (each with `size` bytes of its own); the first image loses the
    tag and becomes dangling. Return the dangling image's id."""
    first = build_image(sb, tag, size=size)
    second = build_image(sb, tag, size=size)
    if first == second:
        raise RuntimeError(f"two builds of {tag} gave the same image {first}")
    return first


def df(sb: Sandbox) -> os.statvfs_result:
    """statvfs of the filesystem that holds the sandbox's data-root."""
    return os.statvfs(sb.data_root)
