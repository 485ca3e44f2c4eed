"""What each command does, as a library: each returns data, never prints.

The CLI (cli.py) parses arguments into a `Context`, calls one of these, and
renders what comes back as text or JSON.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from bilge.applier.core import apply
from bilge.applier.outcomes import settlement
from bilge.applier.saved import narrow_saved
from bilge.collect.prefetch import Prefetch
from bilge.collect.snapshot import collect, statvfs
from bilge.config.policy import Policy
from bilge.engine.docker import DEFAULT_CONCURRENCY, TIMEOUT_SECONDS, DockerEngine, Engine
from bilge.errors import PlanFileError
from bilge.guard.lastuse import used_now, with_last_use
from bilge.model import (
    ActionOutcome,
    AuditEntry,
    Outcome,
    Plan,
    Snapshot,
    UsageSample,
)
from bilge.planner.core import plan as make_plan
from bilge.planner.doctor import Finding, diagnose
from bilge.report.json import plan_from_json
from bilge.safejson import loads_json
from bilge.state.records import Record
from bilge.state.store import StateStore


@dataclass
class Context:
    """Everything a command needs, resolved from options, environment and config."""

    host: str
    policy: Policy
    state_dir: Path
    engine_factory: Callable[[str], Engine] = DockerEngine
    #: A child already reading this host's data-root (prefetch.py), if any.
    prefetch: Prefetch | None = None
    _engine: Engine | None = field(default=None, repr=False)
    _store: StateStore | None = field(default=None, repr=False)
    #: Hosts whose open attempts were settled already (`settle_open_attempts`).
    settled: set[str] = field(default_factory=set, repr=False)

    @property
    def engine(self) -> Engine:
        if self._engine is None:
            timeout = self.policy.engine.request_timeout
            # The prefetch's engine was made before the policy was read: it has
            # the default deadline, so it serves only when that is the policy's.
            if self.engine_factory is DockerEngine:
                if self.prefetch is not None and timeout.total_seconds() == TIMEOUT_SECONDS:
                    self._engine = self.prefetch.engine(self.host)
                if self._engine is None:
                    self._engine = DockerEngine(self.host, timeout=timeout)
            else:
                self._engine = self.engine_factory(self.host)
        return self._engine

    @property
    def store(self) -> StateStore:
        if self._store is None:
            self._store = StateStore(self.state_dir)
        return self._store

    def close(self) -> list[str]:
        """Close the state store; returns what the user must be warned about."""
        if self._store is None:
            return []
        try:
            self._store.close()
        finally:
            warnings = self._store.take_warnings()
        return warnings

    def lost(self) -> list[Record]:
        """Records the closed store could not write at all (its disk stayed full)."""
        return self._store.lost if self._store is not None else []

    def warnings(self) -> list[str]:
        return self._store.take_warnings() if self._store is not None else []


@dataclass(frozen=True)
class Status:
    snapshot: Snapshot
    plan: Plan


@dataclass(frozen=True)
class History:
    entries: list[AuditEntry]
    samples: list[UsageSample]


def snapshot(ctx: Context) -> Snapshot:
    """Collect the engine and record a usage sample of its data-root."""
    snap = collect(ctx.engine, datetime.now(UTC), prefetch=ctx.prefetch)
    host = snap.engine.host
    settle_open_attempts(ctx, snap)
    if snap.filesystem is not None:
        ctx.store.record_sample(host, snap.filesystem, snap.taken_at)
    # Images containers use now are used now: remembered, so that once those
    # containers are gone their images still count as recently used.
    for image_id in used_now(snap):
        ctx.store.record_image_use(host, image_id, snap.taken_at)
    return with_last_use(snap, ctx.store.image_use(host), snap.taken_at)


def status(ctx: Context) -> Status:
    """A fresh snapshot and the plan the policy makes of it (status, plan, apply)."""
    snap = snapshot(ctx)
    return Status(snap, make_plan(snap, ctx.policy, snap.taken_at))


@dataclass(frozen=True)
class Doctor:
    snapshot: Snapshot
    findings: tuple[Finding, ...]


def doctor(ctx: Context) -> Doctor:
    """Findings about the host's disk; the usage history feeds the forecast."""
    result = status(ctx)
    samples = ctx.store.samples(result.snapshot.engine.host, limit=2000)
    findings = diagnose(result.snapshot, result.plan, ctx.policy, samples, result.snapshot.taken_at)
    return Doctor(result.snapshot, findings)


#: A plan of a million actions takes about 400 MB: far beyond any host's; a
#: bigger file is not one bilge wrote.
MAX_PLAN_FILE_BYTES = 512 << 20


def load_plan(path: Path) -> Plan:
    """A saved plan, validated; any problem is a one-line PlanFileError."""
    try:
        with path.open("rb") as f:
            text = f.read(MAX_PLAN_FILE_BYTES + 1)
    except OSError as exc:
        raise PlanFileError(f"plan file {path}: {exc.strerror or exc}") from exc
    if len(text) > MAX_PLAN_FILE_BYTES:
        raise PlanFileError(f"plan file {path}: larger than {MAX_PLAN_FILE_BYTES >> 20} MiB")
    try:
        doc = loads_json(text)
    except ValueError as exc:
        raise PlanFileError(f"plan file {path}: not JSON ({exc})") from exc
    try:
        return plan_from_json(doc)
    except PlanFileError as exc:
        raise PlanFileError(f"{path}: {exc}") from exc


def saved_plan(ctx: Context, path: Path) -> tuple[Plan, Snapshot, tuple[ActionOutcome, ...]]:
    """A plan saved by `plan --out`, narrowed to what a fresh plan of the host
    under the current policy also removes; the refused actions, with why."""
    saved = load_plan(path)
    fresh = status(ctx)
    narrowed, refused = narrow_saved(saved, fresh.plan, fresh.snapshot)
    return narrowed, fresh.snapshot, refused


def run_apply(
    ctx: Context,
    the_plan: Plan,
    snap: Snapshot,
    *,
    refused: tuple[ActionOutcome, ...] = (),
    concurrency: int = DEFAULT_CONCURRENCY,
    on_result: Callable[[ActionOutcome], None] | None = None,
) -> Outcome:
    """Apply a plan made from `snap`; `refused` are a saved plan's actions that
    a fresh plan would not take (`saved_plan`), reported as skipped."""
    data_root = snap.engine.data_root if snap.engine.local else None
    outcome = apply(
        the_plan,
        ctx.engine,
        ctx.store,
        data_root=data_root,
        protect_data=ctx.policy.volumes.protect_data,
        concurrency=concurrency,
        on_result=on_result,
        refused=refused,
    )
    after = statvfs(data_root) if data_root else None
    if after is not None:
        ctx.store.record_sample(snap.engine.host, after)
    # On a full disk the audit log was kept in memory: write it now that
    # apply has (with luck) freed space.
    ctx.store.flush()
    return outcome


def settle_open_attempts(ctx: Context, snap: Snapshot) -> int:
    """Give an outcome to the attempts on this host that a run killed in the middle
    left open (DESIGN.md, safety rule 5); once per store and host. Returns how
    many were settled."""
    host = snap.engine.host
    if host in ctx.settled:
        return 0
    ctx.settled.add(host)
    data_root = snap.engine.data_root if snap.engine.local else None
    settled = 0
    for entry in ctx.store.open_attempts(host):
        found = settlement(ctx.engine, entry, data_root)
        if found is not None:
            ctx.store.record_outcome(entry.id, *found)
            settled += 1
    return settled


def history(ctx: Context, limit: int = 50) -> History:
    return History(ctx.store.audit(limit), ctx.store.samples(limit=limit * 10))
