"""Opening an engine: ask it what it is, then speak to it as that.

One /version request tells Docker from Podman (Podman's answer names its
"Podman Engine" component); the address alone never decides it, since Podman
serves the same Docker-compatible API on a socket of any name.
"""

from __future__ import annotations

from datetime import timedelta

from bilge.engine.docker import TIMEOUT_SECONDS, DockerEngine
from bilge.engine.podman import PodmanEngine, is_podman
from bilge.engine.transport import MAX_ANSWER_BYTES, open_transport


def open_engine(
    host: str,
    *,
    timeout: float | timedelta = TIMEOUT_SECONDS,
    max_answer: int = MAX_ANSWER_BYTES,
    pool_size: int = 16,
) -> DockerEngine:
    """The engine at `host`: a `PodmanEngine` when Podman answers, else a
    `DockerEngine`. Raises `EngineUnreachable` / `EngineError` as they do."""
    seconds = timeout.total_seconds() if isinstance(timeout, timedelta) else float(timeout)
    if seconds <= 0:
        raise ValueError(f"the engine request timeout must be positive, not {timeout}")
    transport = open_transport(host, timeout=seconds, pool_size=pool_size, max_answer=max_answer)
    try:
        probe = DockerEngine(host, timeout=seconds, transport=transport)
    except BaseException:
        transport.close()
        raise
    kind = PodmanEngine if is_podman(probe.version_answer) else DockerEngine
    if kind is DockerEngine:
        return probe
    return kind(host, timeout=seconds, transport=transport, version=probe.version_answer)
