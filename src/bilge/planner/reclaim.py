"""Planning what the disk holds beyond the engine's objects: logs and orphans.

Both are opt-in (`[logs] max_size`, `[orphans] remove` or --orphans) and
planned like everything else: an action with its reason and bytes, or a kept
entry saying why not. Pure functions of the snapshot, the policy and `now`.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from bilge.config.policy import Policy
from bilge.config.units import duration_text, format_duration, format_size
from bilge.model import Action, Container, Kept, Kind, OrphanDir

LOG_PRECONDITION = "the container still exists and logs with json-file to this file"
ORPHAN_PRECONDITION = "still referenced by nothing, unchanged, and nothing mounted in it"

#: Only json-file logs are plain text files that survive being truncated; the
#: "local" driver's file is a framed binary format.
TRUNCATABLE_DRIVERS = frozenset({"json-file"})


def logs(survivors: Iterable[Container], policy: Policy) -> tuple[list[Action], list[Kept]]:
    """Truncate the json-file logs over `logs.max_size` of containers that stay."""
    limit = policy.logs.max_size
    actions: list[Action] = []
    kept: list[Kept] = []
    if limit <= 0:
        return actions, kept
    for c in sorted(survivors, key=lambda c: c.id):
        if c.log_file_bytes <= limit:
            continue
        if c.log_driver not in TRUNCATABLE_DRIVERS:
            why = f"log driver {c.log_driver or 'unknown'} cannot be truncated in place"
            kept.append(Kept(Kind.LOG, c.id, c.name, why, c.log_file_bytes))
            continue
        reason = f"log of {format_size(c.log_file_bytes)} over logs.max_size {format_size(limit)}"
        actions.append(
            Action(Kind.LOG, c.id, c.name, reason, c.log_file_bytes, LOG_PRECONDITION,
                   c.log_fingerprint())
        )  # fmt: skip
    return actions, kept


def orphans(
    found: Iterable[OrphanDir], policy: Policy, now: datetime
) -> tuple[list[Action], list[Kept]]:
    """Remove orphaned layer directories untouched for `orphans.older_than`."""
    actions: list[Action] = []
    kept: list[Kept] = []
    grace = policy.orphans.older_than
    for o in sorted(found, key=lambda o: o.name):
        name, age = o.name[:16], format_duration(now - o.modified)
        if not policy.orphans.remove:
            why = "orphan removal is off (--orphans)"
            kept.append(Kept(Kind.ORPHAN, o.name, name, why, o.bytes))
        elif now - o.modified < grace:
            why = f"changed {age} ago (< {duration_text(grace)})"
            kept.append(Kept(Kind.ORPHAN, o.name, name, why, o.bytes))
        else:
            reason = f"referenced by no image, container or build cache; untouched {age}"
            actions.append(
                Action(Kind.ORPHAN, o.name, name, reason, o.bytes, ORPHAN_PRECONDITION,
                       o.fingerprint())
            )  # fmt: skip
    return actions, kept
