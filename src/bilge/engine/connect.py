"""Opening an engine: ask it what it is, then speak to it as that.

One /version request tells Docker from Podman (Podman's answer names its
"Podman Engine" component); the address alone never decides it, since Podman
serves the same Docker-compatible API on a socket of any name.
"""

from __future__ import annotations

from datetime import timedelta

from bilge.engine.docker import TIMEOUT_SECONDS, DockerEngine
from bilge.engine.podman import PodmanEngine, is_podman
from bilge.engine.transport import MAX_ANSWER_BYTES


def open_engine(
    host: str,
    *,
    timeout: float | timedelta = TIMEOUT_SECONDS,
    max_answer: int = MAX_ANSWER_BYTES,
    pool_size: int = 16,
) -> DockerEngine:
    """The engine at `host`: a `PodmanEngine` when Podman answers, else a
    `DockerEngine`. Raises `EngineUnreachable` / `EngineError` as they do."""
    probe = DockerEngine(host, timeout=timeout, max_answer=max_answer, pool_size=pool_size)
    if not is_podman(probe.version_answer):
        return probe
    return PodmanEngine.over(probe)
