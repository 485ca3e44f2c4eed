"""One host under one policy, as a library: status, plan, apply, doctor, history.

A `Session` returns data and never prints; the command line (bilge.cli) and the
guard (bilge.guard) render what it returns. It opens what it needs lazily: the
engine on first use (with the policy's request deadline), and the state store
under `state_dir` unless one is handed in (the guard shares one store between
its hosts; a store handed in is not closed by the session).

    with Session("unix:///var/run/docker.sock", load_policy(None)) as session:
        plan = session.plan()
        outcome = session.apply(plan)
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

from bilge.applier.core import apply
from bilge.applier.outcomes import settlement
from bilge.applier.saved import narrow_saved
from bilge.clock import SYSTEM_CLOCK, Clock
from bilge.collect.prefetch import Prefetch
from bilge.collect.snapshot import collect, statvfs
from bilge.config.policy import Policy
from bilge.engine.base import DEFAULT_CONCURRENCY, Engine
from bilge.engine.connect import open_engine
from bilge.engine.docker import TIMEOUT_SECONDS
from bilge.guard.lastuse import used_now, with_last_use
from bilge.model import ActionOutcome, AuditEntry, Outcome, Plan, Snapshot, UsageSample
from bilge.planfile import read_plan
from bilge.planner.core import plan as make_plan
from bilge.planner.doctor import Finding, diagnose
from bilge.state.records import Record
from bilge.state.store import StateStore, default_state_dir


@dataclass(frozen=True)
class Status:
    snapshot: Snapshot
    plan: Plan


@dataclass(frozen=True)
class Doctor:
    snapshot: Snapshot
    findings: tuple[Finding, ...]


@dataclass(frozen=True)
class History:
    entries: list[AuditEntry]
    samples: list[UsageSample]


@dataclass(frozen=True)
class SavedPlan:
    """A saved plan narrowed to what a fresh plan also removes (`plan`, of `snapshot`),
    and the saved actions refused, each with the fresh plan's reason."""

    plan: Plan
    snapshot: Snapshot
    refused: tuple[ActionOutcome, ...]


class Session:
    """Everything a command needs for one host: its engine, the policy, the state store."""

    def __init__(
        self,
        host: str,
        policy: Policy,
        store: StateStore | None = None,
        *,
        state_dir: Path | None = None,
        engine: Engine | None = None,
        engine_factory: Callable[[str], Engine] | None = None,
        prefetch: Prefetch | None = None,
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        """`store`: a state store to share (not closed here), else one is opened
        under `state_dir` (default: `default_state_dir()`) when first needed.
        `engine`: an engine already connected, else `engine_factory(host)`, else
        the engine at `host` (Docker or Podman: engine/connect.py) with the
        policy's deadline. `prefetch`: a child already reading this host's
        data-root (bilge.collect.prefetch), if any. `clock`: where the time comes
        from (a FakeClock in tests)."""
        self.host = host
        self.policy = policy
        self.state_dir = state_dir or default_state_dir()
        self.prefetch = prefetch
        self.clock = clock
        self._engine = engine
        self._engine_factory = engine_factory
        self._store = store
        self._owns_store = store is None
        #: Hosts whose open attempts were settled already (`settle_open_attempts`).
        self._settled: set[str] = set()

    # --- what it holds ---------------------------------------------------------

    @property
    def engine(self) -> Engine:
        if self._engine is None:
            self._engine = self._open_engine()
        return self._engine

    def _open_engine(self) -> Engine:
        if self._engine_factory is not None:
            return self._engine_factory(self.host)
        timeout = self.policy.engine.request_timeout
        # The prefetch's engine was made before the policy was read: it has the
        # default deadline, so it serves only when that is the policy's.
        if self.prefetch is not None and timeout.total_seconds() == TIMEOUT_SECONDS:
            engine = self.prefetch.engine(self.host)
            if engine is not None:
                return engine
        return open_engine(self.host, timeout=timeout)

    @property
    def store(self) -> StateStore:
        if self._store is None:
            self._store = StateStore(self.state_dir, clock=self.clock)
        return self._store

    def close(self) -> list[str]:
        """Close the state store if the session opened it; returns the warnings the
        user must see (a full disk, records written late or lost)."""
        if self._store is None or not self._owns_store:
            return self.warnings()
        try:
            self._store.close()
        finally:
            warnings = self._store.take_warnings()
        return warnings

    def warnings(self) -> list[str]:
        return self._store.take_warnings() if self._store is not None else []

    def lost(self) -> list[Record]:
        """Records the closed store could not write at all (its disk stayed full)."""
        return self._store.lost if self._store is not None and self._owns_store else []

    def __enter__(self) -> Session:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    # --- the commands ------------------------------------------------------------

    def snapshot(self) -> Snapshot:
        """Collect the engine, record a usage sample of its data-root, and settle the
        attempts a dead run left open on this host."""
        snap = collect(self.engine, self.clock.now(), prefetch=self.prefetch)
        host = snap.engine.host
        self.settle_open_attempts(snap)
        if snap.filesystem is not None:
            self.store.record_sample(host, snap.filesystem, snap.taken_at)
        # Images containers use now are used now: remembered, so that once those
        # containers are gone their images still count as recently used.
        for image_id in used_now(snap):
            self.store.record_image_use(host, image_id, snap.taken_at)
        return with_last_use(snap, self.store.image_use(host), snap.taken_at)

    def status(self) -> Status:
        """A fresh snapshot and the plan the policy makes of it."""
        snap = self.snapshot()
        return Status(snap, make_plan(snap, self.policy, snap.taken_at))

    def plan(self) -> Plan:
        """What the policy would remove now, and why (and what it keeps, and why)."""
        return self.status().plan

    def doctor(self) -> Doctor:
        """Findings about the host's disk; the usage history feeds the forecast."""
        result = self.status()
        samples = self.store.samples(result.snapshot.engine.host, limit=2000)
        findings = diagnose(
            result.snapshot, result.plan, self.policy, samples, result.snapshot.taken_at
        )
        return Doctor(result.snapshot, findings)

    def saved_plan(self, path: Path) -> SavedPlan:
        """A plan saved by `plan --out`, narrowed to what a fresh plan of the host
        under the current policy also removes (docs/architecture.md, safety rule 6)."""
        saved = read_plan(path)
        fresh = self.status()
        narrowed, refused = narrow_saved(saved, fresh.plan, fresh.snapshot)
        return SavedPlan(narrowed, fresh.snapshot, refused)

    def apply(
        self,
        plan: Plan,
        snapshot: Snapshot | None = None,
        *,
        refused: tuple[ActionOutcome, ...] = (),
        concurrency: int = DEFAULT_CONCURRENCY,
        on_result: Callable[[ActionOutcome], None] | None = None,
    ) -> Outcome:
        """Apply `plan`, made from `snapshot` (a fresh one when not given: it says
        where the data-root is); `refused` are a saved plan's actions a fresh
        plan would not take (`saved_plan`), reported as skipped."""
        snap = snapshot or self.snapshot()
        data_root = snap.engine.data_root if snap.engine.local else None
        outcome = apply(
            plan,
            self.engine,
            self.store,
            data_root=data_root,
            protect_data=self.policy.volumes.protect_data,
            concurrency=concurrency,
            on_result=on_result,
            refused=refused,
            clock=self.clock,
        )
        after = statvfs(data_root) if data_root else None
        if after is not None:
            self.store.record_sample(snap.engine.host, after)
        # On a full disk the audit log was kept in memory: write it now that
        # apply has (with luck) freed space.
        self.store.flush()
        return outcome

    def history(self, limit: int = 50, hosts: Sequence[str] = ()) -> History:
        """The audit log, newest first, and the usage samples: of every host, or
        only of `hosts` (the state store is shared by all the hosts of a fleet)."""
        if not hosts:
            return History(self.store.audit(limit), self.store.samples(limit=limit * 10))
        samples = [s for h in hosts for s in self.store.samples(h, limit=limit * 10)]
        samples.sort(key=lambda s: s.at, reverse=True)
        return History(self.store.audit(limit, hosts), samples[: limit * 10])

    def settle_open_attempts(self, snap: Snapshot) -> int:
        """Give an outcome to the attempts on this host that a run killed in the
        middle left open (docs/architecture.md, safety rule 5); once per session and host.
        Returns how many were settled."""
        host = snap.engine.host
        if host in self._settled:
            return 0
        self._settled.add(host)
        data_root = snap.engine.data_root if snap.engine.local else None
        settled = 0
        for entry in self.store.open_attempts(host):
            found = settlement(self.engine, entry, data_root, snap.engine.storage_driver)
            if found is not None:
                self.store.record_outcome(entry.id, *found)
                settled += 1
        return settled
