"""Semantic versions in tags, for `order = "semver"`.

Lenient where tags commonly are ("v1.2", "1.2.3-rc.1+build5"), strict in the
ordering: semver.org's precedence rules (a pre-release sorts before its
release; numeric identifiers numerically, and below alphanumeric ones).
"""

from __future__ import annotations

import re

_VERSION_RE = re.compile(
    r"v?(\d+)(?:\.(\d+))?(?:\.(\d+))?(?:-([0-9A-Za-z.-]+))?(?:\+[0-9A-Za-z.-]+)?", re.ASCII
)

#: A sort key: (major, minor, patch), then 1 for a release or 0 and the
#: pre-release identifiers, each as (0, number) or (1, text).
VersionKey = tuple[tuple[int, int, int], int, tuple[tuple[int, int | str], ...]]


def version_key(tag: str) -> VersionKey | None:
    """The precedence key of `tag`, or None when it is not a version."""
    match = _VERSION_RE.fullmatch(tag)
    if match is None:
        return None
    major, minor, patch, pre = match.groups()
    core = (int(major), int(minor or 0), int(patch or 0))
    if pre is None:
        return core, 1, ()
    parts = tuple((0, int(p)) if p.isdigit() else (1, p) for p in pre.split("."))
    return core, 0, parts
