"""Which engine to talk to, as the docker CLI picks it: -H, else DOCKER_HOST, else
CONTAINER_HOST (as Podman's tools do), else the current Docker context
(DOCKER_CONTEXT or config.json's currentContext), else the first socket that exists
of Docker's, rootful Podman's and the user's rootless Podman's (in that order), else
Docker's. Light: the command line resolves hosts before anything
heavy is loaded."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from pathlib import Path

from bilge.errors import EngineError
from bilge.safejson import loads_json

DEFAULT_HOST = "unix:///var/run/docker.sock"
PODMAN_ROOTFUL = "/run/podman/podman.sock"


def resolve_host(explicit: str | None, env: dict[str, str] | None = None) -> str:
    """The engine address as `docker` (or `podman --remote`) would pick it: -H,
    DOCKER_HOST, CONTAINER_HOST, context, then the sockets that exist."""
    env = dict(os.environ) if env is None else env
    if explicit:
        return explicit
    for variable in ("DOCKER_HOST", "CONTAINER_HOST"):
        if env.get(variable):
            return env[variable]
    return _context_host(env) or default_socket(env)


def default_socket(env: dict[str, str], exists: Callable[[str], bool] = os.path.exists) -> str:
    """Docker's socket if it exists, else rootful Podman's, else the user's rootless
    Podman socket ($XDG_RUNTIME_DIR/podman/podman.sock, or /run/user/UID/...), else
    Docker's (whose absence the first request then reports)."""
    runtime = env.get("XDG_RUNTIME_DIR") or f"/run/user/{os.getuid()}"
    for path in (DEFAULT_HOST.removeprefix("unix://"), PODMAN_ROOTFUL,
                 f"{runtime}/podman/podman.sock"):  # fmt: skip
        if exists(path):
            return f"unix://{path}"
    return DEFAULT_HOST


def _context_host(env: dict[str, str]) -> str | None:
    """The host of the current Docker context (DOCKER_CONTEXT or config.json)."""
    config_dir = Path(env.get("DOCKER_CONFIG") or Path(env.get("HOME", "/root")) / ".docker")
    name = env.get("DOCKER_CONTEXT") or _current_context(config_dir)
    if not name or name == "default":
        return None
    digest = hashlib.sha256(name.encode()).hexdigest()
    meta = config_dir / "contexts" / "meta" / digest / "meta.json"
    try:
        doc = loads_json(meta.read_text())
        host = doc["Endpoints"]["docker"]["Host"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise EngineError(f"Docker context {name!r}: cannot read {meta}: {exc}") from exc
    return str(host)


def _current_context(config_dir: Path) -> str | None:
    try:
        doc = loads_json((config_dir / "config.json").read_text())
    except (OSError, ValueError):
        return None
    name = doc.get("currentContext") if isinstance(doc, dict) else None
    return name if isinstance(name, str) else None
