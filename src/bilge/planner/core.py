"""Decides what to remove from a host, and why: `plan(snapshot, policy, now)`.

The planner is pure: it reads only its arguments (never the clock, the engine
or the disk), so the same snapshot, policy and `now` always give the same plan,
and every rule can be tested as a table.

Kinds are decided in dependency order. Containers come first, because which
containers go decides what else is still in use: a volume, image or network
used only by containers this plan removes is no longer in use once apply has
removed them (apply removes kinds in the same order, and re-checks each
action's precondition just before deleting). Then volumes, images (with their
parents), networks, and the build cache, which depends on nothing else.

The safety rules of DESIGN.md hold whatever the policy says: they are checked
before any age or size rule can propose a removal.
"""

from __future__ import annotations

import gc
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from fnmatch import fnmatchcase
from typing import Protocol, TypeVar

from bilge.config.policy import BuildCachePolicy, ImagesPolicy, Policy, VolumesPolicy
from bilge.config.units import duration_text, format_duration, size_text
from bilge.model import (
    Action,
    BuildCacheRecord,
    Container,
    Image,
    Kept,
    Kind,
    Network,
    Plan,
    Snapshot,
    Volume,
)
from bilge.planner.reclaim import LOG_PRECONDITION, ORPHAN_PRECONDITION
from bilge.planner.reclaim import logs as plan_logs
from bilge.planner.reclaim import orphans as plan_orphans

T = TypeVar("T")

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


@dataclass(frozen=True)
class _Decision:
    remove: bool
    reason: str


def _keep(reason: str) -> _Decision:
    return _Decision(remove=False, reason=reason)


def _remove(reason: str) -> _Decision:
    return _Decision(remove=True, reason=reason)


class _Fingerprinted(Protocol):
    def fingerprint(self) -> str: ...


@dataclass(frozen=True)
class _Subject:
    """What an Action or a Kept says about an object, whatever its kind."""

    kind: Kind
    id: str
    name: str
    bytes: int
    #: Asked for its fingerprint only if it is removed: a kept object needs none.
    of: _Fingerprinted
    tags: tuple[str, ...] = ()


_Decided = list[tuple[_Subject, _Decision]]


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
    volumes = {v.name: v for v in snapshot.volumes}
    decisions = {c.id: _decide_container(c, volumes, policy, now) for c in snapshot.containers}
    removed = frozenset(cid for cid, d in decisions.items() if d.remove)
    survivors = tuple(c for c in snapshot.containers if c.id not in removed)
    decided = [
        *_containers(snapshot.containers, decisions),
        *_volumes(snapshot, policy, now, removed),
        *_images(snapshot, policy, now, survivors),
        *_networks(snapshot.networks, policy, now, survivors),
        *_build_cache(snapshot.build_cache, policy.build_cache, now),
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


def _action(subject: _Subject, decision: _Decision) -> Action:
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


# --- containers -------------------------------------------------------------


def _containers(containers: Iterable[Container], decisions: Mapping[str, _Decision]) -> _Decided:
    return [
        (
            _Subject(Kind.CONTAINER, c.id, c.name, c.size_rw + c.log_bytes, c),
            decisions[c.id],
        )
        for c in sorted(containers, key=lambda c: c.id)
    ]


def _decide_container(
    c: Container, volumes: Mapping[str, Volume], policy: Policy, now: datetime
) -> _Decision:
    decision = _container_rule(c, policy, now)
    if not decision.remove:
        return decision
    # Rule 4: removing the container would orphan its anonymous volume, and the
    # volume is the only copy of a database's data; keep both.
    for name in sorted(c.volume_names):
        volume = volumes.get(name)
        if volume is not None and volume.anonymous and volume.contents.holds_data:
            return _keep(
                f"owns anonymous volume {name[:12]} holding database data ({_data_of(volume)})"
            )
    return decision


def _container_rule(c: Container, policy: Policy, now: datetime) -> _Decision:
    if c.active:
        return _keep(f"in use ({c.state})")
    protected = _protected(
        c.labels,
        (c.name,),
        policy.keep_label,
        policy.containers.keep_names,
        "containers.keep_names",
    )
    if protected:
        return _keep(protected)
    limits = policy.containers
    if c.state in ("exited", "dead"):
        age = now - (c.finished or c.created)
        stopped = "exited" if c.state == "exited" else "dead, stopped"
        what = f"{stopped} {_ago(age)}" if c.finished else f"{c.state}, created {_ago(age)}"
        return _by_age(what, age, limits.exited_after, "exited_after")
    if c.state == "created":
        age = now - c.created
        what = f"created {_ago(age)}, never started"
        return _by_age(what, age, limits.created_after, "created_after")
    return _keep(f"state {c.state!r} is neither exited nor created")


# --- volumes ----------------------------------------------------------------


def _volumes(
    snapshot: Snapshot, policy: Policy, now: datetime, removed: frozenset[str]
) -> _Decided:
    mounters: dict[str, list[Container]] = defaultdict(list)
    for c in snapshot.containers:
        for name in set(c.volume_names):
            mounters[name].append(c)
    decided: _Decided = []
    for v in sorted(snapshot.volumes, key=lambda v: v.name):
        users = mounters.get(v.name, [])
        live = [c.name for c in users if c.id not in removed]
        gone = [c.name for c in users if c.id in removed]
        subject = _Subject(Kind.VOLUME, v.name, v.name, v.contents.bytes or 0, v)
        decided.append((subject, _decide_volume(v, live, gone, policy, now)))
    return decided


def _decide_volume(
    v: Volume, live: Sequence[str], gone: Sequence[str], policy: Policy, now: datetime
) -> _Decision:
    if live:
        # Say what is in it too: "why is this still here" then answers "a database".
        data = f"; {_holds_data(v)}" if v.contents.data_markers else ""
        return _keep(f"in use by container {_names(live)}{data}")
    limits = policy.volumes
    protected = _protected(
        v.labels, (v.name,), policy.keep_label, limits.keep_names, "volumes.keep_names"
    )
    if protected:
        return _keep(protected)
    if v.anonymous:
        return _anonymous_volume(v, gone, limits, now)
    return _named_volume(v, gone, limits, now)


def _anonymous_volume(
    v: Volume, gone: Sequence[str], limits: VolumesPolicy, now: datetime
) -> _Decision:
    # Rule 4 holds whatever protect_data says: nobody chose to keep this data
    # under a name, so it is the easiest to lose by accident.
    if v.contents.holds_data:
        return _keep(_holds_data(v))
    if gone:
        return _remove(f"anonymous volume of removed container {_names(gone)}")
    return _by_creation(v, "unreferenced anonymous volume", limits.anonymous_after, now)


def _named_volume(
    v: Volume, gone: Sequence[str], limits: VolumesPolicy, now: datetime
) -> _Decision:
    if not limits.named:
        # A plan under this policy may leave named volumes unread (cli.py): say so
        # rather than show them as empty.
        unseen = "; size not measured" if v.contents.bytes is None else ""
        return _keep(f"named volume (volumes.named = false){unseen}")
    if limits.protect_data and v.contents.holds_data:
        return _keep(_holds_data(v))
    what = f"named volume of removed container {_names(gone)}" if gone else "unused named volume"
    return _by_creation(v, what, limits.named_after, now)


def _by_creation(v: Volume, what: str, limit: timedelta, now: datetime) -> _Decision:
    setting = "anonymous_after" if v.anonymous else "named_after"
    if v.created is None:
        return _keep(f"{what}, creation time unknown ({setting} {_limit(limit)})")
    age = now - v.created
    return _by_age(f"{what}, created {_ago(age)}", age, limit, setting)


def _data_of(v: Volume) -> str:
    if v.contents.data_markers:
        return ", ".join(v.contents.data_markers)
    if v.contents.unseen:
        return f"could not read all of it ({v.contents.unseen})"
    return "contents not visible"


def _holds_data(v: Volume) -> str:
    # Without markers bilge did not see the data, only that it cannot rule it out.
    holds = "holds" if v.contents.data_markers else "may hold"
    return f"{holds} database data: {_data_of(v)}"


# --- images -----------------------------------------------------------------


def _images(
    snapshot: Snapshot, policy: Policy, now: datetime, survivors: Sequence[Container]
) -> _Decided:
    # Children before parents: the engine refuses to remove an image (or BuildKit
    # a cache record) that another one still builds on.
    images = _children_first(snapshot.images, lambda i: i.id, lambda i: i.parent_id)
    users = _users(survivors, lambda c: (c.image_id,))
    recent = _newest_per_repository(images, policy.images.keep_recent)
    decisions = {
        i.id: _decide_image(i, users.get(i.id, []), recent.get(i.id, ""), policy, now)
        for i in images
    }
    _keep_parents(images, decisions)
    freed = _freed_bytes(images, decisions, snapshot.layers)
    return [
        (
            _Subject(Kind.IMAGE, i.id, _image_name(i), freed.get(i.id, i.size), i, i.tags),
            decisions[i.id],
        )
        for i in images
    ]


def _decide_image(
    i: Image, users: Sequence[str], recent_in: str, policy: Policy, now: datetime
) -> _Decision:
    if users:
        return _keep(f"in use by container {_names(users)}")
    limits = policy.images
    protected = _protected(i.labels, i.tags, policy.keep_label, limits.keep, "images.keep")
    if protected:
        return _keep(protected)
    if i.dangling:
        age = now - i.created
        what = f"dangling image, created {_ago(age)}"
        return _by_age(what, age, limits.dangling_after, "dangling_after")
    if recent_in:
        return _keep(f"newest {limits.keep_recent} of {recent_in}")
    return _unused_image(i, limits, now)


def _unused_image(i: Image, limits: ImagesPolicy, now: datetime) -> _Decision:
    # Last use (from engine events) says more than creation: an old base image
    # pulled long ago may have been run an hour ago.
    age = now - (i.last_used or i.created)
    rule = f"(unused_after {_limit(limits.unused_after)})"
    if age >= limits.unused_after:
        return _remove(f"unused for {format_duration(age)} {rule}")
    seen = "last used" if i.last_used else "created"
    return _keep(f"{seen} {_ago(age)}, too young {rule}")


def _newest_per_repository(images: Sequence[Image], count: int) -> dict[str, str]:
    """Image id -> the first repository (by name) in which it is among the newest `count`."""
    by_repository: dict[str, list[Image]] = defaultdict(list)
    for i in images:  # sorted by id, so that the stable sort below breaks ties by id
        for repository in i.repositories:
            by_repository[repository].append(i)
    newest: dict[str, str] = {}
    for repository in sorted(by_repository):
        ranked = sorted(by_repository[repository], key=lambda i: i.created, reverse=True)
        for i in ranked[:count]:
            newest.setdefault(i.id, repository)
    return newest


def _keep_parents(images: Sequence[Image], decisions: dict[str, _Decision]) -> None:
    """Keep every ancestor of a kept image: the engine refuses to remove them anyway."""
    children: dict[str, list[Image]] = defaultdict(list)
    for i in images:
        if i.parent_id:
            children[i.parent_id].append(i)
    changed = True
    while changed:  # until no removed image has a kept child: ancestors are transitive
        changed = False
        for i in images:
            kept_child = next((c for c in children[i.id] if not decisions[c.id].remove), None)
            if decisions[i.id].remove and kept_child is not None:
                decisions[i.id] = _keep(f"parent of kept image {_image_name(kept_child)}")
                changed = True


def _freed_bytes(
    images: Sequence[Image], decisions: Mapping[str, _Decision], sizes: Mapping[str, int]
) -> dict[str, int]:
    """Bytes each removed image frees: only layers no kept image has, each counted once.

    A layer shared by several removed images is attributed to the first of them
    in action order, so that the plan's total is what the disk really gains.
    """
    counted = {layer for i in images if not decisions[i.id].remove for layer in i.layers}
    freed: dict[str, int] = {}
    for i in images:
        if decisions[i.id].remove:
            own = [layer for layer in dict.fromkeys(i.layers) if layer not in counted]
            counted.update(own)
            freed[i.id] = sum(sizes.get(layer, 0) for layer in own)
    return freed


def _image_name(i: Image) -> str:
    return i.tags[0] if i.tags else i.id.removeprefix("sha256:")[:12]


# --- networks ---------------------------------------------------------------


def _networks(
    networks: Iterable[Network], policy: Policy, now: datetime, survivors: Sequence[Container]
) -> _Decided:
    # Containers name their networks by id; matching names too costs nothing and
    # keeps a network whose container was collected with names instead.
    users = _users(survivors, lambda c: c.networks)
    return [
        (
            _Subject(Kind.NETWORK, n.id, n.name, 0, n),
            _decide_network(n, [*users.get(n.id, []), *users.get(n.name, [])], policy, now),
        )
        for n in sorted(networks, key=lambda n: n.id)
    ]


def _decide_network(n: Network, users: Sequence[str], policy: Policy, now: datetime) -> _Decision:
    if n.builtin:
        return _keep("built-in network")
    if n.endpoints > 0:
        return _keep(f"in use ({n.endpoints} endpoint{'s' if n.endpoints > 1 else ''})")
    if users:
        return _keep(f"in use by container {_names(users)}")
    if policy.keep_label in n.labels:
        return _keep(f"labelled {policy.keep_label}")
    age = now - n.created
    what = f"unused network, created {_ago(age)}"
    return _by_age(what, age, policy.networks.unused_after, "unused_after")


# --- build cache ------------------------------------------------------------


def _build_cache(
    records: Iterable[BuildCacheRecord], limits: BuildCachePolicy, now: datetime
) -> _Decided:
    ordered = _children_first(records, lambda r: r.id, lambda r: r.parent)
    decisions = {r.id: _decide_cache_age(r, limits, now) for r in ordered}
    _enforce_keep_storage(ordered, decisions, limits.keep_storage, now)
    _keep_cache_parents(ordered, decisions)
    return [
        (
            _Subject(
                Kind.BUILD_CACHE,
                r.id,
                r.description or r.id[:12],
                _cache_bytes(r),
                r,
            ),
            decisions[r.id],
        )
        for r in ordered
    ]


def _cache_bytes(r: BuildCacheRecord) -> int:
    # A shared record's data is also an image's layer, counted with that image:
    # BuildKit prunes it only once the image is gone (apply removes images
    # first), and refuses while a kept image holds it: apply then skips it.
    return 0 if r.shared else r.size


def _keep_cache_parents(
    records: Sequence[BuildCacheRecord], decisions: dict[str, _Decision]
) -> None:
    """Keep every record a kept record builds on: BuildKit would not prune it."""
    by_id = {r.id: r for r in records}
    for record in records:
        child, parent = record, by_id.get(record.parent)
        while parent is not None and not decisions[child.id].remove and decisions[parent.id].remove:
            reason = f"a kept build cache record builds on it ({child.id[:12]})"
            decisions[parent.id] = _keep(reason)
            child, parent = parent, by_id.get(parent.parent)


def _decide_cache_age(r: BuildCacheRecord, limits: BuildCachePolicy, now: datetime) -> _Decision:
    if r.in_use:
        return _keep("in use")
    age = now - (r.last_used or r.created)
    rule = f"(unused_after {_limit(limits.unused_after)})"
    if age >= limits.unused_after:
        return _remove(f"build cache unused for {format_duration(age)} {rule}")
    storage = size_text(limits.keep_storage)
    return _keep(f"build cache used {_ago(age)} {rule}, total within keep_storage {storage}")


def _enforce_keep_storage(
    records: Sequence[BuildCacheRecord],
    decisions: dict[str, _Decision],
    keep_storage: int,
    now: datetime,
) -> None:
    """Remove least recently used records until what stays fits in `keep_storage`."""
    # Records in use count towards the total (they take the space) but cannot go.
    total = sum(_cache_bytes(r) for r in records if not decisions[r.id].remove)
    candidates = sorted(
        (r for r in records if not decisions[r.id].remove and not r.in_use),
        key=lambda r: (r.last_used or r.created, r.created, r.id),
    )
    for r in candidates:
        if total <= keep_storage:
            break
        age = _ago(now - (r.last_used or r.created))
        reason = f"build cache over keep_storage {size_text(keep_storage)}, oldest first"
        decisions[r.id] = _remove(f"{reason} (used {age})")
        total -= _cache_bytes(r)


# --- shared -----------------------------------------------------------------


def _children_first(
    items: Iterable[T], key: Callable[[T], str], parent: Callable[[T], str]
) -> list[T]:
    """Items ordered so that each comes before its parent; ties by id."""
    by_id = {key(i): i for i in items}
    depth: dict[str, int] = {}

    def depth_of(ident: str) -> int:
        if ident not in depth:
            depth[ident] = 0  # guards against a cycle in bad data
            up = parent(by_id[ident])
            depth[ident] = depth_of(up) + 1 if up in by_id else 0
        return depth[ident]

    return sorted(by_id.values(), key=lambda i: (-depth_of(key(i)), key(i)))


def _protected(
    labels: Mapping[str, str],
    names: Sequence[str],
    keep_label: str,
    patterns: Sequence[str],
    setting: str,
) -> str:
    """Why the user protected this object (label or name pattern), or ""."""
    if keep_label in labels:
        return f"labelled {keep_label}"
    for name in names:
        for pattern in patterns:
            if fnmatchcase(name, pattern):
                return f"{name} matches {setting} {pattern!r}"
    return ""


def _users(
    containers: Iterable[Container], refs: Callable[[Container], Iterable[str]]
) -> dict[str, list[str]]:
    """Object id -> names of the containers referring to it."""
    users: dict[str, list[str]] = defaultdict(list)
    for c in containers:
        for ref in dict.fromkeys(refs(c)):
            users[ref].append(c.name)
    return users


def _by_age(what: str, age: timedelta, limit: timedelta, setting: str) -> _Decision:
    """Remove once `age` reaches `limit`; `what` starts the reason, e.g. "exited 3d ago"."""
    rule = f"({setting} {_limit(limit)})"
    if age >= limit:
        return _remove(f"{what} {rule}")
    return _keep(f"{what}, too young {rule}")


def _names(names: Sequence[str]) -> str:
    first, *rest = sorted(set(names))
    return f"{first} and {len(rest)} more" if rest else first


def _ago(age: timedelta) -> str:
    # A creation time after `now` means the engine's clock and ours disagree.
    if age < timedelta(0):
        return "in the future (clock skew)"
    return f"{format_duration(age)} ago"


def _limit(limit: timedelta) -> str:
    """A policy duration as bilge.toml writes it ("1d", "1h30m")."""
    return duration_text(limit)
