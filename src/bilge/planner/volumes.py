"""Which volumes go: unused, unprotected, past their limit, and holding no database data.

A volume is in use while a container that stays mounts it; one mounted only by
containers this plan removes is free to go with them. Named volumes stay
unless the policy opts in (`volumes.named`), and then still stay while they
may hold a database's files (`volumes.protect_data`). An anonymous volume
holding database files always stays, whatever the policy: nobody chose to
keep that data under a name, so it is the easiest to lose by accident (rules
3 and 4 of docs/architecture.md).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from datetime import datetime, timedelta

from bilge.config.policy import Policy, VolumesPolicy
from bilge.model import Container, Kind, Snapshot, Volume
from bilge.planner.decision import (
    Decided,
    Decision,
    Subject,
    ago,
    by_age,
    keep,
    limit_text,
    names_text,
    protected,
    remove,
)


def decided(snapshot: Snapshot, policy: Policy, now: datetime, removed: frozenset[str]) -> Decided:
    """Every volume with its decision, by name; `removed` are the containers that go."""
    mounters: dict[str, list[Container]] = defaultdict(list)
    for c in snapshot.containers:
        for name in set(c.volume_names):
            mounters[name].append(c)
    out: Decided = []
    for v in sorted(snapshot.volumes, key=lambda v: v.name):
        users = mounters.get(v.name, [])
        live = [c.name for c in users if c.id not in removed]
        gone = [c.name for c in users if c.id in removed]
        subject = Subject(Kind.VOLUME, v.name, v.name, v.contents.bytes or 0, v)
        out.append((subject, _decide(v, live, gone, policy, now)))
    return out


def data_of(v: Volume) -> str:
    """What bilge saw of a volume's database files, for a reason."""
    if v.contents.data_markers:
        return ", ".join(v.contents.data_markers)
    if v.contents.unseen:
        return f"could not read all of it ({v.contents.unseen})"
    return "contents not visible"


def _decide(
    v: Volume, live: Sequence[str], gone: Sequence[str], policy: Policy, now: datetime
) -> Decision:
    if live:
        # Say what is in it too: "why is this still here" then answers "a database".
        data = f"; {_holds_data(v)}" if v.contents.data_markers else ""
        return keep(f"in use by container {names_text(live)}{data}")
    limits = policy.volumes
    why = protected(v.labels, (v.name,), policy.keep_label, limits.keep_names, "volumes.keep_names")
    if why:
        return keep(why)
    if v.anonymous:
        return _anonymous(v, gone, limits, now)
    return _named(v, gone, limits, now)


def _anonymous(v: Volume, gone: Sequence[str], limits: VolumesPolicy, now: datetime) -> Decision:
    # Rule 4 holds whatever protect_data says: nobody chose to keep this data
    # under a name, so it is the easiest to lose by accident.
    if v.contents.holds_data:
        return keep(_holds_data(v))
    if gone:
        return remove(f"anonymous volume of removed container {names_text(gone)}")
    return _by_creation(v, "unreferenced anonymous volume", limits.anonymous_after, now)


def _named(v: Volume, gone: Sequence[str], limits: VolumesPolicy, now: datetime) -> Decision:
    if not limits.named:
        # A plan under this policy may leave named volumes unread (skip_named in
        # collect/prefetch.py): say so rather than show them as empty.
        unseen = "; size not measured" if v.contents.bytes is None else ""
        return keep(f"named volume (volumes.named = false){unseen}")
    if limits.protect_data and v.contents.holds_data:
        return keep(_holds_data(v))
    what = "unused named volume"
    if gone:
        what = f"named volume of removed container {names_text(gone)}"
    return _by_creation(v, what, limits.named_after, now)


def _by_creation(v: Volume, what: str, limit: timedelta, now: datetime) -> Decision:
    setting = "anonymous_after" if v.anonymous else "named_after"
    if v.created is None:
        return keep(f"{what}, creation time unknown ({setting} {limit_text(limit)})")
    age = now - v.created
    return by_age(f"{what}, created {ago(age)}", age, limit, setting)


def _holds_data(v: Volume) -> str:
    # Without markers bilge did not see the data, only that it cannot rule it out.
    holds = "holds" if v.contents.data_markers else "may hold"
    return f"{holds} database data: {data_of(v)}"
