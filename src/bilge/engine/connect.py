"""Opening an engine: ask it what it is, then speak to it as that.

Podman answers its own ping (/libpod/_ping), which Docker does not know; Docker
is then asked its /version. The address alone never decides it, since Podman
serves the Docker-compatible API on a socket of any name. A Podman that hides
its own API (a proxy passing only the compatible paths) is still told by its
/version answer, which names its "Podman Engine" component.

Podman is not asked its /version: it takes most of a second for each (it asks
conmon and the OCI runtime theirs). Its /libpod/info, needed anyway for where
its storage lives, carries the same version, and is asked once here.
"""

from __future__ import annotations

from datetime import timedelta

from bilge.engine.docker import TIMEOUT_SECONDS, DockerEngine, unreachable
from bilge.engine.libpod import LIBPOD, is_podman
from bilge.engine.podman import PodmanEngine
from bilge.engine.transport import MAX_ANSWER_BYTES, open_transport
from bilge.errors import EngineUnreachable


def open_engine(
    host: str,
    *,
    timeout: float | timedelta = TIMEOUT_SECONDS,
    max_answer: int = MAX_ANSWER_BYTES,
    pool_size: int = 16,
    list_containers: bool = False,
) -> DockerEngine:
    """The engine at `host`: a `PodmanEngine` when Podman answers, else a
    `DockerEngine`. Raises `EngineUnreachable` / `EngineError` as they do.
    `list_containers`: the caller lists the engine next; Podman may start on it."""
    seconds = timeout.total_seconds() if isinstance(timeout, timedelta) else float(timeout)
    if seconds <= 0:
        raise ValueError(f"the engine request timeout must be positive, not {timeout}")
    transport = open_transport(host, timeout=seconds, pool_size=pool_size, max_answer=max_answer)
    try:
        try:
            status, body = transport.request("GET", LIBPOD + "/_ping")
        except EngineUnreachable as exc:
            raise unreachable(exc) from exc
        if status == 200 and body.strip() == b"OK":
            return PodmanEngine.opened(host, transport, seconds, list_containers=list_containers)
        probe = DockerEngine(host, timeout=seconds, transport=transport)
        return PodmanEngine.over(probe) if is_podman(probe.version_answer) else probe
    except BaseException:
        transport.close()
        raise
