"""Plan -> Outcome: carry out removals, safely.

Kinds are removed in the plan's order (containers, then the volumes they
freed, images, networks, build cache), each kind with bounded parallelism.
Just before each deletion its precondition is checked again against the
engine; `force` is never used, so the engine's own checks stay as a second
line of defence and its 409 is a skip. Every removal is written to the audit
log before the first one is attempted, in one transaction; if that write
fails, nothing is tried. Outcomes are written as the removals end.
"""

from __future__ import annotations

import ctypes
import os
import threading
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from datetime import UTC, datetime
from itertools import groupby
from pathlib import Path
from typing import Protocol

from bilge.collect import statvfs
from bilge.dataroot import DataRoot, orphan_modified, orphan_still_unused, remove_orphan
from bilge.engine import DEFAULT_CONCURRENCY, Engine, JSONObject
from bilge.errors import (
    EngineError,
    ObjectConflict,
    ObjectGone,
    PlanFileError,
    StateError,
)
from bilge.model import (
    Action,
    ActionOutcome,
    Filesystem,
    Kind,
    OrphanDir,
    Outcome,
    Plan,
    Result,
    Snapshot,
)
from bilge.reclaim import TRUNCATABLE_DRIVERS
from bilge.timeparse import parse_time

REMOVABLE_CONTAINER_STATES = frozenset({"exited", "dead", "created"})
SEQUENTIAL_KINDS = frozenset({Kind.IMAGE, Kind.BUILD_CACHE})


class AuditLog(Protocol):
    def record_attempt(self, host: str, action: Action) -> int: ...
    def record_outcome(self, entry_id: int, result: Result, detail: str) -> None: ...


class BulkAuditLog(AuditLog, Protocol):
    def record_attempts(self, host: str, actions: Sequence[Action]) -> list[int]: ...


class Skip(Exception):
    """The precondition no longer holds; the action is skipped with this reason."""


def apply(
    plan: Plan,
    engine: Engine,
    audit: BulkAuditLog,
    *,
    data_root: str | None = None,
    concurrency: int = DEFAULT_CONCURRENCY,
    on_result: Callable[[ActionOutcome], None] | None = None,
    refused: Iterable[ActionOutcome] = (),
    stop: threading.Event | None = None,
) -> Outcome:
    """Carry out `plan`; `refused` are outcomes decided before (stale plan). Once
    `stop` is set, the removals in flight finish and no new one is attempted."""
    started = datetime.now(UTC)
    before = statvfs(data_root) if data_root else None
    results: list[ActionOutcome] = []

    def done(outcomes: Iterable[ActionOutcome]) -> None:
        for outcome in outcomes:
            results.append(outcome)
            if on_result is not None:
                on_result(outcome)

    refused = list(refused)
    done(refused)
    refused_keys = {(r.action.kind, r.action.id) for r in refused}
    todo = [a for a in plan.actions if (a.kind, a.id) not in refused_keys]
    remover = _Remover(engine, audit, plan, data_root, stop)
    unrecorded = remover.record(todo)
    done(unrecorded)
    with ThreadPoolExecutor(max_workers=max(1, concurrency)) as pool:
        for kind, group in groupby([] if unrecorded else todo, key=lambda a: a.kind):
            # One kind at a time: volumes must wait for their containers to go.
            # Images and build cache go one by one in plan order, children
            # first, since the engine keeps what another one builds on.
            run = map if kind in SEQUENTIAL_KINDS else pool.map
            if kind is Kind.VOLUME:
                remover.list_volumes()
            done(run(remover.run, list(group)))
    return Outcome(
        plan=plan,
        results=tuple(results),
        started_at=started,
        finished_at=datetime.now(UTC),
        freed_bytes_measured=_measure(data_root, before),
    )


def _measure(data_root: str | None, before: Filesystem | None) -> int | None:
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


def _volume_users(containers: list[JSONObject]) -> dict[str, list[str]]:
    """Volume name -> ids of the containers (any state) that mount it."""
    users: dict[str, list[str]] = {}
    for c in containers:
        for m in c.get("Mounts") or ():
            if m.get("Type") == "volume" and m.get("Name"):
                users.setdefault(str(m["Name"]), []).append(str(c.get("Id") or ""))
    return users


def refuse_stale(plan: Plan, fresh: Snapshot) -> tuple[ActionOutcome, ...]:
    """Outcomes for the actions of a saved plan whose object changed or vanished."""
    if plan.host != fresh.engine.host:
        raise PlanFileError(
            f"plan file was made for {plan.host}, not {fresh.engine.host}; make a new plan"
        )
    now = {**fresh.fingerprints(), **fresh.log_fingerprints()}
    out = []
    for action in plan.actions:
        current = now.get((action.kind, action.id))
        if current is None:
            out.append(ActionOutcome(action, Result.SKIPPED, "gone since the plan was made"))
        elif current != action.fingerprint:
            out.append(
                ActionOutcome(action, Result.SKIPPED, "refused: changed since the plan was made")
            )
    return tuple(out)


class _Remover:
    """Runs one action: audit, re-check, remove, audit the outcome."""

    def __init__(
        self,
        engine: Engine,
        audit: BulkAuditLog,
        plan: Plan,
        data_root: str | None = None,
        stop: threading.Event | None = None,
    ) -> None:
        self.engine = engine
        self.stop = stop
        self.data_root = data_root
        self._root: DataRoot | None = None
        self.audit = audit
        self.plan = plan
        #: (kind, id) -> the action's entry in the audit log.
        self.entries: dict[tuple[Kind, str], int] = {}
        #: Volumes that went to the engine with their container.
        self.with_container: set[str] = set()
        self.lock = threading.Lock()
        self.present: set[str] | None = None
        self.volume_users: dict[str, list[str]] | None = None
        self.checks: dict[Kind, Callable[[Action], None]] = {
            Kind.CONTAINER: self._container,
            Kind.VOLUME: self._volume,
            Kind.IMAGE: self._image,
            Kind.NETWORK: self._network,
            Kind.BUILD_CACHE: self._build_cache,
            Kind.LOG: self._log,
            Kind.ORPHAN: self._orphan,
        }

    def list_volumes(self) -> None:
        """Just before the volumes go: which still exist (one call instead of one per
        volume its container should have taken along), and which any container
        mounts (one listing instead of one per volume: on a crowded host each is a
        walk over every container in the engine)."""
        if self.with_container:
            try:
                self.present = {str(v.get("Name")) for v in self.engine.volumes()}
            except EngineError:
                self.present = None  # each volume then takes the ordinary path
        try:
            self.volume_users = _volume_users(self.engine.containers(size=False))
        except EngineError:
            self.volume_users = None  # each volume is then checked on its own

    def record(self, actions: list[Action]) -> list[ActionOutcome]:
        """Write every removal to the audit log, all before the first is attempted:
        one transaction, not one per removal that each removal would wait for.
        If the log cannot be written, every action fails and none is attempted."""
        try:
            ids = self.audit.record_attempts(self.plan.host, actions)
        except StateError as exc:
            detail = f"not attempted: audit log failed: {exc}"
            return [ActionOutcome(a, Result.FAILED, detail) for a in actions]
        self.entries = {(a.kind, a.id): entry for a, entry in zip(actions, ids, strict=True)}
        return []

    def run(self, action: Action) -> ActionOutcome:
        entry = self.entries[(action.kind, action.id)]
        with self.lock:
            taken_along = action.id in self.with_container
        # A volume its container took along was attempted already: it still
        # gets its outcome. Anything else waits for no one once stopping.
        if taken_along and self.present is not None and action.id not in self.present:
            return self._finish(action, entry, Result.REMOVED, "removed with its container")
        if not taken_along and self.stop is not None and self.stop.is_set():
            return self._finish(action, entry, Result.SKIPPED, "not attempted: bilge is stopping")
        return self._finish(action, entry, *self._attempt(action))

    def _finish(self, action: Action, entry: int, result: Result, detail: str) -> ActionOutcome:
        outcome = ActionOutcome(action, result, detail)
        try:
            self.audit.record_outcome(entry, outcome.result, outcome.detail)
        except StateError as exc:
            outcome = replace(outcome, detail=f"{outcome.detail} (audit log: {exc})".strip())
        return outcome

    def _attempt(self, action: Action) -> tuple[Result, str]:
        try:
            self.checks[action.kind](action)
        except Skip as exc:
            return Result.SKIPPED, str(exc)
        except ObjectGone:
            return Result.SKIPPED, "already gone"
        except ObjectConflict as exc:
            return Result.SKIPPED, f"engine refused: {exc}"
        except EngineError as exc:  # unreachable engine included: this one fails
            return Result.FAILED, str(exc)
        except OSError as exc:  # logs and orphans are files bilge handles itself
            return Result.FAILED, f"{exc.strerror or exc}: {exc.filename or ''}".strip(": ")
        return Result.REMOVED, ""

    def _container(self, action: Action) -> None:
        state = self.engine.inspect_container(action.id).get("State") or {}
        status = str(state.get("Status") or "")
        if status not in REMOVABLE_CONTAINER_STATES:
            raise Skip(f"now {status or 'in an unknown state'}")
        started = parse_time(state.get("StartedAt"))
        if started is not None and started > self.plan.created_at:
            raise Skip("started since the plan was made")
        self.engine.remove_container(action.id, volumes=self._take_along(action))

    def _take_along(self, action: Action) -> bool:
        """Whether the engine may remove the container's anonymous volumes with it:
        only when every one of them is a removal of this apply (not one a saved
        plan's check refused), so in the audit log already."""
        if not action.volumes:
            return False
        if not all((Kind.VOLUME, name) in self.entries for name in action.volumes):
            return False  # the volumes go one by one later, or stay
        with self.lock:
            self.with_container.update(action.volumes)
        return True

    def _volume(self, action: Action) -> None:
        # No inspect first: a vanished volume answers the removal with 404 (a skip).
        # A container that mounts it after the listing is the engine's to refuse:
        # without force it answers 409 for a volume in use (a skip too).
        if self.volume_users is not None:
            users = self.volume_users.get(action.id, [])
        else:
            users = self.engine.containers_using(volume=action.id)
        if users:
            raise Skip(f"now mounted by container {users[0][:12]}")
        self.engine.remove_volume(action.id)

    def _image(self, action: Action) -> None:
        tags = self.engine.inspect_image(action.id).get("RepoTags") or []
        tags = sorted(t for t in tags if t != "<none>:<none>")
        if tags != sorted(action.tags):
            raise Skip("its tags changed since the plan was made")
        users = self.engine.containers_using(image=action.id)
        if users:
            raise Skip(f"now used by container {users[0][:12]}")
        # An image with several tags cannot be removed by id without force:
        # untag it tag by tag; the last untag removes it.
        for tag in action.tags:
            self.engine.remove_image(tag)
        if not action.tags:
            self.engine.remove_image(action.id)

    def _network(self, action: Action) -> None:
        attached = self.engine.inspect_network(action.id).get("Containers") or {}
        if attached:
            raise Skip(f"now has {len(attached)} endpoint(s)")
        users = self.engine.containers_using(network=action.id)
        if users:
            raise Skip(f"now used by container {users[0][:12]}")
        self.engine.remove_network(action.id)

    def _build_cache(self, action: Action) -> None:
        self.engine.remove_build_cache(action.id)

    def _log(self, action: Action) -> None:
        info = self.engine.inspect_container(action.id)
        log = (info.get("HostConfig") or {}).get("LogConfig") or {}
        if log.get("Type") not in TRUNCATABLE_DRIVERS:
            raise Skip(f"now logs with {log.get('Type') or 'an unknown driver'}")
        path = Path(str(info.get("LogPath") or ""))
        if self.data_root is None or not path.is_relative_to(Path(self.data_root, "containers")):
            raise Skip("its log file is not in the data-root")
        # The engine appends (O_APPEND): after the truncation it writes at the new
        # end, so `docker logs` and the container carry on.
        os.truncate(path, 0)

    def _orphan(self, action: Action) -> None:
        root = self._data_root()
        modified = orphan_modified(root, action.id)
        if modified is None:
            raise ObjectGone(action.id)
        if OrphanDir(action.id, 0, modified).fingerprint() != action.fingerprint:
            raise Skip("changed since the plan was made")
        if why := orphan_still_unused(root, action.id):
            raise Skip(why)
        remove_orphan(root, action.id)

    def _data_root(self) -> DataRoot:
        if self.data_root is None:
            raise Skip("the data-root is not readable from here")
        if self._root is None:
            self._root = DataRoot(self.data_root, str(self.engine.info().get("Driver") or ""))
        return self._root
