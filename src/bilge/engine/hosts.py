"""Which engine to talk to, as the docker CLI picks it: -H, else DOCKER_HOST, else
the current Docker context (DOCKER_CONTEXT or config.json's currentContext),
else the default socket. Light: the command line resolves hosts before anything
heavy is loaded."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from bilge.errors import EngineError
from bilge.safejson import loads_json

DEFAULT_HOST = "unix:///var/run/docker.sock"


def resolve_host(explicit: str | None, env: dict[str, str] | None = None) -> str:
    """The engine address as `docker` would pick it: -H, DOCKER_HOST, context."""
    env = dict(os.environ) if env is None else env
    if explicit:
        return explicit
    if env.get("DOCKER_HOST"):
        return env["DOCKER_HOST"]
    return _context_host(env) or DEFAULT_HOST


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
