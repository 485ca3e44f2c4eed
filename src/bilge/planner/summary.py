"""What fills the disk, by kind of object: the numbers behind `bilge status`.

Pure functions over a `Snapshot` (and optionally the `Plan` made from it);
the terminal and JSON reports both render these same figures.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import NamedTuple

from bilge.model import Image, Kind, Plan, Snapshot

#: Row names of `usage_by_kind`, in display order.
IMAGES = "images"
CONTAINERS = "containers"
LOGS = "logs"
VOLUMES = "volumes"
BUILD_CACHE = "build cache"

# Networks take no disk space, so they have no row; their actions are ignored here.
_ROW_OF_KIND = {
    Kind.IMAGE: IMAGES,
    Kind.CONTAINER: CONTAINERS,
    Kind.VOLUME: VOLUMES,
    Kind.BUILD_CACHE: BUILD_CACHE,
    Kind.LOG: LOGS,
}


@dataclass(frozen=True)
class KindUsage:
    """Disk usage of one kind of object and how much of it the plan would free."""

    kind: str
    count: int
    bytes: int
    reclaimable_bytes: int
    reclaimable_count: int


class SizedObject(NamedTuple):
    """One object and the bytes it occupies, for "largest objects" lists."""

    kind: str
    name: str
    bytes: int


def usage_by_kind(snapshot: Snapshot, plan: Plan | None) -> tuple[KindUsage, ...]:
    """Usage rows: images, containers, logs, volumes, build cache (in that order).

    Images count each layer once however many images share it, so the row is
    what the images really occupy. Container rows are writable layers only, but
    their reclaimable figures include the logs of the containers removed: a
    container action's bytes cover its writable layer and its log together.
    The logs row shows what truncating the logs of containers that stay frees.
    """
    reclaim = _reclaimable(plan)
    rows = (
        (IMAGES, len(snapshot.images), image_bytes(snapshot)),
        (CONTAINERS, len(snapshot.containers), sum(c.size_rw for c in snapshot.containers)),
        (LOGS, sum(1 for c in snapshot.containers if c.log_bytes), _log_bytes(snapshot)),
        (VOLUMES, len(snapshot.volumes), sum(v.contents.bytes or 0 for v in snapshot.volumes)),
        # Shared records are image layers, counted under images already (as docker does).
        (
            BUILD_CACHE,
            len(snapshot.build_cache),
            sum(b.size for b in snapshot.build_cache if not b.shared),
        ),
    )
    return tuple(
        KindUsage(name, count, size, *reclaim.get(name, (0, 0))) for name, count, size in rows
    )


def image_bytes(snapshot: Snapshot) -> int:
    """Bytes all images occupy, each distinct layer counted once.

    Layer sizes come from `snapshot.layers`. An image none of whose layers has
    a known size (the data-root is not readable from here) counts the engine's
    `size` for it instead, which may count layers it shares more than once:
    better too much than a row of zeros.
    """
    known = {layer for image in snapshot.images for layer in image.layers} & set(snapshot.layers)
    total = sum(snapshot.layers[layer] for layer in known)
    return total + sum(i.size for i in snapshot.images if not known.intersection(i.layers))


def largest(snapshot: Snapshot, n: int = 5) -> tuple[SizedObject, ...]:
    """The `n` largest objects of any kind, largest first.

    A container's writable layer and its log file are listed separately
    (kinds "container" and "log"): a runaway log is worth seeing on its own.
    """
    ranked = sorted(_sized_objects(snapshot), key=lambda o: (-o.bytes, o.kind, o.name))
    return tuple(ranked[:n])


def image_name(image: Image) -> str:
    """The first tag, or a short id for a dangling image."""
    if image.tags:
        return image.tags[0]
    return image.id.removeprefix("sha256:")[:12]


def _sized_objects(snapshot: Snapshot) -> Iterator[SizedObject]:
    for image in snapshot.images:
        size = image.size or sum(snapshot.layers.get(layer, 0) for layer in image.layers)
        yield SizedObject("image", image_name(image), size)
    for c in snapshot.containers:
        yield SizedObject("container", c.name, c.size_rw)
        if c.log_bytes:
            yield SizedObject("log", c.name, c.log_bytes)
    for v in snapshot.volumes:
        yield SizedObject("volume", v.name, v.contents.bytes or 0)
    for b in snapshot.build_cache:
        if not b.shared:
            yield SizedObject("build cache", b.description or b.id, b.size)


def _log_bytes(snapshot: Snapshot) -> int:
    return sum(c.log_bytes for c in snapshot.containers)


def _reclaimable(plan: Plan | None) -> dict[str, tuple[int, int]]:
    """Row name -> (bytes, count) the plan's actions would free."""
    out: dict[str, tuple[int, int]] = {}
    for action in plan.actions if plan else ():
        row = _ROW_OF_KIND.get(action.kind)
        if row is not None:
            size, count = out.get(row, (0, 0))
            out[row] = (size + action.bytes, count + 1)
    return out
