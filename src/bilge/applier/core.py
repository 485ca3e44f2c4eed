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

import os
import threading
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from functools import partial
from itertools import groupby
from pathlib import Path
from typing import Protocol

from bilge.applier.outcomes import freed_since, local_mountpoint, still_there
from bilge.clock import SYSTEM_CLOCK, Clock
from bilge.collect.datafiles import scan_dir
from bilge.collect.dataroot import looks_anonymous
from bilge.collect.snapshot import statvfs
from bilge.collect.storage import Storage, open_storage
from bilge.engine.base import DEFAULT_CONCURRENCY, Engine, JSONObject
from bilge.errors import (
    EngineError,
    ObjectConflict,
    ObjectGone,
    StateError,
)
from bilge.model import (
    Action,
    ActionOutcome,
    Kind,
    OrphanDir,
    Outcome,
    Plan,
    Result,
)
from bilge.planner.reclaim import TRUNCATABLE_DRIVERS
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


class _LostAnswer(Exception):
    """A removal was sent but its answer is not a clear yes or no (the engine died,
    the deadline passed, it answered 500): whether it happened is asked after."""


def apply(
    plan: Plan,
    engine: Engine,
    audit: BulkAuditLog,
    *,
    data_root: str | None = None,
    protect_data: bool = True,
    concurrency: int = DEFAULT_CONCURRENCY,
    on_result: Callable[[ActionOutcome], None] | None = None,
    refused: Iterable[ActionOutcome] = (),
    stop: threading.Event | None = None,
    clock: Clock = SYSTEM_CLOCK,
) -> Outcome:
    """Carry out `plan`; `refused` are outcomes decided before (stale plan). Once
    `stop` is set, the removals in flight finish and no new one is attempted.
    With a readable `data_root`, a volume is read again just before it goes and
    kept if it now holds a database's files (named ones only when `protect_data`,
    anonymous ones always, as the planner decides)."""
    started = clock.now()
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
    remover = _Remover(engine, audit, plan, data_root, stop, protect_named=protect_data)
    unrecorded = remover.record(todo)
    done(unrecorded)
    with ThreadPoolExecutor(max_workers=max(1, concurrency)) as pool:
        for kind, group in groupby([] if unrecorded else todo, key=lambda a: a.kind):
            # One kind at a time: volumes must wait for their containers to go.
            # Images and build cache go one by one in plan order, children
            # first, since the engine keeps what another one builds on.
            run = map if kind in SEQUENTIAL_KINDS else pool.map
            actions = list(group)
            if kind is Kind.VOLUME:
                remover.list_volumes([a.id for a in actions])
            done(run(remover.run, actions))
    return Outcome(
        plan=plan,
        results=tuple(results),
        started_at=started,
        finished_at=clock.now(),
        freed_bytes_measured=freed_since(data_root, before),
    )


def _volume_users(containers: list[JSONObject]) -> dict[str, list[str]]:
    """Volume name -> ids of the containers (any state) that mount it."""
    users: dict[str, list[str]] = {}
    for c in containers:
        for m in c.get("Mounts") or ():
            if m.get("Type") == "volume" and m.get("Name"):
                users.setdefault(str(m["Name"]), []).append(str(c.get("Id") or ""))
    return users


class _Remover:
    """Runs one action: audit, re-check, remove, audit the outcome."""

    def __init__(
        self,
        engine: Engine,
        audit: BulkAuditLog,
        plan: Plan,
        data_root: str | None = None,
        stop: threading.Event | None = None,
        *,
        protect_named: bool = True,
    ) -> None:
        self.engine = engine
        self.protect_named = protect_named
        self.stop = stop
        self.data_root = data_root
        self._root: Storage | None = None
        self.audit = audit
        self.plan = plan
        #: (kind, id) -> the action's entry in the audit log.
        self.entries: dict[tuple[Kind, str], int] = {}
        #: Volumes whose container this run removed, asking the engine to take them along.
        self.with_container: set[str] = set()
        #: Anonymous volume -> the container it belongs to, for those this run did not remove.
        self.owners = {v: a for a in plan.actions if a.kind is Kind.CONTAINER for v in a.volumes}
        self.not_removed: set[str] = set()
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

    def list_volumes(self, names: list[str]) -> None:
        """Just before the volumes `names` go: which still exist (one call instead of
        one per volume its container should have taken along), and which any
        container mounts (one listing instead of one per volume: on a crowded host
        each is a walk over every container in the engine). When every one went with
        its container there is nothing left to ask about (Podman takes seconds to
        list a few hundred containers)."""
        if self.with_container:
            try:
                self.present = {str(v.get("Name")) for v in self.engine.volumes()}
            except EngineError:
                self.present = None  # each volume then takes the ordinary path
        if self.present is not None and not (set(names) & self.present):
            self.volume_users = {}  # all gone: each is reported as taken along
            return
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
        result, detail = self._attempt(action)
        if action.kind is Kind.CONTAINER and result is not Result.REMOVED:
            with self.lock:
                self.not_removed.add(action.id)
        return self._finish(action, entry, result, detail)

    def _finish(
        self, action: Action, entry: int, result: Result | None, detail: str
    ) -> ActionOutcome:
        """The outcome, written to the audit log; `None` is "not known": the entry
        stays open for a later run to settle, and this run counts it as failed."""
        outcome = ActionOutcome(action, result or Result.FAILED, detail)
        if result is None:
            return outcome
        try:
            self.audit.record_outcome(entry, outcome.result, outcome.detail)
        except StateError as exc:
            outcome = replace(outcome, detail=f"{outcome.detail} (audit log: {exc})".strip())
        return outcome

    def _attempt(self, action: Action) -> tuple[Result | None, str]:
        try:
            self.checks[action.kind](action)
        except Skip as exc:
            return Result.SKIPPED, str(exc)
        except _LostAnswer as exc:
            return self._settle(action, str(exc))
        except (ObjectGone, ObjectConflict) as exc:
            gone = isinstance(exc, ObjectGone)
            return Result.SKIPPED, "already gone" if gone else f"engine refused: {exc}"
        except EngineError as exc:  # unreachable engine included: this one fails
            return Result.FAILED, str(exc)
        except OSError as exc:  # logs and orphans are files bilge handles itself
            return Result.FAILED, f"{exc.strerror or exc}: {exc.filename or ''}".strip(": ")
        return Result.REMOVED, ""

    def _send(self, removal: Callable[[], object]) -> None:
        """Send a removal; an answer that is neither done, gone nor refused is lost."""
        try:
            removal()
        except (ObjectGone, ObjectConflict):
            raise
        except EngineError as exc:
            raise _LostAnswer(str(exc)) from exc

    def _settle(self, action: Action, error: str) -> tuple[Result | None, str]:
        """After a lost answer: the object gone means this removal did it (it was
        there, unchanged, just before); still there means it failed; no answer
        leaves it open, for the next run to settle."""
        try:
            exists = still_there(self.engine, action.kind, action.id)
        except EngineError:
            return None, f"outcome unknown, to be settled by the next run: {error}"
        if exists:
            return Result.FAILED, error
        return Result.REMOVED, f"removed (the engine's answer was lost: {error})"

    def _container(self, action: Action) -> None:
        state = self.engine.container_state(action.id)
        status = str(state.get("Status") or "")
        if status not in REMOVABLE_CONTAINER_STATES:
            raise Skip(f"now {status or 'in an unknown state'}")
        started = parse_time(state.get("StartedAt"))
        if started is not None and started > self.plan.created_at:
            raise Skip("started since the plan was made")
        along = self._take_along(action)
        self._send(lambda: self.engine.remove_container(action.id, volumes=along))
        if along:
            # Credited to this run only once its container is gone, and only if
            # the volume is gone then too (list_volumes asks).
            with self.lock:
                self.with_container.update(action.volumes)

    def _take_along(self, action: Action) -> bool:
        """Whether the engine may remove the container's anonymous volumes with it:
        only when every one of them is a removal of this apply (not one a saved
        plan's check refused), so in the audit log already, and none of them now
        holds a database's files (each then goes, or stays, on its own)."""
        if not action.volumes:
            return False
        if not all((Kind.VOLUME, name) in self.entries for name in action.volumes):
            return False  # the volumes go one by one later, or stay
        try:
            for name in action.volumes:
                self._check_data(name)
        except Skip:
            return False
        return True

    def _check_data(self, name: str) -> None:
        """Read the volume again, as the planner did: database files, or anything
        that stops the scan early, keep it (docs/architecture.md, safety rules 3 and 4)."""
        if self.data_root is None or not (self.protect_named or looks_anonymous(name)):
            return
        usual = Path(self.data_root, "volumes", name, "_data")
        # An engine may keep its volumes elsewhere (Podman's volume path): ask it.
        data = usual if usual.is_dir() else local_mountpoint(self.engine, name)
        if data is None:
            return  # gone (the removal says so) or not a local volume's folder
        scan = scan_dir(data)
        if scan.markers:
            raise Skip(f"now holds database data: {', '.join(scan.markers)}")
        if not scan.complete:
            raise Skip(f"may now hold database data: could not read all of it ({scan.unseen})")

    def _volume(self, action: Action) -> None:
        # No inspect first: a vanished volume answers the removal with 404 (a skip).
        # A container that mounts it after the listing is the engine's to refuse:
        # without force it answers 409 for a volume in use (a skip too).
        if self.volume_users is not None:
            users = self.volume_users.get(action.id, [])
        else:
            users = self.engine.containers_using(volume=action.id)
        owner = self.owners.get(action.id)
        if owner is not None and owner.id in self.not_removed:
            raise Skip(f"its container {owner.name} was not removed")
        if users:
            raise Skip(f"now mounted by container {users[0][:12]}")
        self._check_data(action.id)
        self._send(lambda: self.engine.remove_volume(action.id))

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
            self._send(partial(self.engine.remove_image, tag))
        if not action.tags:
            self._send(lambda: self.engine.remove_image(action.id))

    def _network(self, action: Action) -> None:
        attached = self.engine.inspect_network(action.id).get("Containers") or {}
        if attached:
            raise Skip(f"now has {len(attached)} endpoint(s)")
        users = self.engine.containers_using(network=action.id)
        if users:
            raise Skip(f"now used by container {users[0][:12]}")
        self._send(lambda: self.engine.remove_network(action.id))

    def _build_cache(self, action: Action) -> None:
        self._send(lambda: self.engine.remove_build_cache(action.id))

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
        modified = root.orphan_modified(action.id)
        if modified is None:
            raise ObjectGone(action.id)
        if OrphanDir(action.id, 0, modified).fingerprint() != action.fingerprint:
            raise Skip("changed since the plan was made")
        if why := root.orphan_still_unused(action.id):
            raise Skip(why)
        root.remove_orphan(action.id)

    def _data_root(self) -> Storage:
        if self.data_root is None:
            raise Skip("the data-root is not readable from here")
        if self._root is None:
            info = self.engine.info()
            driver, volumes = str(info.get("Driver") or ""), str(info.get("VolumePath") or "")
            caps = self.engine.capabilities()
            self._root = open_storage(caps, self.data_root, driver, volumes)
        return self._root
