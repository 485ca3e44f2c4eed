"""What the guard removes when the disk crosses its high watermark: cheapest first.

A pure function of the plan the policy makes (so every safety rule and grace
period holds), the snapshot and the filesystem. From the plan's actions it
takes, in order of what is cheapest to lose, just enough to bring the disk
down to the low watermark (bytes or inodes):

  1. build cache beyond keep_storage (rebuilt on the next build), orphaned layers
  2. dangling images (nothing can run them by name)
  3. exited containers past their grace, with their anonymous volumes
  4. logs over [logs] max_size
  5. unreferenced anonymous volumes past their grace
  6. unused images, least recently used first (ties: first seen earliest)

and stops as soon as the predicted bytes (or inodes) freed reach the target.
The actions keep the plan's order, which apply relies on (containers before
their volumes, child images before parents).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from bilge.model import Action, Filesystem, Kind, Plan, Snapshot


@dataclass(frozen=True)
class Target:
    """How much must go: bytes and inodes above the low watermarks (0: nothing)."""

    bytes: int
    inodes: int

    @property
    def reached(self) -> bool:
        return self.bytes <= 0 and self.inodes <= 0


def target(fs: Filesystem, low: float, inodes_low: float) -> Target:
    """What brings `fs` down to the low watermarks."""
    need_bytes = fs.used_bytes - int(low * fs.total_bytes)
    need_inodes = fs.used_inodes - int(inodes_low * fs.total_inodes) if fs.total_inodes else 0
    return Target(max(need_bytes, 0), max(need_inodes, 0))


def above(fs: Filesystem, high: float, inodes_high: float) -> bool:
    """Whether `fs` is at or above either high watermark."""
    return fs.bytes_ratio >= high or (fs.total_inodes > 0 and fs.inodes_ratio >= inodes_high)


def select(plan: Plan, snapshot: Snapshot, goal: Target) -> tuple[Action, ...]:
    """The cheapest actions of `plan` that reach `goal`, in the plan's order."""
    inodes = _inodes(snapshot)
    volumes = {a.id: a for a in plan.actions if a.kind is Kind.VOLUME}
    chosen: dict[tuple[Kind, str], Action] = {}
    freed_bytes = freed_inodes = 0
    for action in _cheapest_first(plan.actions, snapshot):
        if freed_bytes >= goal.bytes and freed_inodes >= goal.inodes:
            break
        # A container takes its anonymous volumes along: they go as one.
        for a in (action, *(volumes[v] for v in action.volumes if v in volumes)):
            if (a.kind, a.id) not in chosen:
                chosen[(a.kind, a.id)] = a
                freed_bytes += a.bytes
                freed_inodes += inodes.get((a.kind, a.id), 0)
    return tuple(a for a in plan.actions if (a.kind, a.id) in chosen)


def _cheapest_first(actions: Iterable[Action], snapshot: Snapshot) -> list[Action]:
    images = {i.id: i for i in snapshot.images}
    never = datetime.max.replace(tzinfo=None)

    def cost(a: Action) -> tuple[int, datetime, datetime, str]:
        if a.kind is Kind.IMAGE and a.tags:
            image = images.get(a.id)
            if image is not None:
                used = (image.last_used or image.created).replace(tzinfo=None)
                seen = (image.first_seen or image.created).replace(tzinfo=None)
                return 6, used, seen, a.id
        return _TIER.get((a.kind, bool(a.tags)), 7), never, never, a.id

    movable = [a for a in actions if a.kind is not Kind.NETWORK]  # networks free nothing
    return sorted(movable, key=cost)


_TIER = {
    (Kind.BUILD_CACHE, False): 1,
    (Kind.ORPHAN, False): 1,
    (Kind.IMAGE, False): 2,
    (Kind.CONTAINER, False): 3,
    (Kind.LOG, False): 4,
    (Kind.VOLUME, False): 5,
}


def _inodes(snapshot: Snapshot) -> dict[tuple[Kind, str], int]:
    """Inodes each removal gives back, where known (images and cache: not known)."""
    out: dict[tuple[Kind, str], int] = {}
    for c in snapshot.containers:
        out[(Kind.CONTAINER, c.id)] = c.inodes
    for v in snapshot.volumes:
        out[(Kind.VOLUME, v.name)] = v.contents.inodes or 0
    return out
