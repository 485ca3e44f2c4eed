"""Which build-cache records go: unused for `build_cache.unused_after`, then the
least recently used until what stays fits in `build_cache.keep_storage`.

Records in use always stay, and so does every record a kept record builds on,
since BuildKit would not prune it. Records are ordered children first, the
order BuildKit accepts removals in. The build cache depends on no other kind,
so it is decided last.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime

from bilge.config.policy import BuildCachePolicy
from bilge.config.units import format_duration, size_text
from bilge.model import BuildCacheRecord, Kind
from bilge.planner.decision import (
    Decided,
    Decision,
    Subject,
    ago,
    children_first,
    keep,
    limit_text,
    remove,
)


def decided(
    records: Iterable[BuildCacheRecord], limits: BuildCachePolicy, now: datetime
) -> Decided:
    """Every build-cache record with its decision, children first."""
    ordered = children_first(records, lambda r: r.id, lambda r: r.parent)
    decisions = {r.id: _decide_by_age(r, limits, now) for r in ordered}
    _enforce_keep_storage(ordered, decisions, limits.keep_storage, now)
    _keep_parents(ordered, decisions)
    return [
        (
            Subject(
                Kind.BUILD_CACHE,
                r.id,
                r.description or r.id[:12],
                _bytes(r),
                r,
            ),
            decisions[r.id],
        )
        for r in ordered
    ]


def _bytes(r: BuildCacheRecord) -> int:
    # A shared record's data is also an image's layer, counted with that image:
    # BuildKit prunes it only once the image is gone (apply removes images
    # first), and refuses while a kept image holds it: apply then skips it.
    return 0 if r.shared else r.size


def _keep_parents(records: Sequence[BuildCacheRecord], decisions: dict[str, Decision]) -> None:
    """Keep every record a kept record builds on: BuildKit would not prune it."""
    by_id = {r.id: r for r in records}
    for record in records:
        child, parent = record, by_id.get(record.parent)
        while parent is not None and not decisions[child.id].remove and decisions[parent.id].remove:
            reason = f"a kept build cache record builds on it ({child.id[:12]})"
            decisions[parent.id] = keep(reason)
            child, parent = parent, by_id.get(parent.parent)


def _decide_by_age(r: BuildCacheRecord, limits: BuildCachePolicy, now: datetime) -> Decision:
    if r.in_use:
        return keep("in use")
    age = now - (r.last_used or r.created)
    rule = f"(unused_after {limit_text(limits.unused_after)})"
    if age >= limits.unused_after:
        return remove(f"build cache unused for {format_duration(age)} {rule}")
    storage = size_text(limits.keep_storage)
    return keep(f"build cache used {ago(age)} {rule}, total within keep_storage {storage}")


def _enforce_keep_storage(
    records: Sequence[BuildCacheRecord],
    decisions: dict[str, Decision],
    keep_storage: int,
    now: datetime,
) -> None:
    """Remove least recently used records until what stays fits in `keep_storage`."""
    # Records in use count towards the total (they take the space) but cannot go.
    total = sum(_bytes(r) for r in records if not decisions[r.id].remove)
    candidates = sorted(
        (r for r in records if not decisions[r.id].remove and not r.in_use),
        key=lambda r: (r.last_used or r.created, r.created, r.id),
    )
    for r in candidates:
        if total <= keep_storage:
            break
        age = ago(now - (r.last_used or r.created))
        reason = f"build cache over keep_storage {size_text(keep_storage)}, oldest first"
        decisions[r.id] = remove(f"{reason} (used {age})")
        total -= _bytes(r)
