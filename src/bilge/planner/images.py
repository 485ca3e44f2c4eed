"""Which images go: unused by the containers that stay, unprotected, and old enough.

Dangling images go after `images.dangling_after`; tagged ones after
`images.unused_after` without use, unless they are among the newest
`images.keep_recent` of one of their repositories. Every parent of a kept
image stays too, since the engine refuses to remove it. The bytes an image
frees are its layers no kept image shares, each counted once, so the plan's
total is what the disk really gains.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from datetime import datetime

from bilge.config.policy import ImagesPolicy, Policy
from bilge.config.units import format_duration
from bilge.model import Container, Image, Kind, Snapshot
from bilge.planner.decision import (
    Decided,
    Decision,
    Subject,
    ago,
    by_age,
    children_first,
    keep,
    limit_text,
    names_text,
    protected,
    remove,
    users_of,
)


def decided(
    snapshot: Snapshot, policy: Policy, now: datetime, survivors: Sequence[Container]
) -> Decided:
    """Every image with its decision, children first; `survivors` are the containers that stay."""
    # Children before parents: the engine refuses to remove an image (or BuildKit
    # a cache record) that another one still builds on.
    images = children_first(snapshot.images, lambda i: i.id, lambda i: i.parent_id)
    users = users_of(survivors, lambda c: (c.image_id,))
    recent = _newest_per_repository(images, policy.images.keep_recent)
    decisions = {
        i.id: _decide(i, users.get(i.id, []), recent.get(i.id, ""), policy, now) for i in images
    }
    _keep_parents(images, decisions)
    freed = _freed_bytes(images, decisions, snapshot.layers)
    return [
        (
            Subject(Kind.IMAGE, i.id, _name(i), freed.get(i.id, i.size), i, i.tags),
            decisions[i.id],
        )
        for i in images
    ]


#: Registries that Podman writes into names where Docker leaves them out.
IMPLIED_PREFIXES = ("localhost/", "docker.io/library/", "docker.io/")


def spellings(tags: Sequence[str]) -> list[str]:
    """Each tag as the engine spells it and as people write it: Podman names a
    local build localhost/app:1 and a Docker Hub image docker.io/library/redis:7,
    which `keep = ["app:*", "redis:*"]` must match as on Docker (it only keeps more)."""
    out = []
    for tag in tags:
        out.append(tag)
        out += [tag.removeprefix(p) for p in IMPLIED_PREFIXES if tag.startswith(p)]
    return out


def _decide(
    i: Image, users: Sequence[str], recent_in: str, policy: Policy, now: datetime
) -> Decision:
    if users:
        return keep(f"in use by container {names_text(users)}")
    limits = policy.images
    why = protected(i.labels, spellings(i.tags), policy.keep_label, limits.keep, "images.keep")
    if why:
        return keep(why)
    if i.dangling:
        age = now - i.created
        what = f"dangling image, created {ago(age)}"
        return by_age(what, age, limits.dangling_after, "dangling_after")
    if recent_in:
        return keep(f"newest {limits.keep_recent} of {recent_in}")
    return _unused(i, limits, now)


def _unused(i: Image, limits: ImagesPolicy, now: datetime) -> Decision:
    # Last use (from engine events) says more than creation: an old base image
    # pulled long ago may have been run an hour ago.
    age = now - (i.last_used or i.created)
    rule = f"(unused_after {limit_text(limits.unused_after)})"
    if age >= limits.unused_after:
        return remove(f"unused for {format_duration(age)} {rule}")
    seen = "last used" if i.last_used else "created"
    return keep(f"{seen} {ago(age)}, too young {rule}")


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


def _keep_parents(images: Sequence[Image], decisions: dict[str, Decision]) -> None:
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
                decisions[i.id] = keep(f"parent of kept image {_name(kept_child)}")
                changed = True


def _freed_bytes(
    images: Sequence[Image], decisions: Mapping[str, Decision], sizes: Mapping[str, int]
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


def _name(i: Image) -> str:
    """An image as a reason names it: its first tag, or the start of its id."""
    return i.tags[0] if i.tags else i.id.removeprefix("sha256:")[:12]
