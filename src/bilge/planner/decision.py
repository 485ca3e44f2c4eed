"""What every kind's decision is made of: keep or remove, with a reason a person reads.

Each kind module (containers, volumes, images, networks, build cache) returns
its objects as `(Subject, Decision)` pairs, and `core` turns them into the
plan's actions and kept entries. The rules every kind shares live here so that
they read the same everywhere: the user's protection (keep label, name
patterns), the age limits, who uses an object, children before parents, and
the wording of ages and limits in reasons ("exited 3d ago (exited_after 1d)").

Pure: no clock, no I/O; `now` is always an argument.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta
from fnmatch import fnmatchcase
from typing import Protocol, TypeVar

from bilge.config.units import duration_text, format_duration
from bilge.model import Container, Kind

T = TypeVar("T")


@dataclass(frozen=True)
class Decision:
    """Whether an object goes, and the reason shown whichever way it goes."""

    remove: bool
    reason: str


def keep(reason: str) -> Decision:
    """The object stays, for `reason`."""
    return Decision(remove=False, reason=reason)


def remove(reason: str) -> Decision:
    """The object goes, for `reason`."""
    return Decision(remove=True, reason=reason)


class Fingerprinted(Protocol):
    """An object apply can tell has not changed since the plan."""

    def fingerprint(self) -> str: ...


@dataclass(frozen=True)
class Subject:
    """What an Action or a Kept says about an object, whatever its kind."""

    kind: Kind
    id: str
    name: str
    bytes: int
    #: Asked for its fingerprint only if it is removed: a kept object needs none.
    of: Fingerprinted
    tags: tuple[str, ...] = ()


#: A kind's objects with their decisions, in the order apply removes them.
Decided = list[tuple[Subject, Decision]]


def protected(
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


def by_age(what: str, age: timedelta, limit: timedelta, setting: str) -> Decision:
    """Remove once `age` reaches `limit`; `what` starts the reason, e.g. "exited 3d ago"."""
    rule = f"({setting} {limit_text(limit)})"
    if age >= limit:
        return remove(f"{what} {rule}")
    return keep(f"{what}, too young {rule}")


def users_of(
    containers: Iterable[Container], refs: Callable[[Container], Iterable[str]]
) -> dict[str, list[str]]:
    """Object id -> names of the containers referring to it."""
    by_ref: dict[str, list[str]] = defaultdict(list)
    for c in containers:
        for ref in dict.fromkeys(refs(c)):
            by_ref[ref].append(c.name)
    return by_ref


def children_first(
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


def names_text(found: Sequence[str]) -> str:
    """Container names in a reason: the first by name, then how many more."""
    first, *rest = sorted(set(found))
    return f"{first} and {len(rest)} more" if rest else first


def ago(age: timedelta) -> str:
    """An age in a reason: "3d ago"."""
    # A creation time after `now` means the engine's clock and ours disagree.
    if age < timedelta(0):
        return "in the future (clock skew)"
    return f"{format_duration(age)} ago"


def limit_text(limit: timedelta) -> str:
    """A policy duration as bilge.toml writes it ("1d", "1h30m")."""
    return duration_text(limit)
