"""Which images an engine event is about, asked of the engine: the guard's
side of lastuse.py.

An event names a container or an image by reference; the state store keeps
last-use times by image id, and a parent image (of a local build) is used
whenever a child is. Kept out of loop.py, which runs the guard's loop.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from bilge.engine.base import Engine
from bilge.errors import EngineError, ObjectGone

PARENT_DEPTH = 32
#: How far back the guard reads the engine's past events when it (re)connects: last
#: uses while it was not running. Podman keeps them on disk, dockerd its last 1,000.
REPLAY_WINDOW = timedelta(days=7)
#: The newest events replayed at most: each may cost an inspect.
REPLAY_LIMIT = 5_000
#: Container id -> image id, for events of containers already gone; bounded.
CONTAINER_CACHE = 10_000


def image_id(engine: Engine, cache: dict[str, str], ref: str, container_id: str) -> str:
    """The id of the image a container event (`container_id`) or an image
    event (`ref`) is about, or "" when the engine no longer knows it. `cache`
    remembers each container's image, for the events after it is gone."""
    try:
        if container_id:
            if container_id in cache:
                return cache[container_id]
            image = str(engine.inspect_container(container_id).get("Image") or "")
            if len(cache) > CONTAINER_CACHE:
                cache.clear()
            cache[container_id] = image
            return image
        return str(engine.inspect_image(ref).get("Id") or "")
    except ObjectGone:
        try:  # the container is gone (destroy): its image by the event's name
            return str(engine.inspect_image(ref).get("Id") or "") if ref else ""
        except EngineError:
            return ""
    except EngineError:
        return ""


def with_parents(engine: Engine, image: str) -> list[str]:
    """The image and its parents (local builds): a parent is used when a child is."""
    out = [image]
    for _ in range(PARENT_DEPTH):
        try:
            parent = str(engine.inspect_image(out[-1]).get("Parent") or "")
        except EngineError:
            break
        if not parent or parent in out:
            break
        out.append(parent)
    return out


def replay(engine: Engine, now: datetime, handle: Callable[[dict[str, Any]], None]) -> int:
    """Hand the events of the last REPLAY_WINDOW to `handle`, oldest first, and return
    how many. Recording a use is idempotent (first-seen only moves back, last-used
    only forward), so events seen again, live or in an earlier replay, change nothing.
    An engine that cannot read them back loses only this catch-up."""
    try:
        events = engine.past_events(("container", "image"), (now - REPLAY_WINDOW).timestamp())
    except EngineError:
        return 0
    for event in events[-REPLAY_LIMIT:]:
        handle(event)
    return len(events[-REPLAY_LIMIT:])
