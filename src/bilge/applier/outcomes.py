"""What really happened: bytes freed, removals whose answer was lost, open attempts.

The audit log must tell the truth (docs/architecture.md, safety rule 5). An engine that dies
or times out after a removal was sent leaves its outcome unknown: the object is
asked for afterwards, and its absence means the removal happened (it was there
just before). A bilge killed between an attempt and its outcome leaves the
attempt open: the next run on that host settles it the same way, once the run
that made it is known to be dead.
"""

from __future__ import annotations

import ctypes
import os
from pathlib import Path

from bilge.collect.snapshot import statvfs
from bilge.engine.base import Engine
from bilge.errors import EngineError, ObjectGone
from bilge.model import AuditEntry, Filesystem, Kind, Result


def freed_since(data_root: str | None, before: Filesystem | None) -> int | None:
    """Bytes the data-root's filesystem gained since `before` (None when unknown)."""
    if data_root is None or before is None:
        return None
    # ext4 returns freed blocks to statvfs only once the journal commits.
    _sync_filesystem(data_root)
    after = statvfs(data_root)
    return None if after is None else after.free_bytes - before.free_bytes


def _sync_filesystem(path: str) -> None:
    """Commit the filesystem holding `path` (syncfs), not every disk (sync)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        if getattr(libc, "syncfs", None) is None or libc.syncfs(fd) != 0:
            os.sync()
    finally:
        os.close(fd)


def still_there(engine: Engine, kind: Kind, object_id: str) -> bool:
    """Whether the engine still has the object; EngineError when it cannot say."""
    inspect = {
        Kind.CONTAINER: engine.inspect_container,
        Kind.VOLUME: engine.inspect_volume,
        Kind.IMAGE: engine.inspect_image,
        Kind.NETWORK: engine.inspect_network,
    }.get(kind)
    if kind is Kind.BUILD_CACHE:
        records = engine.system_df(build_cache_only=True).get("BuildCache") or []
        return any(isinstance(r, dict) and r.get("ID") == object_id for r in records)
    if inspect is None:
        raise EngineError(f"{kind} {object_id}: the engine cannot say whether it is there")
    try:
        inspect(object_id)
    except ObjectGone:
        return False
    return True


def settlement(
    engine: Engine, entry: AuditEntry, data_root: str | None, driver: str
) -> tuple[Result, str] | None:
    """The outcome of an attempt its run left open, or None when nobody can tell
    yet (it then stays open for a later run). `data_root` (when readable) and its
    storage `driver` tell whether an orphaned layer directory is still there."""
    if entry.kind is Kind.LOG:
        # A truncation leaves nothing to ask about: say so, once and for all.
        return Result.SKIPPED, f"outcome not known: {_STOPPED}"
    try:
        if entry.kind is Kind.ORPHAN:
            if data_root is None:
                return None
            there = os.path.lexists(os.path.join(data_root, driver, entry.object_id))
        else:
            there = still_there(engine, entry.kind, entry.object_id)
    except EngineError:
        return None
    if there:
        return Result.SKIPPED, f"not removed: {_STOPPED}"
    return Result.REMOVED, f"gone: {_STOPPED}"


_STOPPED = "the run that attempted it stopped before its outcome"


def local_mountpoint(engine: Engine, name: str) -> Path | None:
    """The folder of a local volume kept outside the data-root's volumes/ (Podman's
    volume path may be set elsewhere), for the last look before it goes."""
    try:
        info = engine.inspect_volume(name)
    except EngineError:
        return None
    path = Path(str(info.get("Mountpoint") or "/nonexistent"))
    local = info.get("Driver") == "local" and not (info.get("Options") or {}).get("device")
    return path if local and path.name == "_data" and path.is_dir() else None
