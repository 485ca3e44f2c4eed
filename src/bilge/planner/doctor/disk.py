"""Doctor checks on the data-root's filesystem: how full it is, in bytes and in
inodes, and which kinds of object hold the space.

Inodes get a check of their own because a filesystem can run out of them with
gigabytes free, and then no new file can be created: the symptom looks like a
full disk while `df -h` says otherwise.
"""

from __future__ import annotations

from bilge.config.units import format_size
from bilge.model import Snapshot
from bilge.planner.doctor.finding import Facts, Finding, Severity, reclaim_fix
from bilge.planner.summary import largest, usage_by_kind

#: Usage at which the data-root is critical whatever the watermarks say.
CRITICAL_RATIO = 0.95


def disk_bytes(f: Facts) -> Finding:
    """disk-bytes: the data-root's usage against the watch.high watermark."""
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
    return Finding("disk-bytes", severity, title, reclaim_fix(f.plan), evidence)


def disk_inodes(f: Facts) -> Finding:
    """disk-inodes: inode usage against watch.inodes_high, and the volumes holding most."""
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
    fix = "" if severity is Severity.OK else reclaim_fix(f.plan, what="files")
    return Finding("disk-inodes", severity, title, fix, evidence)


def space_holders(f: Facts) -> Finding:
    """space-holders: usage by kind and the largest objects, the evidence other fixes cite."""
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
