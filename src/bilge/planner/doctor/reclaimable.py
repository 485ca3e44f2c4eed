"""Doctor checks on what bilge could remove: build cache over its limit, anonymous
volumes no container uses, stopped containers, and orphaned layer directories.

Each is a warning, not an error: the space is reclaimable, and the fix says
which bilge command reclaims it (or why the plan does not, yet).
"""

from __future__ import annotations

from bilge.config.units import duration_text, format_size
from bilge.model import Kind
from bilge.planner.doctor.finding import Facts, Finding, Severity, reclaim_fix

#: Container states a plan may remove: stopped, or never started.
REMOVABLE_STATES = frozenset({"exited", "dead", "created"})


def build_cache(f: Facts) -> Finding:
    """build-cache: the build cache's own bytes against build_cache.keep_storage."""
    total = sum(r.size for r in f.snap.build_cache if not r.shared)
    keep = f.policy.build_cache.keep_storage
    evidence = {"bytes": total, "records": len(f.snap.build_cache), "keep_storage": keep}
    if total <= keep:
        return Finding(
            "build-cache",
            Severity.OK,
            f"build cache {format_size(total)}, within keep_storage {format_size(keep)}",
            "",
            evidence,
        )
    title = f"build cache {format_size(total)}, over keep_storage {format_size(keep)}"
    return Finding(
        "build-cache",
        Severity.WARNING,
        title,
        "bilge apply (or docker builder prune --keep-storage)",
        evidence,
    )


def dangling_volumes(f: Facts) -> Finding:
    """dangling-volumes: anonymous volumes no container mounts."""
    mounted = {n for c in f.snap.containers for n in c.volume_names}
    dangling = [v for v in f.snap.volumes if v.anonymous and v.name not in mounted]
    size = sum(v.contents.bytes or 0 for v in dangling)
    evidence = {
        "volumes": len(dangling),
        "bytes": size,
        "names": [v.name[:24] for v in dangling[:10]],
    }
    if not dangling:
        return Finding(
            "dangling-volumes",
            Severity.OK,
            "no anonymous volume is left without a container",
            "",
            evidence,
        )
    title = f"{len(dangling)} anonymous volume(s) no container uses hold {format_size(size)}"
    return Finding("dangling-volumes", Severity.WARNING, title, reclaim_fix(f.plan), evidence)


def exited_containers(f: Facts) -> Finding:
    """exited-containers: stopped or never-started containers, and how many the plan removes."""
    stopped = [c for c in f.snap.containers if c.state in REMOVABLE_STATES]
    size = sum(c.size_rw + c.log_bytes for c in stopped)
    evidence = {"containers": len(stopped), "bytes": size, "names": [c.name for c in stopped[:10]]}
    if not stopped:
        return Finding(
            "exited-containers", Severity.OK, "no exited or never-started containers", "", evidence
        )
    title = f"{len(stopped)} exited or never-started container(s) hold {format_size(size)}"
    planned = sum(1 for a in f.plan.actions if a.kind is Kind.CONTAINER)
    grace = duration_text(f.policy.containers.exited_after)
    fix = f"bilge apply removes {planned} of them now; the others once past exited_after ({grace})"
    return Finding("exited-containers", Severity.WARNING, title, fix, evidence)


def orphaned_layers(f: Facts) -> Finding:
    """orphaned-layers: layer directories in the data-root nothing references."""
    if not f.snap.engine.local:
        return Finding(
            "orphaned-layers",
            Severity.OK,
            "orphaned layers not visible from here (data-root not readable)",
        )
    size = sum(o.bytes for o in f.snap.orphans)
    evidence = {
        "directories": len(f.snap.orphans),
        "bytes": size,
        "names": [o.name for o in f.snap.orphans[:10]],
    }
    if not f.snap.orphans:
        return Finding(
            "orphaned-layers", Severity.OK, "no orphaned layer directories", "", evidence
        )
    title = f"{len(f.snap.orphans)} layer directories nothing references hold {format_size(size)}"
    return Finding(
        "orphaned-layers",
        Severity.WARNING,
        title,
        "bilge apply --orphans (after the grace of [orphans] older_than)",
        evidence,
    )
