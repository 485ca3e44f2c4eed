"""Decides what to remove from a host, and why: `plan(snapshot, policy, now)`.

The planner is pure: it reads only its arguments (never the clock, the engine
or the disk), so the same snapshot, policy and `now` always give the same plan,
and every rule can be tested as a table.

This module is the order of the kinds and the shape of the plan; each kind's
rules live in a module of its own (containers, volumes, images, networks,
build_cache, and reclaim for logs and orphaned layers), on the shared pieces of
`decision`.

Kinds are decided in dependency order. Containers come first, because which
containers go decides what else is still in use: a volume, image or network
used only by containers this plan removes is no longer in use once apply has
removed them (apply removes kinds in the same order, and re-checks each
action's precondition just before deleting). Then volumes, images (with their
parents), networks, and the build cache, which depends on nothing else.

The safety rules of docs/architecture.md hold whatever the policy says: they
are checked before any age or size rule can propose a removal.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import replace
from datetime import datetime

from bilge.config.policy import Policy
from bilge.model import Action, Kept, Kind, Plan, Snapshot
from bilge.planner import build_cache, containers, images, networks, volumes
from bilge.planner.decision import Decision, Subject
from bilge.planner.reclaim import LOG_PRECONDITION, ORPHAN_PRECONDITION
from bilge.planner.reclaim import logs as plan_logs
from bilge.planner.reclaim import orphans as plan_orphans

#: What apply re-checks just before each deletion, in words for the plan's reader.
PRECONDITIONS: Mapping[Kind, str] = {
    Kind.CONTAINER: "not running and unchanged since the plan",
    Kind.VOLUME: "no container mounts it",
    Kind.IMAGE: "no container uses it and its tags are unchanged",
    Kind.NETWORK: "no endpoints",
    Kind.BUILD_CACHE: "not in use",
    Kind.LOG: LOG_PRECONDITION,
    Kind.ORPHAN: ORPHAN_PRECONDITION,
}


def plan(snapshot: Snapshot, policy: Policy, now: datetime) -> Plan:
    """Plan the removals `policy` allows on `snapshot` at time `now`.

    Every container, volume, image, network and build-cache record of the
    snapshot ends up exactly once in the plan: as an `Action` (removed) or as a
    `Kept` with the reason it stays. Actions are ordered by kind, in the order
    apply removes them, then by id (images and build cache: children first).
    """
    with _cycle_collector_paused():
        return _plan(snapshot, policy, now)


@contextmanager
def _cycle_collector_paused() -> Iterator[None]:
    """Planning makes no reference cycles, only a plan as large as the snapshot. The
    cycle collector would walk both again and again as the plan grows: on large
    hosts that was a third of the time, and made planning grow faster than the
    host. Reference counting still frees everything; the collector resumes after,
    unless it was off already (another planning thread then resumes it)."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _plan(snapshot: Snapshot, policy: Policy, now: datetime) -> Plan:
    decisions = containers.decide_each(snapshot, policy, now)
    removed = frozenset(cid for cid, d in decisions.items() if d.remove)
    survivors = tuple(c for c in snapshot.containers if c.id not in removed)
    decided = [
        *containers.decided(snapshot.containers, decisions),
        *volumes.decided(snapshot, policy, now, removed),
        *images.decided(snapshot, policy, now, survivors),
        *networks.decided(snapshot.networks, policy, now, survivors),
        *build_cache.decided(snapshot.build_cache, policy.build_cache, now),
    ]
    actions = _with_volumes(tuple(_action(s, d) for s, d in decided if d.remove), snapshot)
    kept = tuple(Kept(s.kind, s.id, s.name, d.reason, s.bytes) for s, d in decided if not d.remove)
    log_actions, log_kept = plan_logs(survivors, policy)
    orphan_actions, orphan_kept = plan_orphans(snapshot.orphans, policy, now)
    return Plan(
        created_at=now,
        host=snapshot.engine.host,
        actions=(*actions, *log_actions, *orphan_actions),
        kept=(*kept, *log_kept, *orphan_kept),
    )


def _with_volumes(actions: tuple[Action, ...], snapshot: Snapshot) -> tuple[Action, ...]:
    """Let a container take its anonymous volumes along when all of them go too.

    The engine's `v=true` removes exactly the volumes it created for the
    container; only when every one of them is itself an action may it do so.
    """
    anonymous = {v.name for v in snapshot.volumes if v.anonymous}
    planned = {a.id for a in actions if a.kind is Kind.VOLUME}
    mounts = {c.id: [n for n in c.volume_names if n in anonymous] for c in snapshot.containers}
    out = []
    for action in actions:
        own = mounts.get(action.id, []) if action.kind is Kind.CONTAINER else []
        if own and all(name in planned for name in own):
            out.append(replace(action, volumes=tuple(sorted(own))))
        else:
            out.append(action)
    return tuple(out)


def _action(subject: Subject, decision: Decision) -> Action:
    return Action(
        kind=subject.kind,
        id=subject.id,
        name=subject.name,
        reason=decision.reason,
        bytes=subject.bytes,
        precondition=PRECONDITIONS[subject.kind],
        fingerprint=subject.of.fingerprint(),
        tags=subject.tags,
    )
