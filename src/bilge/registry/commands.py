"""The registry commands as a library: each returns data, never prints."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import ExitStack, contextmanager
from pathlib import Path

from bilge.applier.core import AuditLog
from bilge.clock import SYSTEM_CLOCK, Clock
from bilge.config.units import format_size
from bilge.errors import ConfigError, PlanFileError, StateError, UsageError
from bilge.model import Action, Kind, Result
from bilge.planfile import read_registry_plan
from bilge.registry import planner
from bilge.registry.apply import apply
from bilge.registry.client import RegistryClient
from bilge.registry.collect import collect
from bilge.registry.gc import GcReport, run_gc
from bilge.registry.model import DeletionOutcome, RegistryOutcome, RegistryPlan
from bilge.registry.policy import Registries, RegistryConfig
from bilge.registry.pulls import PullTimes
from bilge.registry.storage import storage_root


def select(registries: Registries, wanted: Sequence[str]) -> Registries:
    """The registries --registry names (by name, host[:port] or URL); all without it."""
    if not registries:
        raise ConfigError(
            "no [[registry]] table in the policy: add one with its url and rules (docs/registry.md)"
        )
    if not wanted:
        return registries
    out: list[RegistryConfig] = []
    for name in wanted:
        found = [r for r in registries if name in (r.name, r.host, r.url, r.label)]
        if not found:
            known = ", ".join(r.label for r in registries)
            raise UsageError(f"--registry {name}: no such registry in the policy (known: {known})")
        out += [r for r in found if r not in out]
    return tuple(out)


@contextmanager
def clients(
    registries: Registries, env: Mapping[str, str] = os.environ
) -> Iterator[dict[str, RegistryClient]]:
    with ExitStack() as stack:
        yield {r.url: stack.enter_context(_client(r, env)) for r in registries}


def make_plan(
    registries: Registries,
    keep_label: str,
    env: Mapping[str, str] = os.environ,
    *,
    pulls: PullTimes | None = None,
    clock: Clock = SYSTEM_CLOCK,
) -> RegistryPlan:
    """Read every registry and decide under its rules (`keep_label`: the policy's;
    `pulls`: the last pulls `bilge registry listen` recorded)."""
    now = clock.now()
    roots = {r.url: storage_for(r) for r in registries}
    with clients(registries, env) as open_clients:
        snapshots = []
        for config in registries:
            client = open_clients[config.url]
            client.ping()
            pulled = (pulls or {}).get(config.url)
            snapshots.append(collect(client, config, now, root=roots[config.url], pulled=pulled))
    return planner.plan(snapshots, {r.url: r for r in registries}, now, keep_label)


def storage_for(config: RegistryConfig) -> Path | None:
    """The registry's filesystem storage, when bilge can read it. A rule that
    needs it (untagged_after, age = "pushed") makes its absence an error;
    otherwise the plan only lacks the disk figures."""
    needs = next((r.needs_storage for r in config.rules if r.needs_storage), "")
    if config.gc is None:
        return None
    try:
        return storage_root(config)
    except ConfigError as exc:
        if needs:
            raise ConfigError(f"{exc} ({needs} needs it)") from exc
        return None


def needs_pulls(registries: Registries) -> bool:
    return any(r.keep_pulled_within is not None for c in registries for r in c.rules)


def load_plan(path: Path, registries: Registries) -> RegistryPlan:
    """A saved plan, checked, for registries the policy still configures."""
    plan = read_registry_plan(path)
    configured = {r.url for r in registries}
    for url in plan.registries:
        if url not in configured:
            raise PlanFileError(f"{path}: plan is for registry {url}, which the policy lacks")
    return plan


def run_apply(
    plan: RegistryPlan,
    registries: Registries,
    audit: AuditLog,
    *,
    on_result: Callable[[DeletionOutcome], None] | None = None,
    env: Mapping[str, str] = os.environ,
) -> RegistryOutcome:
    used = tuple(r for r in registries if r.url in plan.registries)
    with clients(used, env) as open_clients:
        return apply(plan, open_clients, audit, on_result=on_result)


def gc(
    config: RegistryConfig,
    audit: AuditLog,
    *,
    dry_run: bool,
    env: Mapping[str, str] = os.environ,
) -> GcReport:
    """Garbage-collect one registry; a real run is in the audit log, before and after."""
    with _client(config, env) as client:
        if dry_run:
            return run_gc(config, client, dry_run=True)
        action = _gc_action(config)
        try:
            entry = audit.record_attempt(config.url, action)
        except StateError as exc:
            raise StateError(f"garbage collection not attempted: audit log: {exc}") from exc
        try:
            report = run_gc(config, client, dry_run=False)
        except BaseException as exc:
            audit.record_outcome(entry, Result.FAILED, str(exc) or type(exc).__name__)
            raise
        freed = report.freed_bytes_measured
        detail = f"{len(report.blobs)} blobs deleted" + (
            f", {format_size(freed)} freed (measured)" if freed is not None else ""
        )
        audit.record_outcome(entry, Result.REMOVED, detail)
        return report


def _gc_action(config: RegistryConfig) -> Action:
    return Action(
        kind=Kind.REGISTRY_GC,
        id="registry-garbage-collect",
        name=config.label,
        reason="blobs no manifest references (registry read-only while collected)",
        bytes=0,
        precondition="the registry refuses pushes (read-only) while it runs",
        fingerprint="",
    )


def _client(config: RegistryConfig, env: Mapping[str, str]) -> RegistryClient:
    """A client with the registry's own deadline (`timeout`), else the default one."""
    if config.timeout is None:
        return RegistryClient(config, env=env)
    return RegistryClient(config, env=env, timeout=config.timeout)
