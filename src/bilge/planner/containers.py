"""Which containers go: stopped or never started past their limit, and unprotected.

Containers are decided before every other kind, because which of them go
decides what else is still in use (see `core`). A running, paused or
restarting container always stays. A container whose anonymous volume holds a
database's data stays too, with its volume: removing it would orphan the only
copy of that data (rule 4 of docs/architecture.md).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime

from bilge.config.policy import Policy
from bilge.model import Container, Kind, Snapshot, Volume
from bilge.planner.decision import (
    Decided,
    Decision,
    Subject,
    ago,
    by_age,
    keep,
    protected,
)
from bilge.planner.volumes import data_of


def decide_each(snapshot: Snapshot, policy: Policy, now: datetime) -> dict[str, Decision]:
    """Container id -> its decision, for the other kinds to see which containers stay."""
    volumes = {v.name: v for v in snapshot.volumes}
    return {c.id: _decide(c, volumes, policy, now) for c in snapshot.containers}


def decided(containers: Iterable[Container], decisions: Mapping[str, Decision]) -> Decided:
    """The containers with their decisions (from `decide_each`), by id."""
    return [
        (
            Subject(Kind.CONTAINER, c.id, c.name, c.size_rw + c.log_bytes, c),
            decisions[c.id],
        )
        for c in sorted(containers, key=lambda c: c.id)
    ]


def _decide(c: Container, volumes: Mapping[str, Volume], policy: Policy, now: datetime) -> Decision:
    decision = _rule(c, policy, now)
    if not decision.remove:
        return decision
    # Rule 4: removing the container would orphan its anonymous volume, and the
    # volume is the only copy of a database's data; keep both.
    for name in sorted(c.volume_names):
        volume = volumes.get(name)
        if volume is not None and volume.anonymous and volume.contents.holds_data:
            return keep(
                f"owns anonymous volume {name[:12]} holding database data ({data_of(volume)})"
            )
    return decision


def _rule(c: Container, policy: Policy, now: datetime) -> Decision:
    if c.active:
        return keep(f"in use ({c.state})")
    if c.infra_of:  # Podman refuses it: the pod is removed whole, or not at all
        return keep(f"the infra container of pod {c.infra_of}, which bilge does not remove")
    why = protected(
        c.labels,
        (c.name,),
        policy.keep_label,
        policy.containers.keep_names,
        "containers.keep_names",
    )
    if why:
        return keep(why)
    limits = policy.containers
    if c.state in ("exited", "dead"):
        age = now - (c.finished or c.created)
        stopped = "exited" if c.state == "exited" else "dead, stopped"
        what = f"{stopped} {ago(age)}" if c.finished else f"{c.state}, created {ago(age)}"
        return by_age(what, age, limits.exited_after, "exited_after")
    if c.state == "created":
        age = now - c.created
        what = f"created {ago(age)}, never started"
        return by_age(what, age, limits.created_after, "created_after")
    return keep(f"state {c.state!r} is neither exited nor created")
