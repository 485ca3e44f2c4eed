"""Doctor checks on container logs: logs with no size limit, and logs already large.

A json-file or local log without `max-size` grows until the disk is full, and
the daemon's default has none: the fix is the daemon.json change for new
containers, plus `[logs] max_size` so that bilge truncates the logs that exist.
"""

from __future__ import annotations

from collections.abc import Iterable

from bilge.config.units import format_size
from bilge.model import Container
from bilge.planner.doctor.finding import Facts, Finding, Severity, on_podman

#: A single log file this big is worth a warning even without a policy limit.
LARGE_LOG_BYTES = 100 * 1000**2

DAEMON_LOG_FIX = (
    'in /etc/docker/daemon.json: {"log-driver": "json-file", '
    '"log-opts": {"max-size": "10m", "max-file": "3"}} (new containers)'
)
#: Podman's log settings live in containers.conf, not in a daemon.json.
PODMAN_LOG_FIX = (
    "in /etc/containers/containers.conf (or ~/.config/containers/containers.conf): "
    "[containers] log_size_max = 10485760 (new containers; podman run --log-opt max-size=10m)"
)


def logs_unbounded(f: Facts) -> Finding:
    """logs-unbounded: containers logging to a file without max-size."""
    seen = [c for c in f.snap.containers if c.log_driver]
    if on_podman(f):
        # Podman records each container's limit in its own database, not in files
        # bilge reads: say where the setting lives instead of guessing.
        title = "Podman's log size limit is containers.conf's log_size_max (default: none)"
        return Finding("logs-unbounded", Severity.OK, title, PODMAN_LOG_FIX, {})
    if not seen:
        return Finding(
            "logs-unbounded",
            Severity.OK,
            "log settings not visible from here (data-root not readable)",
        )
    unbounded = [c for c in seen if c.log_driver in {"json-file", "local"} and not c.log_max_size]
    evidence = {
        "containers": len(unbounded),
        "bytes": sum(c.log_file_bytes for c in unbounded),
        "names": [c.name for c in sorted(unbounded, key=lambda c: -c.log_file_bytes)[:10]],
    }
    if not unbounded:
        return Finding(
            "logs-unbounded", Severity.OK, "every container's log has a max-size", "", evidence
        )
    title = (
        f"{len(unbounded)} container(s) log without max-size: "
        "their logs grow until the disk is full"
    )
    limit = f.policy.logs.max_size
    existing = (
        f"bilge apply truncates those over [logs] max_size ({format_size(limit)})"
        if limit
        else '[logs] max_size = "100MB" in bilge.toml for the logs that exist'
    )
    return Finding(
        "logs-unbounded", Severity.WARNING, title, f"{DAEMON_LOG_FIX}; {existing}", evidence
    )


def logs_large(f: Facts) -> Finding:
    """logs-large: log files over [logs] max_size, or 100 MB without one."""
    logs = _biggest_logs(f.snap.containers)
    limit = f.policy.logs.max_size or LARGE_LOG_BYTES
    big = [c for c in logs if c.log_file_bytes > limit]
    evidence = {
        "largest": [
            {"container": c.name, "bytes": c.log_file_bytes, "path": c.log_path} for c in logs[:5]
        ]
    }
    if not big:
        return Finding(
            "logs-large", Severity.OK, f"no log file over {format_size(limit)}", "", evidence
        )
    title = (
        f"{len(big)} log file(s) over {format_size(limit)}, "
        f"largest {big[0].name} with {format_size(big[0].log_file_bytes)}"
    )
    fix = (
        "bilge apply truncates them (json-file logs, running containers too)"
        if f.policy.logs.max_size
        else 'set [logs] max_size = "100MB" in bilge.toml, then bilge apply truncates them'
    )
    if on_podman(f):
        fix = f"limit them at the source: {PODMAN_LOG_FIX}; bilge truncates json-file logs only"
    return Finding("logs-large", Severity.WARNING, title, fix, evidence)


def _biggest_logs(containers: Iterable[Container]) -> list[Container]:
    return sorted((c for c in containers if c.log_file_bytes), key=lambda c: -c.log_file_bytes)
