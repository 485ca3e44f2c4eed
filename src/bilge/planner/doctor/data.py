"""Doctor checks on where data can be lost: database files in the anonymous volume
of a stopped container, and a data-root that shares / with the system.

Neither is about space bilge can free: the first is data one `docker rm -v` or
prune away from deletion (bilge itself keeps both, rule 4 of
docs/architecture.md), the second makes a full data-root take the whole system
down with it.
"""

from __future__ import annotations

from bilge.planner.doctor.finding import Facts, Finding, Severity, on_podman
from bilge.planner.doctor.reclaimable import REMOVABLE_STATES


def data_at_risk(f: Facts) -> Finding:
    """data-at-risk: critical when a stopped container's anonymous volume holds database files."""
    volumes = {v.name: v for v in f.snap.volumes}
    risky = [
        (c, volumes[n])
        for c in f.snap.containers
        if c.state in REMOVABLE_STATES
        for n in c.volume_names
        if n in volumes and volumes[n].anonymous and volumes[n].contents.data_markers
    ]
    evidence = {
        "volumes": [
            {
                "container": c.name,
                "volume": v.name,
                "markers": list(v.contents.data_markers),
                "bytes": v.contents.bytes,
            }
            for c, v in risky
        ]
    }
    if not risky:
        return Finding(
            "data-at-risk",
            Severity.OK,
            "no database files in anonymous volumes of stopped containers",
            "",
            evidence,
        )
    c, v = risky[0]
    cli = "podman" if on_podman(f) else "docker"
    title = (
        f"database files in the anonymous volume of stopped container {c.name}: "
        f"`{cli} rm -v` or a prune deletes them (bilge keeps both)"
    )
    fix = (
        f"{cli} volume create {c.name}-data && {cli} run --rm -v {v.name}:/from -v "
        f"{c.name}-data:/to <image with cp> cp -a /from/. /to/, then run the database with "
        f"-v {c.name}-data:<its data path>"
    )
    return Finding("data-at-risk", Severity.CRITICAL, title, fix, evidence)


def data_root_on_root_fs(f: Facts) -> Finding:
    """data-root-on-root-fs: a warning when a full data-root would fill / too."""
    evidence = {"data_root": f.snap.engine.data_root, "on_root_fs": f.snap.on_root_fs}
    if not f.snap.on_root_fs:
        title = (
            "data-root has a filesystem of its own"
            if f.snap.on_root_fs is False
            else "unknown whether the data-root shares /"
        )
        return Finding("data-root-on-root-fs", Severity.OK, title, "", evidence)
    engine, setting = (
        ("Podman", "graphroot in /etc/containers/storage.conf")
        if on_podman(f)
        else ("Docker", '"data-root" in /etc/docker/daemon.json')
    )
    title = (
        "the data-root shares / with the system: "
        f"when {engine} fills it, logins, journald and updates fail too"
    )
    fix = f"give {engine} a filesystem of its own: mount one and set {setting}"
    return Finding("data-root-on-root-fs", Severity.WARNING, title, fix, evidence)
