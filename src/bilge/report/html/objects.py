"""What fills the data-root, object by object, and what the plan does with each.

The treemap and the tables of the report are drawn from these `Item`s. Each
object of the snapshot is one item with the bytes it occupies on the disk and
the plan's verdict on it; the bytes add up to what the disk really holds:

- images count each layer once, as the planner does: a removed image has the
  bytes its action frees (the planner's figure), a kept image the layers only
  it holds, and the layers several kept images share are one item of their own;
- a container is its writable layer, its log file a separate item (a runaway
  log is worth seeing on its own);
- "outside Docker" is what the filesystem uses beyond the engine's objects.

Every action and every kept entry of the plan ends up in one item, so that
the tables list the whole plan. Pure functions of the snapshot and the plan.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from enum import IntEnum

from bilge.engine.base import engine_name
from bilge.model import Action, Image, Kept, Kind, Plan, Snapshot
from bilge.planner.summary import image_name


class Verdict(IntEnum):
    """What the policy does with an object; the values are the report's JSON codes."""

    REMOVE = 0  # an action of the plan (a log: truncated)
    KEEP = 1  # kept, and the plan says why
    PROTECT = 2  # kept because it holds (or guards) a database's data
    ALONG = 3  # goes with a removed object (a removed container's log)
    UNPLANNED = 4  # not something the plan decides on (outside Docker, shared layers)


#: The treemap's first level, in display order: (group, what it holds).
GROUPS = (
    ("images", "image layers, each counted once"),
    ("containers", "writable layers"),
    ("container logs", "log files"),
    ("volumes", "volume contents"),
    ("build cache", "BuildKit records not shared with images"),
    ("orphaned layers", "layer directories nothing references"),
    ("outside the engine", "used by other files on this filesystem"),
)

SHARED = "shared-layers"
OUTSIDE = "outside-docker"


@dataclass(frozen=True)
class Item:
    """One box of the treemap (when `group` is not None) and one row of a table
    (when the plan decides on it). `plan_bytes` is the plan's figure when it
    differs from the disk's (a container's action frees its log too)."""

    kind: str
    name: str
    bytes: int
    verdict: Verdict
    reason: str
    group: int | None
    plan_bytes: int | None = None
    labels: Mapping[str, str] = field(default_factory=dict)


def items(snapshot: Snapshot, plan: Plan) -> list[Item]:
    """Every object with its bytes and verdict; the plan's entries on objects the
    disk holds nothing of (networks) come last, without a group."""
    entries = _Entries(plan)
    found = [
        *_images(snapshot, entries),
        *_containers(snapshot, entries),
        *_logs(snapshot, entries),
        *_volumes(snapshot, entries),
        *_build_cache(snapshot, entries),
        *_orphans(snapshot, entries),
    ]
    found += list(entries.rest(snapshot))
    outside = outside_bytes(snapshot, found)
    if outside:
        why = "used by files that are not the engine's objects (the system, other programs)"
        name = f"outside {engine_name(snapshot.engine.kind)}"
        found.append(Item(OUTSIDE, name, outside, Verdict.UNPLANNED, why, 6))
    return found


def outside_bytes(snapshot: Snapshot, found: list[Item]) -> int:
    """What the filesystem uses beyond the engine's objects (0 when not measured)."""
    fs = snapshot.filesystem
    if fs is None:
        return 0
    return max(0, fs.used_bytes - sum(i.bytes for i in found if i.group is not None))


class _Entries:
    """The plan's actions and kept entries by (kind, id), each handed out once."""

    def __init__(self, plan: Plan) -> None:
        self.actions: dict[tuple[Kind, str], Action] = {(a.kind, a.id): a for a in plan.actions}
        self.kept: dict[tuple[Kind, str], Kept] = {(k.kind, k.id): k for k in plan.kept}
        #: What the plan removes, which stays known once its entries are taken.
        self.removed = set(self.actions)

    def take(self, kind: Kind, ident: str) -> Action | Kept | None:
        key = (kind, ident)
        return self.actions.pop(key, None) or self.kept.pop(key, None)

    def rest(self, snapshot: Snapshot) -> Iterator[Item]:
        """Entries no object of the disk took: networks, and any the snapshot lacks."""
        labels = {n.id: n.labels for n in snapshot.networks}
        for a in self.actions.values():
            yield Item(a.kind.value, a.name, a.bytes, Verdict.REMOVE, a.reason, None,
                       labels=labels.get(a.id, {}))  # fmt: skip
        for k in self.kept.values():
            yield Item(k.kind.value, k.name, k.bytes, Verdict.KEEP, k.reason, None,
                       labels=labels.get(k.id, {}))  # fmt: skip


def _judged(
    entries: _Entries, kind: Kind, ident: str, *, protect: bool = False
) -> tuple[Verdict, str, int | None]:
    """The verdict, reason and plan bytes of an object."""
    entry = entries.take(kind, ident)
    if isinstance(entry, Action):
        return Verdict.REMOVE, entry.reason, entry.bytes
    if isinstance(entry, Kept):
        protected = protect or "database" in entry.reason
        return (Verdict.PROTECT if protected else Verdict.KEEP), entry.reason, entry.bytes
    return Verdict.UNPLANNED, "not planned", None


def _item(
    kind: Kind,
    name: str,
    size: int,
    judged: tuple[Verdict, str, int | None],
    group: int,
    *,
    labels: Mapping[str, str] | None = None,
) -> Item:
    verdict, reason, plan_bytes = judged
    shown = None if plan_bytes is None or plan_bytes == size else plan_bytes
    return Item(kind.value, name, size, verdict, reason, group, shown, labels or {})


def _images(snapshot: Snapshot, entries: _Entries) -> Iterator[Item]:
    sizes = snapshot.layers
    removed = {a.id: a.bytes for a in entries.actions.values() if a.kind is Kind.IMAGE}
    # Layers of kept images, by holder: one holder's are its own, several's are shared.
    holders: dict[str, list[Image]] = defaultdict(list)
    for image in snapshot.images:
        if image.id not in removed:
            for layer in dict.fromkeys(image.layers):
                holders[layer].append(image)
    for image in snapshot.images:
        known = [layer for layer in dict.fromkeys(image.layers) if layer in sizes]
        if not known:  # layer sizes unknown (a remote engine): the engine's figure
            size = image.size
        elif image.id in removed:
            size = removed[image.id]
        else:
            size = sum(sizes[layer] for layer in known if len(holders[layer]) == 1)
        judged = _judged(entries, Kind.IMAGE, image.id)
        yield _item(Kind.IMAGE, image_name(image), size, judged, 0, labels=image.labels)
    shared = {layer: hs for layer, hs in holders.items() if len(hs) > 1 and layer in sizes}
    if shared:
        users = sorted({image_name(i) for hs in shared.values() for i in hs})
        why = f"layers shared by {len(users)} kept images: {', '.join(users[:5])}"
        why += ", …" if len(users) > 5 else ""
        total = sum(sizes[layer] for layer in shared)
        yield Item(SHARED, "shared layers", total, Verdict.KEEP, why, 0)


def _containers(snapshot: Snapshot, entries: _Entries) -> Iterator[Item]:
    for c in snapshot.containers:
        judged = _judged(entries, Kind.CONTAINER, c.id)
        yield _item(Kind.CONTAINER, c.name, c.size_rw, judged, 1, labels=c.labels)


def _logs(snapshot: Snapshot, entries: _Entries) -> Iterator[Item]:
    for c in snapshot.containers:
        if not c.log_bytes and (Kind.LOG, c.id) not in entries.actions:
            continue
        judged = _judged(entries, Kind.LOG, c.id)
        if judged[0] is Verdict.UNPLANNED:
            gone = (Kind.CONTAINER, c.id) in entries.removed
            why = "removed with its container" if gone else "log of a container that stays"
            judged = (Verdict.ALONG if gone else Verdict.UNPLANNED, why, None)
        yield _item(Kind.LOG, c.name, c.log_bytes, judged, 2)


def _volumes(snapshot: Snapshot, entries: _Entries) -> Iterator[Item]:
    for v in snapshot.volumes:
        judged = _judged(entries, Kind.VOLUME, v.name, protect=bool(v.contents.data_markers))
        if judged[0] is Verdict.KEEP and v.contents.holds_data:
            judged = (Verdict.PROTECT, *judged[1:])
        yield _item(Kind.VOLUME, v.name, v.contents.bytes or 0, judged, 3, labels=v.labels)


def _build_cache(snapshot: Snapshot, entries: _Entries) -> Iterator[Item]:
    for b in snapshot.build_cache:
        judged = _judged(entries, Kind.BUILD_CACHE, b.id)
        if not b.shared:  # shared records are image layers, counted there
            yield _item(Kind.BUILD_CACHE, b.description or b.id[:12], b.size, judged, 4)
        elif judged[0] is not Verdict.UNPLANNED:
            yield Item(Kind.BUILD_CACHE.value, b.description or b.id[:12], 0, judged[0],
                       judged[1], None, judged[2])  # fmt: skip


def _orphans(snapshot: Snapshot, entries: _Entries) -> Iterator[Item]:
    for o in snapshot.orphans:
        yield _item(Kind.ORPHAN, o.name[:16], o.bytes, _judged(entries, Kind.ORPHAN, o.name), 5)
