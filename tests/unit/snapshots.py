"""Snapshots for tests: small builders with sensible defaults, and hypothesis strategies.

Builders take only what a test is about; everything else defaults to an
object old enough for any default policy, unlabelled, and empty. Times are
relative to the fixed clock `NOW` (use `ago(days=3)`).

`snapshots()` draws consistent snapshots: containers in every state that
refer to the drawn images, volumes and networks, images sharing layers and
forming parent chains, volumes named and anonymous, visible or not, with and
without database markers, keep labels here and there, and build cache records.
`policies()` draws policies across the whole range a user could write.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta

from hypothesis import strategies as st

from bilge.config.policy import (
    BuildCachePolicy,
    ContainersPolicy,
    ImagesPolicy,
    LogsPolicy,
    NetworksPolicy,
    OrphansPolicy,
    Policy,
    VolumesPolicy,
)
from bilge.model import (
    BuildCacheRecord,
    Container,
    EngineInfo,
    Filesystem,
    Image,
    Mount,
    Network,
    OrphanDir,
    Snapshot,
    Volume,
    VolumeContents,
)

NOW = datetime(2026, 1, 1, tzinfo=UTC)
KEEP = "bilge.keep"
ENGINE = EngineInfo(
    host="unix:///run/bilge-test/docker.sock",
    api_version="1.41",
    server_version="20.10.24",
    data_root="/var/lib/docker",
    storage_driver="overlay2",
    local=True,
)

PG_MARKER = "postgres: PG_VERSION"
COUCH_MARKER = "couchdb: _dbs.couch"


def ago(*, days: float = 0, hours: float = 0, minutes: float = 0) -> datetime:
    """A time before NOW."""
    return NOW - timedelta(days=days, hours=hours, minutes=minutes)


def container(
    name: str,
    *,
    id: str | None = None,
    state: str = "exited",
    image_id: str = "sha256:base",
    created: datetime | None = None,
    finished: datetime | None = None,
    labels: Mapping[str, str] | None = None,
    volumes: Sequence[str] = (),
    networks: Sequence[str] = (),
    size_rw: int = 0,
    log_bytes: int = 0,
    infra_of: str = "",
) -> Container:
    """A container; `volumes` are names of the volumes it mounts."""
    mounts = tuple(
        Mount("volume", v, f"/var/lib/docker/volumes/{v}/_data", f"/mnt/{n}")
        for n, v in enumerate(volumes)
    )
    return Container(
        id=id or f"{name}-id",
        name=name,
        image_id=image_id,
        image=image_id,
        state=state,
        created=created or ago(days=30),
        finished=finished,
        labels=dict(labels or {}),
        mounts=mounts,
        networks=tuple(networks),
        size_rw=size_rw,
        log_bytes=log_bytes,
        infra_of=infra_of,
    )


def image(
    id: str,
    *tags: str,
    created: datetime | None = None,
    last_used: datetime | None = None,
    layers: Sequence[str] = (),
    parent_id: str = "",
    labels: Mapping[str, str] | None = None,
    size: int = 0,
) -> Image:
    """An image with the given tags ("repo:tag"); none makes it dangling."""
    return Image(
        id=id,
        tags=tags,
        digests=(),
        created=created or ago(days=30),
        labels=dict(labels or {}),
        layers=tuple(layers),
        size=size,
        parent_id=parent_id,
        last_used=last_used,
    )


def volume(
    name: str,
    *,
    anonymous: bool = False,
    created: datetime | None = None,
    unknown_creation: bool = False,
    visible: bool = True,
    bytes: int | None = 0,
    markers: Sequence[str] = (),
    labels: Mapping[str, str] | None = None,
    unseen: str = "",
) -> Volume:
    """A volume; visible and empty unless told otherwise."""
    return Volume(
        name=name,
        driver="local",
        anonymous=anonymous,
        created=None if unknown_creation else created or ago(days=60),
        mountpoint=f"/var/lib/docker/volumes/{name}/_data",
        contents=VolumeContents(
            visible=visible, bytes=bytes, data_markers=tuple(markers), unseen=unseen
        ),
        labels=dict(labels or {}),
    )


def network(
    name: str,
    *,
    id: str | None = None,
    created: datetime | None = None,
    endpoints: int = 0,
    labels: Mapping[str, str] | None = None,
) -> Network:
    return Network(
        id=id or f"{name}-id",
        name=name,
        driver="bridge",
        scope="local",
        created=created or ago(days=60),
        labels=dict(labels or {}),
        endpoints=endpoints,
    )


def cache(
    id: str,
    *,
    size: int = 0,
    created: datetime | None = None,
    last_used: datetime | None = None,
    in_use: bool = False,
    shared: bool = False,
    parent: str = "",
) -> BuildCacheRecord:
    return BuildCacheRecord(
        id=id,
        type="regular",
        description=f"step {id}",
        in_use=in_use,
        shared=shared,
        size=size,
        created=created or ago(days=30),
        last_used=last_used,
        parent=parent,
    )


def snapshot(
    *,
    containers: Iterable[Container] = (),
    images: Iterable[Image] = (),
    volumes: Iterable[Volume] = (),
    networks: Iterable[Network] = (),
    build_cache: Iterable[BuildCacheRecord] = (),
    layers: Mapping[str, int] | None = None,
    filesystem: Filesystem | None = None,
) -> Snapshot:
    return Snapshot(
        filesystem=filesystem,
        taken_at=NOW,
        engine=ENGINE,
        containers=tuple(containers),
        images=tuple(images),
        layers=dict(layers or {}),
        volumes=tuple(volumes),
        build_cache=tuple(build_cache),
        networks=tuple(networks),
    )


# --- hypothesis strategies --------------------------------------------------

# Weighted towards the removable states, where the rules have something to decide.
STATES = ("running", "paused", "restarting", "removing", "dead", "weird") + (
    "exited",
    "created",
) * 3
TAGS = ("app:1", "app:2", "app:latest", "db:16", "db:latest", "localhost:5000/tools:1")
LAYERS = tuple(f"sha256:layer{n}" for n in range(8))

# Minutes before NOW; a few negative ones stand for an engine clock ahead of ours.
times = st.integers(min_value=-60, max_value=15 * 24 * 60).map(lambda m: NOW - timedelta(minutes=m))
labels = st.sampled_from([{}] * 6 + [{KEEP: ""}, {KEEP: "true"}, {"other.keep": "x"}])
sizes = st.integers(min_value=0, max_value=5 * 10**9)


def _subsets(items: Sequence[str], sparse: bool = False) -> st.SearchStrategy[list[str]]:
    """Subsets of `items`, in order; one draw each (a bit mask), which keeps generation fast.

    A sparse subset holds each item with probability 1/4 rather than 1/2.
    """
    masks = st.integers(min_value=0, max_value=2 ** len(items) - 1)
    if sparse:
        masks = st.tuples(masks, masks).map(lambda pair: pair[0] & pair[1])
    return masks.map(lambda mask: [item for bit, item in enumerate(items) if mask >> bit & 1])


@st.composite
def _images(draw: st.DrawFn) -> list[Image]:
    count = draw(st.integers(min_value=0, max_value=6))
    ids = [f"sha256:image{n}" for n in range(count)]
    # Each tag names at most one image, as in the engine.
    owners = [draw(st.integers(min_value=-1, max_value=count - 1)) for _ in TAGS]
    images: list[Image] = []
    for n, image_id in enumerate(ids):
        parent = draw(st.sampled_from([None, *images])) if images else None
        own = draw(_subsets(LAYERS[n : n + 4]))
        inherited = [layer for layer in parent.layers if layer not in own] if parent else []
        images.append(
            image(
                image_id,
                *(tag for tag, owner in zip(TAGS, owners, strict=True) if owner == n),
                created=draw(times),
                last_used=draw(st.none() | times),
                layers=[*inherited, *own],
                parent_id=parent.id if parent else "",
                labels=draw(labels),
                size=draw(sizes),
            )
        )
    return images


@st.composite
def _volumes(draw: st.DrawFn) -> list[Volume]:
    volumes = []
    for n in range(draw(st.integers(min_value=0, max_value=6))):
        anonymous = draw(st.booleans())
        visible = draw(st.booleans())
        volumes.append(
            volume(
                f"{n:x}".rjust(64, "a") if anonymous else f"data{n}",
                anonymous=anonymous,
                created=draw(times),
                unknown_creation=draw(st.booleans()),
                visible=visible,
                bytes=draw(st.sampled_from([None, 0]) | sizes),
                # Markers are only ever found by looking inside.
                markers=draw(st.sampled_from([(), (), (PG_MARKER,), (COUCH_MARKER,)]))
                if visible
                else (),
                labels=draw(labels),
                # A scan stopped early: the volume was read in part only.
                unseen="" if visible else draw(st.sampled_from(["", "not read below depth 4"])),
            )
        )
    return volumes


@st.composite
def _networks(draw: st.DrawFn) -> list[Network]:
    builtin = draw(_subsets(["bridge", "host", "none"]))
    custom = [f"net{n}" for n in range(draw(st.integers(min_value=0, max_value=4)))]
    return [
        network(
            name,
            created=draw(times),
            endpoints=draw(st.sampled_from([0, 0, 0, 1, 2])),
            labels=draw(labels),
        )
        for name in [*builtin, *custom]
    ]


@st.composite
def _containers(
    draw: st.DrawFn, images: list[Image], volumes: list[Volume], networks: list[Network]
) -> list[Container]:
    image_ids = [i.id for i in images] + ["sha256:not-listed"]
    return [
        container(
            f"c{n}",
            state=draw(st.sampled_from(STATES)),
            image_id=draw(st.sampled_from(image_ids)),
            created=draw(times),
            finished=draw(st.none() | times),
            labels=draw(labels),
            volumes=draw(_subsets([v.name for v in volumes], sparse=True)),
            networks=draw(_subsets([n.id for n in networks], sparse=True)),
            size_rw=draw(sizes),
            log_bytes=draw(sizes),
            infra_of=draw(st.sampled_from(["", "", "", "pod-1"])),
        )
        for n in range(draw(st.integers(min_value=0, max_value=8)))
    ]


@st.composite
def _logging(draw: st.DrawFn, containers: list[Container]) -> list[Container]:
    """Log drivers and log files (truncation candidates) for the drawn containers."""
    return [
        replace(
            c,
            log_driver=draw(st.sampled_from(["", "json-file", "local"])),
            log_file_bytes=draw(sizes),
            log_path=f"/var/lib/docker/containers/{c.id}/{c.id}-json.log",
        )
        for c in containers
    ]


@st.composite
def _orphans(draw: st.DrawFn) -> tuple[OrphanDir, ...]:
    count = draw(st.integers(min_value=0, max_value=3))
    return tuple(OrphanDir(f"orphan{n}", draw(sizes), draw(times)) for n in range(count))


@st.composite
def _build_cache(draw: st.DrawFn) -> list[BuildCacheRecord]:
    count = draw(st.integers(min_value=0, max_value=6))
    return [
        cache(
            f"cache{n}",
            size=draw(sizes),
            created=draw(times),
            last_used=draw(st.none() | times),
            in_use=draw(st.booleans()),
            shared=draw(st.booleans()),
            # a chain or tree of records, each building on an earlier one
            parent=draw(st.sampled_from(["", *(f"cache{p}" for p in range(n))])),
        )
        for n in range(count)
    ]


@st.composite
def snapshots(draw: st.DrawFn) -> Snapshot:
    """A consistent snapshot: every reference points at a drawn object (or at none)."""
    images = draw(_images())
    volumes = draw(_volumes())
    networks = draw(_networks())
    snap = snapshot(
        containers=draw(_logging(draw(_containers(images, volumes, networks)))),
        images=images,
        volumes=volumes,
        networks=networks,
        build_cache=draw(_build_cache()),
        # Some layers have no known size: they must count as 0, not fail.
        layers=draw(st.dictionaries(st.sampled_from(LAYERS), sizes)),
    )
    return replace(snap, orphans=draw(_orphans()))


durations = st.sampled_from(
    [timedelta(0), timedelta(hours=1), timedelta(days=1), timedelta(days=7)]
) | st.integers(min_value=0, max_value=10 * 86400).map(lambda s: timedelta(seconds=s))


def _globs(*patterns: str) -> st.SearchStrategy[tuple[str, ...]]:
    # Mostly none: a "*" among them keeps everything and hides the other rules.
    return st.just(()) | st.lists(st.sampled_from(patterns), max_size=2).map(tuple)


@st.composite
def policies(draw: st.DrawFn) -> Policy:
    """Any policy a user could write, sensible or not."""
    return Policy(
        keep_label=draw(st.sampled_from([KEEP, KEEP, "other.keep"])),
        containers=ContainersPolicy(
            exited_after=draw(durations),
            created_after=draw(durations),
            keep_names=draw(_globs("c1", "c2*", "*", "nothing")),
        ),
        volumes=VolumesPolicy(
            anonymous_after=draw(durations),
            named=draw(st.booleans()),
            named_after=draw(durations),
            protect_data=draw(st.booleans()),
            keep_names=draw(_globs("data1", "data*", "a*", "nothing")),
        ),
        images=ImagesPolicy(
            dangling_after=draw(durations),
            unused_after=draw(durations),
            keep_recent=draw(st.integers(min_value=0, max_value=3)),
            keep=draw(_globs("app:*", "db:latest", "*:1", "nothing")),
        ),
        build_cache=BuildCachePolicy(
            keep_storage=draw(st.sampled_from([0, 10**9, 10 * 1000**3]) | sizes),
            unused_after=draw(durations),
        ),
        networks=NetworksPolicy(unused_after=draw(durations)),
        logs=LogsPolicy(max_size=draw(st.sampled_from([0, 1000]) | sizes)),
        orphans=OrphansPolicy(remove=draw(st.booleans()), older_than=draw(durations)),
    )
