"""`bilge doctor`: what is wrong with the host's disk, the evidence, and the fix.

A pure function of the snapshot, the plan made from it, the policy, the usage
samples of the state store and `now`. Every finding has an id (stable, for
scripts), a severity, a title a person reads first, the figures behind it,
and a concrete fix: the bilge or docker command, or the daemon.json change.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum

from bilge.config.policy import Policy
from bilge.config.units import duration_text, format_size
from bilge.model import Container, Kind, Plan, Snapshot, UsageSample
from bilge.planner.summary import largest, usage_by_kind

#: Usage at which the data-root is critical whatever the watermarks say.
CRITICAL_RATIO = 0.95
#: A forecast needs this much history: fewer samples or a shorter span is noise.
FORECAST_MIN_SAMPLES = 3
FORECAST_MIN_SPAN = timedelta(hours=1)
FORECAST_WINDOW = timedelta(days=7)
#: A single log file this big is worth a warning even without a policy limit.
LARGE_LOG_BYTES = 100 * 1000**2
REMOVABLE_STATES = frozenset({"exited", "dead", "created"})

DAEMON_LOG_FIX = (
    'in /etc/docker/daemon.json: {"log-driver": "json-file", '
    '"log-opts": {"max-size": "10m", "max-file": "3"}} (new containers)'
)


class Severity(StrEnum):
    OK = "ok"
    WARNING = "warning"
    CRITICAL = "critical"


@dataclass(frozen=True)
class Finding:
    id: str
    severity: Severity
    title: str
    fix: str = ""
    evidence: Mapping[str, object] = field(default_factory=dict)


@dataclass(frozen=True)
class _Facts:
    snap: Snapshot
    plan: Plan
    policy: Policy
    samples: Sequence[UsageSample]
    now: datetime


def diagnose(
    snap: Snapshot, plan: Plan, policy: Policy, samples: Iterable[UsageSample], now: datetime
) -> tuple[Finding, ...]:
    """All findings, most severe first (in a fixed order within a severity)."""
    facts = _Facts(snap, plan, policy, tuple(samples), now)
    found = [check(facts) for check in CHECKS]
    rank = {Severity.CRITICAL: 0, Severity.WARNING: 1, Severity.OK: 2}
    return tuple(sorted(found, key=lambda f: rank[f.severity]))


# --- the filesystem ---------------------------------------------------------


def _disk_bytes(f: _Facts) -> Finding:
    fs = f.snap.filesystem
    if fs is None:
        return Finding(
            "disk-bytes", Severity.OK, "data-root not readable from here: run bilge on the host"
        )
    ratio, high = fs.bytes_ratio, f.policy.watch.high
    evidence = {
        "used_bytes": fs.used_bytes,
        "total_bytes": fs.total_bytes,
        "free_bytes": fs.free_bytes,
        "used_ratio": round(ratio, 4),
        "path": fs.path,
    }
    free, total = format_size(fs.free_bytes), format_size(fs.total_bytes)
    title = f"data-root {_percent(ratio)} full ({free} free of {total})"
    severity = _severity(ratio, high, fs.free_bytes == 0)
    if severity is Severity.OK:
        return Finding("disk-bytes", severity, title, "", evidence)
    return Finding("disk-bytes", severity, title, _reclaim_fix(f.plan), evidence)


def _disk_inodes(f: _Facts) -> Finding:
    fs = f.snap.filesystem
    if fs is None or fs.total_inodes == 0:
        return Finding(
            "disk-inodes",
            Severity.OK,
            "inode usage unknown (not readable, or no fixed inode count)",
        )
    ratio, high = fs.inodes_ratio, f.policy.watch.inodes_high
    severity = _severity(ratio, high, fs.free_inodes == 0)
    evidence: dict[str, object] = {
        "used_inodes": fs.used_inodes,
        "total_inodes": fs.total_inodes,
        "free_inodes": fs.free_inodes,
        "used_ratio": round(ratio, 4),
        "fullest_volumes": _inode_holders(f.snap),
    }
    if severity is not Severity.OK and fs.bytes_ratio < f.policy.watch.high:
        title = (
            f"inodes exhausted ({_percent(ratio)} used) although "
            f"{format_size(fs.free_bytes)} are free: no new file can be created"
        )
    else:
        title = f"inodes {_percent(ratio)} used ({fs.free_inodes:,} free)"
    fix = "" if severity is Severity.OK else _reclaim_fix(f.plan, what="files")
    return Finding("disk-inodes", severity, title, fix, evidence)


def _percent(ratio: float) -> str:
    return f"{ratio * 100:.1f}%"


def _severity(ratio: float, high: float, exhausted: bool) -> Severity:
    if exhausted or ratio >= CRITICAL_RATIO:
        return Severity.CRITICAL
    return Severity.WARNING if ratio >= high else Severity.OK


def _inode_holders(snap: Snapshot) -> list[dict[str, object]]:
    vols = sorted(
        (v for v in snap.volumes if v.contents.inodes), key=lambda v: -(v.contents.inodes or 0)
    )
    return [{"volume": v.name, "inodes": v.contents.inodes} for v in vols[:5]]


def _reclaim_fix(plan: Plan, what: str = "space") -> str:
    if not plan.actions:
        return (
            f"nothing is reclaimable under the policy: see space-holders for what holds the {what}"
        )
    return (
        f"bilge apply (frees {format_size(plan.total_bytes)} in {len(plan.actions)} removals; "
        "bilge plan --explain shows them first)"
    )


def _space_holders(f: _Facts) -> Finding:
    rows = usage_by_kind(f.snap, f.plan)
    big = largest(f.snap, 5)
    top = max(rows, key=lambda r: r.bytes, default=None)
    title = (
        "nothing holds space"
        if top is None or top.bytes == 0
        else (f"most space is held by {top.kind} ({format_size(top.bytes)})")
    )
    evidence = {
        "by_kind": {
            r.kind: {"count": r.count, "bytes": r.bytes, "reclaimable_bytes": r.reclaimable_bytes}
            for r in rows
        },
        "largest": [{"kind": o.kind, "name": o.name, "bytes": o.bytes} for o in big],
    }
    return Finding("space-holders", Severity.OK, title, "", evidence)


# --- the forecast -----------------------------------------------------------


def _time_to_full(f: _Facts) -> Finding:
    fs = f.snap.filesystem
    host = f.snap.engine.host
    recent = sorted(
        (s for s in f.samples if s.host == host and f.now - s.at <= FORECAST_WINDOW),
        key=lambda s: s.at,
    )
    span = recent[-1].at - recent[0].at if recent else timedelta(0)
    evidence: dict[str, object] = {
        "samples": len(recent),
        "span_seconds": int(span.total_seconds()),
    }
    if fs is None or len(recent) < FORECAST_MIN_SAMPLES or span < FORECAST_MIN_SPAN:
        title = (
            f"not enough history to forecast ({len(recent)} samples over {_human(span)}; "
            "every status, doctor and apply records one, the guard does it continuously)"
        )
        return Finding("time-to-full", Severity.OK, title, "", evidence)
    per_day = _slope(recent) * 86400
    evidence["growth_bytes_per_day"] = int(per_day)
    if per_day <= 0:
        return Finding(
            "time-to-full",
            Severity.OK,
            f"usage is not growing ({format_size(int(-per_day))}/day freed)",
            "",
            evidence,
        )
    days = fs.free_bytes / per_day
    evidence["days_to_full"] = round(days, 2)
    title = f"at +{format_size(int(per_day))}/day, full in about {_human(timedelta(days=days))}"
    severity = Severity.CRITICAL if days < 1 else Severity.WARNING if days < 7 else Severity.OK
    fix = (
        ""
        if severity is Severity.OK
        else "run the guard (bilge watch) so it is kept below the watermark"
    )
    return Finding("time-to-full", severity, title, fix, evidence)


def _slope(samples: Sequence[UsageSample]) -> float:
    """Least-squares growth of used bytes, in bytes per second."""
    t0 = samples[0].at
    xs = [(s.at - t0).total_seconds() for s in samples]
    ys = [float(s.total_bytes - s.free_bytes) for s in samples]
    mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
    var = sum((x - mx) ** 2 for x in xs)
    return sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / var if var else 0.0


def _human(td: timedelta) -> str:
    seconds = td.total_seconds()
    if seconds < 3600:
        return f"{int(seconds // 60)} min"
    if seconds < 86400:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} days"


# --- logs -------------------------------------------------------------------


def _logs_unbounded(f: _Facts) -> Finding:
    seen = [c for c in f.snap.containers if c.log_driver]
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


def _logs_large(f: _Facts) -> Finding:
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
    return Finding("logs-large", Severity.WARNING, title, fix, evidence)


def _biggest_logs(containers: Iterable[Container]) -> list[Container]:
    return sorted((c for c in containers if c.log_file_bytes), key=lambda c: -c.log_file_bytes)


# --- reclaimable objects ----------------------------------------------------


def _build_cache(f: _Facts) -> Finding:
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


def _dangling_volumes(f: _Facts) -> Finding:
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
    return Finding("dangling-volumes", Severity.WARNING, title, _reclaim_fix(f.plan), evidence)


def _exited_containers(f: _Facts) -> Finding:
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


def _orphaned_layers(f: _Facts) -> Finding:
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


# --- data -------------------------------------------------------------------


def _data_at_risk(f: _Facts) -> Finding:
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
    title = (
        f"database files in the anonymous volume of stopped container {c.name}: "
        "`docker rm -v` or a prune deletes them (bilge keeps both)"
    )
    fix = (
        f"docker volume create {c.name}-data && docker run --rm -v {v.name}:/from -v "
        f"{c.name}-data:/to <image with cp> cp -a /from/. /to/, then run the database with "
        f"-v {c.name}-data:<its data path>"
    )
    return Finding("data-at-risk", Severity.CRITICAL, title, fix, evidence)


def _data_root_on_root_fs(f: _Facts) -> Finding:
    evidence = {"data_root": f.snap.engine.data_root, "on_root_fs": f.snap.on_root_fs}
    if not f.snap.on_root_fs:
        title = (
            "data-root has a filesystem of its own"
            if f.snap.on_root_fs is False
            else "unknown whether the data-root shares /"
        )
        return Finding("data-root-on-root-fs", Severity.OK, title, "", evidence)
    title = (
        "the data-root shares / with the system: "
        "when Docker fills it, logins, journald and updates fail too"
    )
    fix = (
        "give Docker a filesystem of its own: mount one and set "
        '"data-root" in /etc/docker/daemon.json'
    )
    return Finding("data-root-on-root-fs", Severity.WARNING, title, fix, evidence)


CHECKS: tuple[Callable[[_Facts], Finding], ...] = (
    _disk_bytes,
    _disk_inodes,
    _space_holders,
    _time_to_full,
    _logs_unbounded,
    _logs_large,
    _build_cache,
    _dangling_volumes,
    _exited_containers,
    _orphaned_layers,
    _data_at_risk,
    _data_root_on_root_fs,
)

__all__ = ["Finding", "Severity", "diagnose"]
