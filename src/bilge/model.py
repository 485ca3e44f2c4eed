"""The immutable data bilge reasons about: what `collect` makes of the engine's
answers (the planner never sees raw API dictionaries). A `Snapshot` is the host at
one moment; a `Plan` what to remove from it and why; an `Outcome` what happened."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

Labels = Mapping[str, str]


class Kind(StrEnum):
    """Kinds of removable objects, in apply's order; registry-* last: audit log only."""

    CONTAINER = "container"
    VOLUME = "volume"
    IMAGE = "image"
    NETWORK = "network"
    BUILD_CACHE = "build-cache"
    #: A container's log file, truncated in place (the container stays).
    LOG = "log"
    #: A directory in the storage driver's folder nothing references any more.
    ORPHAN = "orphaned-layer"
    REGISTRY_MANIFEST = "registry-manifest"  # `registry apply`; never in engine plans
    REGISTRY_GC = "registry-gc"  # `registry gc`; engine plans never contain it either


#: Container states in which a container is in use and must never be removed.
ACTIVE_STATES = frozenset({"running", "paused", "restarting", "removing"})


@dataclass(frozen=True)
class Mount:
    """A container mount. `name` is the volume name for `type == "volume"`."""

    type: str
    name: str
    source: str
    destination: str


@dataclass(frozen=True)
class Container:
    id: str
    name: str
    image_id: str
    image: str
    state: str
    created: datetime
    #: When it stopped; None when never started or unknown. Lower bound when
    #: only the engine's human "Exited (0) 5 minutes ago" text was available.
    finished: datetime | None
    labels: Labels = field(default_factory=dict, hash=False)
    mounts: tuple[Mount, ...] = ()
    networks: tuple[str, ...] = ()  # network ids
    size_rw: int = 0  # writable layer bytes
    log_bytes: int = 0  # its folder (logs, config), when the data-root is readable
    log_path: str = ""
    #: Log driver and its max-size option ("" when unset: the log grows forever).
    log_driver: str = ""
    log_max_size: str = ""
    log_file_bytes: int = 0  # the log file alone, when the data-root is readable
    inodes: int = 0  # its folder and layers, when the data-root is readable
    infra_of: str = ""  # Podman: the pod whose infra container this is (it goes with it)

    @property
    def volume_names(self) -> tuple[str, ...]:
        return tuple(m.name for m in self.mounts if m.type == "volume" and m.name)

    @property
    def active(self) -> bool:
        return self.state in ACTIVE_STATES

    def fingerprint(self) -> str:
        return _digest(self.state, self.finished, self.image_id, sorted(self.labels.items()))

    def log_fingerprint(self) -> str:
        return _digest(self.log_path, self.log_driver)


@dataclass(frozen=True)
class Image:
    id: str
    tags: tuple[str, ...]  # "repo:tag"
    digests: tuple[str, ...]
    created: datetime
    labels: Labels = field(default_factory=dict, hash=False)
    #: Ids of its layers (chain ids), bottom first; sizes are in Snapshot.layers.
    layers: tuple[str, ...] = ()
    size: int = 0
    parent_id: str = ""
    #: Last time a container used it, when bilge has seen it (state store).
    last_used: datetime | None = None
    #: When bilge first saw it (pulled, built, tagged), from the state store.
    first_seen: datetime | None = None

    @property
    def dangling(self) -> bool:
        return not self.tags

    @property
    def repositories(self) -> tuple[str, ...]:
        return tuple(sorted({repo_of(t) for t in self.tags}))

    def fingerprint(self) -> str:
        return _digest(sorted(self.tags), sorted(self.labels.items()))


@dataclass(frozen=True)
class VolumeContents:
    """What bilge saw inside a volume. `visible` is False unless bilge read all of the
    volume's directory (`unseen` says why); `bytes` is then the engine's figure
    (None when the engine gave none). `data_markers`: "postgres: PG_VERSION", ..."""

    visible: bool
    bytes: int | None
    inodes: int | None = None
    data_markers: tuple[str, ...] = ()
    unseen: str = ""

    @property
    def holds_data(self) -> bool:
        """True when the volume holds a database's files, or may (cannot see)."""
        if self.data_markers:
            return True
        if self.unseen:  # bilge read part of it: the rest may be anything
            return True
        if not self.visible:
            return self.bytes != 0
        return False


@dataclass(frozen=True)
class Volume:
    name: str
    driver: str
    anonymous: bool
    created: datetime | None
    mountpoint: str
    contents: VolumeContents
    labels: Labels = field(default_factory=dict, hash=False)

    def fingerprint(self) -> str:
        return _digest(self.created, sorted(self.labels.items()))


@dataclass(frozen=True)
class BuildCacheRecord:
    id: str
    type: str
    description: str
    in_use: bool
    shared: bool
    size: int
    created: datetime
    last_used: datetime | None
    usage_count: int = 0
    #: The record it builds on; BuildKit keeps a record while others build on it.
    parent: str = ""

    def fingerprint(self) -> str:
        return _digest(self.in_use, self.shared, self.last_used, self.usage_count)


@dataclass(frozen=True)
class Network:
    id: str
    name: str
    driver: str
    scope: str
    created: datetime
    labels: Labels = field(default_factory=dict, hash=False)
    #: Endpoints the engine reports attached (list calls often report none).
    endpoints: int = 0

    @property
    def builtin(self) -> bool:
        return self.name in BUILTIN_NETWORKS

    def fingerprint(self) -> str:
        return _digest(self.name, self.created, sorted(self.labels.items()))


BUILTIN_NETWORKS = frozenset({"bridge", "host", "none", "ingress", "docker_gwbridge", "podman"})


@dataclass(frozen=True)
class Filesystem:
    """statvfs of the filesystem holding the data-root."""

    path: str
    total_bytes: int
    free_bytes: int  # available to unprivileged users, as df shows
    total_inodes: int
    free_inodes: int

    @property
    def used_bytes(self) -> int:
        return self.total_bytes - self.free_bytes

    @property
    def used_inodes(self) -> int:
        return self.total_inodes - self.free_inodes

    @property
    def bytes_ratio(self) -> float:
        return self.used_bytes / self.total_bytes if self.total_bytes else 0.0

    @property
    def inodes_ratio(self) -> float:
        return self.used_inodes / self.total_inodes if self.total_inodes else 0.0


@dataclass(frozen=True)
class OrphanDir:
    """A directory under the storage driver's folder that no image layer, container
    or build-cache record of the engine references."""

    name: str
    bytes: int
    modified: datetime

    def fingerprint(self) -> str:
        return _digest(self.name, self.modified)


@dataclass(frozen=True)
class EngineInfo:
    host: str
    api_version: str
    server_version: str
    data_root: str
    storage_driver: str
    #: True when the data-root is readable from here (bilge runs on the host).
    local: bool
    kind: str = "docker"  # or "podman": the engine's name, shown and in JSON documents


@dataclass(frozen=True)
class Snapshot:
    taken_at: datetime
    engine: EngineInfo
    containers: tuple[Container, ...] = ()
    images: tuple[Image, ...] = ()
    #: layer id -> bytes; only layers known (data-root readable or inspected).
    layers: Mapping[str, int] = field(default_factory=dict, hash=False)
    volumes: tuple[Volume, ...] = ()
    build_cache: tuple[BuildCacheRecord, ...] = ()
    networks: tuple[Network, ...] = ()
    filesystem: Filesystem | None = None
    orphans: tuple[OrphanDir, ...] = ()
    #: True when the data-root is on the filesystem of / (None: unknown).
    on_root_fs: bool | None = None

    def fingerprints(self) -> dict[tuple[Kind, str], str]:
        """Fingerprint of every object, keyed by (kind, id), for stale-plan checks."""
        out: dict[tuple[Kind, str], str] = {}
        for c in self.containers:
            out[(Kind.CONTAINER, c.id)] = c.fingerprint()
        for i in self.images:
            out[(Kind.IMAGE, i.id)] = i.fingerprint()
        for v in self.volumes:
            out[(Kind.VOLUME, v.name)] = v.fingerprint()
        for n in self.networks:
            out[(Kind.NETWORK, n.id)] = n.fingerprint()
        for b in self.build_cache:
            out[(Kind.BUILD_CACHE, b.id)] = b.fingerprint()
        for o in self.orphans:
            out[(Kind.ORPHAN, o.name)] = o.fingerprint()
        return out

    def log_fingerprints(self) -> dict[tuple[Kind, str], str]:
        """Fingerprints of the containers' logs (not objects of their own: a plan
        mentions only the logs it truncates)."""
        return {(Kind.LOG, c.id): c.log_fingerprint() for c in self.containers}


@dataclass(frozen=True)
class Action:
    """One removal the plan proposes.

    `precondition` says, for a person, what apply re-checks just before the
    deletion; apply knows how to check it from `kind`. `fingerprint` is the
    object's fingerprint when planned: a saved plan whose object no longer
    matches is refused for that object.
    """

    kind: Kind
    id: str
    name: str
    reason: str
    bytes: int
    precondition: str
    fingerprint: str
    #: Image tags to remove one by one (an image with several tags cannot be
    #: removed by id without force).
    tags: tuple[str, ...] = ()
    #: For a container: its anonymous volumes, every one of them also an action
    #: of the plan, which the engine removes together with it (one call, not three).
    volumes: tuple[str, ...] = ()


@dataclass(frozen=True)
class Kept:
    """A candidate the plan keeps, and why."""

    kind: Kind
    id: str
    name: str
    reason: str
    bytes: int = 0


@dataclass(frozen=True)
class Plan:
    created_at: datetime
    host: str
    actions: tuple[Action, ...]
    kept: tuple[Kept, ...] = ()

    @property
    def total_bytes(self) -> int:
        return sum(a.bytes for a in self.actions)


class Result(StrEnum):
    REMOVED = "removed"
    SKIPPED = "skipped"
    FAILED = "failed"


@dataclass(frozen=True)
class ActionOutcome:
    action: Action
    result: Result
    detail: str = ""


@dataclass(frozen=True)
class Outcome:
    plan: Plan
    results: tuple[ActionOutcome, ...]
    started_at: datetime
    finished_at: datetime
    #: statvfs difference (free after - free before); None when not measurable.
    freed_bytes_measured: int | None = None

    def count(self, result: Result) -> int:
        return sum(1 for r in self.results if r.result is result)

    @property
    def removed_bytes_predicted(self) -> int:
        return sum(r.action.bytes for r in self.results if r.result is Result.REMOVED)


def repo_of(tag: str) -> str:
    """Repository part of "repo:tag" ("localhost:5000/a:1" -> "localhost:5000/a")."""
    name, sep, rest = tag.rpartition(":")
    if not sep or "/" in rest:
        return tag
    return name


def _digest(*parts: object) -> str:
    text = json.dumps(parts, default=str, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


@dataclass(frozen=True)
class AuditEntry:
    """One removal as the audit log recorded it (outcome None: never finished)."""

    id: int
    host: str
    at: datetime
    kind: Kind
    object_id: str
    name: str
    reason: str
    bytes: int
    outcome: Result | None
    detail: str


@dataclass(frozen=True)
class UsageSample:
    """The data-root filesystem's usage at one moment, as the state store keeps it."""

    host: str
    at: datetime
    total_bytes: int
    free_bytes: int
    total_inodes: int
    free_inodes: int
