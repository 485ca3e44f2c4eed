"""When each image was last used: Docker does not record it, so bilge does.

The guard follows the engine's events: a container created, started, stopped
or destroyed uses its image then; an image pulled, tagged, imported or loaded
is wanted then; a deleted image is forgotten. The state store keeps, per
image, when it was first seen and last used, across restarts of bilge.
`with_last_use` then gives plan and apply an LRU view: an image any existing
container uses is used now, and so are the parents of a used image.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime

from bilge.clock import SYSTEM_CLOCK, Clock
from bilge.model import Image, Snapshot

CONTAINER_USES = frozenset({"create", "start", "restart", "die", "stop", "kill", "destroy"})
IMAGE_WANTED = frozenset({"pull", "tag", "import", "load"})

#: image id -> (first seen, last used), as the state store returns it.
Times = Mapping[str, tuple[datetime, datetime | None]]


@dataclass(frozen=True)
class Use:
    """What one event says about an image (named by reference or id)."""

    image_ref: str
    at: datetime
    container_id: str = ""
    gone: bool = False


def interpret(event: Mapping[str, object], clock: Clock = SYSTEM_CLOCK) -> Use | None:
    """The image use an engine event stands for, if any; dated by the event's
    own time, or by `clock` when it carries none."""
    kind, action = event.get("Type"), str(event.get("Action") or "")
    actor = event.get("Actor")
    actor = actor if isinstance(actor, dict) else {}
    attributes = actor.get("Attributes")
    attributes = attributes if isinstance(attributes, dict) else {}
    at = _event_time(event, clock)
    if kind == "container" and action in CONTAINER_USES:
        ref = str(attributes.get("image") or event.get("from") or "")
        return Use(ref, at, container_id=str(actor.get("ID") or "")) if ref else None
    if kind == "image" and (action in IMAGE_WANTED or action == "delete"):
        ref = str(actor.get("ID") or "")
        return Use(ref, at, gone=action == "delete") if ref else None
    return None


def _event_time(event: Mapping[str, object], clock: Clock) -> datetime:
    nano = event.get("timeNano")
    if isinstance(nano, int):
        return datetime.fromtimestamp(nano / 1e9, UTC)
    seconds = event.get("time")
    if isinstance(seconds, int | float):
        return datetime.fromtimestamp(seconds, UTC)
    return clock.now()


def used_now(snapshot: Snapshot) -> frozenset[str]:
    """Images any existing container uses, and all their parents."""
    parents = {i.id: i.parent_id for i in snapshot.images}
    out: set[str] = set()
    for start in {c.image_id for c in snapshot.containers}:
        image_id = start
        while image_id and image_id not in out:
            out.add(image_id)
            image_id = parents.get(image_id, "")
    return frozenset(out)


def with_last_use(snapshot: Snapshot, times: Times, now: datetime) -> Snapshot:
    """The snapshot with each image's first-seen and last-used times filled in."""
    current = used_now(snapshot)
    images = tuple(_enriched(i, times.get(i.id), i.id in current, now) for i in snapshot.images)
    return replace(snapshot, images=images)


def _enriched(
    image: Image, known: tuple[datetime, datetime | None] | None, in_use: bool, now: datetime
) -> Image:
    first, last = known if known else (None, None)
    if in_use:
        last = now
    return replace(image, last_used=last or image.last_used, first_seen=first or image.first_seen)
