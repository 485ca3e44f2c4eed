"""Engine -> Snapshot.

One list call per kind of object (never one inspect per object), plus
`/system/df` for the build cache (the only listing of it the API has). When
the data-root is readable here, sizes come from the disk itself: what a
removal frees is what the files occupy, and what a volume holds decides
whether it may go at all.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any, TypeVar

from bilge.collect.dataroot import looks_anonymous
from bilge.collect.listing import list_engine
from bilge.collect.prefetch import Prefetch
from bilge.collect.storage import Storage, open_storage
from bilge.engine.base import Capabilities, Engine, JSONObject
from bilge.errors import EngineError
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
from bilge.timeparse import age_from_status, parse_time

T = TypeVar("T")

#: Docker 23+ labels anonymous volumes; older engines only give them a random name.
ANONYMOUS_LABEL = "com.docker.volume.anonymous"


def collect(
    engine: Engine,
    now: datetime,
    *,
    read_data_root: bool = True,
    prefetch: Prefetch | None = None,
) -> Snapshot:
    """Read the engine (and its data-root when local) into a Snapshot taken at `now`.

    `prefetch` may have listed the engine already and be reading its data-root
    (prefetch.py). The snapshot is dated when its listing began: at `now` when
    collect lists the engine itself, at the prefetch's own start (`taken_at`)
    when it uses that listing, since grace periods must count from the moment the
    engine was asked, not from a later or earlier time."""
    listing = prefetch.listing(engine.host) if prefetch and read_data_root else None
    if listing is None:
        listing = list_engine(engine, now, read_data_root=read_data_root)
    root_path, driver, local = listing.data_root, listing.driver, listing.local
    caps = listing.capabilities
    root = open_storage(caps, root_path, driver, listing.volume_path) if local else None
    # Before waiting for the readers: this process has nothing else to do meanwhile.
    orphans = _orphans(root) if root is not None else ()
    facts = prefetch.facts(root_path, driver) if prefetch and root else None
    if root is not None and facts is not None:
        root.adopt(facts.containers, facts.volumes)
    now = listing.taken_at
    networks = _parse_all(listing.networks, "network", _network)
    containers = _parse_all(listing.containers, "container", lambda c: _container(c, now, root))
    df = listing.system_df
    images, layers = _images(listing.images, df, root)
    containers = _resolve_networks(containers, networks)
    return Snapshot(
        taken_at=now,
        engine=EngineInfo(
            host=engine.host,
            kind=caps.kind,
            api_version=str(listing.version.get("ApiVersion") or ""),
            server_version=str(listing.version.get("Version") or ""),
            data_root=root_path,
            storage_driver=driver,
            local=local,
        ),
        containers=containers,
        images=images,
        layers=layers,
        volumes=_volumes(listing.volumes, df, root, listing.capabilities),
        build_cache=_parse_all(df.get("BuildCache") or [], "build cache record", _cache_record),
        networks=networks,
        filesystem=statvfs(root_path) if local else None,
        orphans=orphans,
        on_root_fs=_on_root_fs(root_path) if local else None,
    )


def statvfs(path: str) -> Filesystem | None:
    """The filesystem holding `path`: its size, and what is available to a process
    that is not root. "Used" is then size - available, as the kubelet counts it
    (root's reserved blocks count as used; df's Use% leaves them out), and the
    watermarks are checked against that same figure."""
    try:
        st = os.statvfs(path)
    except OSError:
        return None
    return Filesystem(
        path=path,
        total_bytes=st.f_blocks * st.f_frsize,
        free_bytes=st.f_bavail * st.f_frsize,
        total_inodes=st.f_files,
        free_inodes=st.f_favail,
    )


def _orphans(root: Storage) -> tuple[OrphanDir, ...]:
    """Orphaned layer directories."""
    found = root.orphans() or []
    return tuple(OrphanDir(name, size, modified) for name, size, modified in found)


def _on_root_fs(path: str) -> bool | None:
    try:
        return os.stat(path).st_dev == os.stat("/").st_dev
    except OSError:
        return None


def _parse_all(raw: Iterable[Any], what: str, parse: Callable[[JSONObject], T]) -> tuple[T, ...]:
    """Parse each listed object; a malformed one is an engine error naming it."""
    out = []
    for item in raw:
        if not isinstance(item, dict):
            raise EngineError(f"unexpected answer from the engine: {item!r:.80}")
        try:
            out.append(parse(item))
        except (KeyError, TypeError, ValueError) as exc:
            ident = item.get("Id") or item.get("ID") or item.get("Name") or "?"
            raise EngineError(
                f"unexpected answer from the engine for {what} "
                f"{str(ident)[:24]}: {type(exc).__name__} {exc}"
            ) from exc
    return tuple(out)


def _container(raw: JSONObject, now: datetime, root: Storage | None) -> Container:
    cid = str(raw["Id"])
    state = str(raw["State"])
    created = _required_time(raw["Created"])
    finished = None
    size_rw, log_bytes, log_path = int(raw.get("SizeRw") or 0), 0, ""
    log_driver, log_max_size, log_file_bytes, inodes = "", "", 0, 0
    if root is not None:
        files = root.container(cid)
        finished, log_path, log_bytes = files.finished, files.log_path, files.dir_bytes
        log_driver, log_max_size = files.log_driver, files.log_max_size
        log_file_bytes, inodes = files.log_file_bytes, files.inodes
        if files.layer_bytes is not None:
            size_rw = files.layer_bytes
    if finished is None and isinstance(raw.get("FinishedAt"), int):  # Podman's listing
        finished = datetime.fromtimestamp(raw["FinishedAt"], UTC)
    if finished is None and state in {"exited", "dead"}:
        age = age_from_status(str(raw.get("Status") or ""))
        finished = now - age if age is not None else None
    names = raw.get("Names") or [cid[:12]]
    return Container(
        id=cid,
        name=str(names[0]).lstrip("/"),
        image_id=str(raw["ImageID"]),
        image=str(raw.get("Image") or ""),
        state=state,
        created=created,
        finished=finished,
        labels=dict(raw.get("Labels") or {}),
        mounts=tuple(_mount(m) for m in raw.get("Mounts") or ()),
        networks=_network_ids(raw),
        size_rw=size_rw,
        log_bytes=log_bytes,
        log_path=log_path,
        log_driver=log_driver,
        log_max_size=log_max_size,
        log_file_bytes=log_file_bytes,
        inodes=inodes,
        infra_of=str(raw.get("InfraOfPod") or ""),
    )


def _mount(raw: JSONObject) -> Mount:
    return Mount(
        type=str(raw.get("Type") or ""),
        name=str(raw.get("Name") or ""),
        source=str(raw.get("Source") or ""),
        destination=str(raw.get("Destination") or ""),
    )


def _network_ids(raw: JSONObject) -> tuple[str, ...]:
    """Ids of the container's networks; names where the id is not known yet (a
    container never started has no endpoint, so its NetworkID is empty)."""
    networks = (raw.get("NetworkSettings") or {}).get("Networks") or {}
    return tuple(sorted(str(n.get("NetworkID") or name) for name, n in networks.items()))


def _resolve_networks(
    containers: tuple[Container, ...], networks: tuple[Network, ...]
) -> tuple[Container, ...]:
    """Replace network names in `Container.networks` by the networks' ids."""
    by_name = {n.name: n.id for n in networks}
    if not any(ref in by_name for c in containers for ref in c.networks):
        return containers
    return tuple(
        replace(c, networks=tuple(sorted(by_name.get(ref, ref) for ref in c.networks)))
        for c in containers
    )


def _images(
    raw: list[JSONObject], df: JSONObject, root: Storage | None
) -> tuple[tuple[Image, ...], dict[str, int]]:
    """Images with their layers; layer sizes from disk, else from /system/df."""
    shared = {str(i.get("Id")): int(i.get("SharedSize") or 0) for i in df.get("Images") or []}
    layers: dict[str, int] = {}
    out = []
    for img in _parse_all(raw, "image", _image):
        chain = root.image_layers(img.id) if root is not None else None
        if root is None or chain is None:
            # Remote (or unreadable) host: only the engine's unique size is known;
            # what the image shares with others is left out, so bilge under-predicts.
            chain = (f"unique:{img.id}",)
            layers[chain[0]] = max(img.size - max(shared.get(img.id, 0), 0), 0)
        for layer in chain:
            if layer not in layers:
                layers[layer] = (root.layer_bytes(layer) if root is not None else None) or 0
        if root is not None:
            # The image's own config and metadata go with it, as if a layer of its own.
            chain = (*chain, f"meta:{img.id}")
            layers[chain[-1]] = root.image_meta_bytes(img.id)
        out.append(replace(img, layers=chain))
    return tuple(out), layers


def _image(raw: JSONObject) -> Image:
    tags = tuple(t for t in raw.get("RepoTags") or () if t and t != "<none>:<none>")
    digests = tuple(d for d in raw.get("RepoDigests") or () if d and not d.startswith("<none>"))
    return Image(
        id=str(raw["Id"]),
        tags=tags,
        digests=digests,
        created=_required_time(raw["Created"]),
        labels=dict(raw.get("Labels") or {}),
        size=int(raw.get("Size") or 0),
        parent_id=str(raw.get("ParentId") or ""),
    )


def _volumes(
    raw: list[JSONObject], df: JSONObject, root: Storage | None, caps: Capabilities
) -> tuple[Volume, ...]:
    engine_sizes = {
        str(v.get("Name")): int((v.get("UsageData") or {}).get("Size", -1))
        for v in df.get("Volumes") or []
    }

    def parse(item: JSONObject) -> Volume:
        size = engine_sizes.get(str(item.get("Name")), -1)
        return _volume(item, root, size, caps.marks_anonymous_volumes)

    return _parse_all(raw, "volume", parse)


def _volume(raw: JSONObject, root: Storage | None, engine_size: int, marked: bool) -> Volume:
    name = str(raw["Name"])
    labels = dict(raw.get("Labels") or {})
    return Volume(
        name=name,
        driver=str(raw.get("Driver") or ""),
        # An engine that marks anonymous volumes is believed; before Docker 23
        # they are recognised by their 64-hex-digit names.
        anonymous=ANONYMOUS_LABEL in labels
        or raw.get("Anonymous") is True  # Podman's own volume listing
        or (not marked and looks_anonymous(name)),
        created=parse_time(raw.get("CreatedAt")),
        mountpoint=str(raw.get("Mountpoint") or ""),
        contents=_volume_contents(raw, root, engine_size),
        labels=labels,
    )


def _volume_contents(raw: JSONObject, root: Storage | None, engine_size: int) -> VolumeContents:
    """What the volume holds. Never guesses "empty": unseen content is unknown."""
    engine_bytes = engine_size if engine_size >= 0 else None
    options = raw.get("Options") or {}
    # A local volume with a device (bind, nfs, ...) keeps its data elsewhere;
    # its folder here is empty whenever nothing mounts it. Never judge it by that.
    if root is None or raw.get("Driver") != "local" or options.get("device"):
        return VolumeContents(visible=False, bytes=engine_bytes)
    scanned = root.scan_volume(str(raw["Name"]), str(raw.get("Mountpoint") or ""))
    if scanned is None:
        return VolumeContents(visible=False, bytes=engine_bytes)
    scan, own = scanned
    return VolumeContents(
        visible=scan.complete,
        bytes=scan.bytes + own if scan.complete else engine_bytes,
        inodes=scan.inodes,
        data_markers=scan.markers,
        unseen=scan.unseen,
    )


def _network(raw: JSONObject) -> Network:
    return Network(
        id=str(raw["Id"]),
        name=str(raw["Name"]),
        driver=str(raw.get("Driver") or ""),
        scope=str(raw.get("Scope") or ""),
        created=_required_time(raw["Created"]),
        labels=dict(raw.get("Labels") or {}),
        endpoints=len(raw.get("Containers") or {}),
    )


def _cache_record(raw: JSONObject) -> BuildCacheRecord:
    return BuildCacheRecord(
        id=str(raw["ID"]),
        type=str(raw.get("Type") or ""),
        description=str(raw.get("Description") or ""),
        in_use=bool(raw.get("InUse")),
        shared=bool(raw.get("Shared")),
        size=int(raw.get("Size") or 0),
        created=_required_time(raw["CreatedAt"]),
        last_used=parse_time(raw.get("LastUsedAt")),
        usage_count=int(raw.get("UsageCount") or 0),
        parent=str(raw.get("Parent") or ""),
    )


def _required_time(value: object) -> datetime:
    parsed = parse_time(value)
    if parsed is None:
        raise ValueError(f"missing time {value!r}")
    return parsed
