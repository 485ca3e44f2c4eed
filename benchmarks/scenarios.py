"""The host states the benchmarks run on, how they are built, and what is on them.

Each state is built once on a private engine and kept as a disk image; every tool then
runs on an identical copy. The objects carry labels saying what they are
(`bench.role`), so that what a tool removed can be judged afterwards: garbage, or
somebody's data.

* crowded: exited containers, each with an anonymous volume holding a small file;
  unreferenced anonymous volumes (left by `docker rm` without `-v`); named volumes,
  some holding a database's files; images in several repositories (older tags, dangling
  ones); BuildKit build cache. Also what must survive: running containers (and the
  image and named volumes they use), objects labelled `bilge.keep`, and exited
  containers whose anonymous volume holds a database's files (the `VOLUME` trap).
* planning: the crowded host plus volumes of many small files each.
* removal: exited containers, each with an anonymous volume holding a small file (the
  incident's garbage, and the old `prune_400` benchmark).
"""

from __future__ import annotations

import os
import re
import secrets
import tempfile
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from benchmarks.sandbox import BASE_IMAGE, Engine

KEEP_LABEL = "bilge.keep"
ROLE = "bench.role"
_ANONYMOUS = re.compile(r"[0-9a-f]{64}")

#: Database marker files (what bilge's datafiles table looks for), one per db volume.
DB_FILES = ("PG_VERSION", "ibdata1", "_dbs.couch", "WiredTiger", "dump.rdb")


@dataclass(frozen=True)
class Size:
    """How big each scenario is."""

    name: str
    containers: int  # crowded: exited containers, each with an anonymous volume
    orphan_volumes: int  # crowded: unreferenced anonymous volumes
    named_volumes: int
    db_volumes: int  # of the named volumes, those holding a database's files
    repositories: int  # 4 images each: 3 tags and a dangling one
    cache_builds: int  # BuildKit builds whose image is gone, leaving build cache
    blob_bytes: int  # each image's own layer
    file_bytes: int  # the small file in each volume
    plan_volumes: int  # planning: volumes of many small files
    plan_files: int
    removal_containers: int  # removal concurrency scenario
    scaling: tuple[int, ...]  # planner scaling: objects per synthetic snapshot
    rounds: int
    concurrency: tuple[int, ...] = (1, 2, 4, 8, 16)
    disk: str = "1G"


SIZES = {
    "tiny": Size(
        name="tiny", containers=20, orphan_volumes=6, named_volumes=6, db_volumes=2,
        repositories=2, cache_builds=1, blob_bytes=8 << 10, file_bytes=4 << 10,
        plan_volumes=2, plan_files=200, removal_containers=12, scaling=(1_000, 4_000),
        rounds=1, concurrency=(1, 8), disk="1G",
    ),
    "full": Size(
        name="full", containers=1000, orphan_volumes=300, named_volumes=30, db_volumes=10,
        repositories=10, cache_builds=6, blob_bytes=1 << 20, file_bytes=8 << 10,
        plan_volumes=20, plan_files=20_000, removal_containers=400,
        scaling=(10_000, 100_000, 1_000_000), rounds=3, disk="8G",
    ),
}  # fmt: skip

#: Running containers: (name, image, named volume it mounts).
RUNNING = (("live-db", BASE_IMAGE, "data-00"), ("live-app", "bench/app1:2", "data-01"))
DBTRAP_CONTAINERS = 3
KEEP_IMAGE = "bench/app0:1"


def _parallel(work: Callable[[int], object], count: int, threads: int = 8) -> None:
    with ThreadPoolExecutor(max_workers=threads) as pool:
        list(pool.map(work, range(count)))


# --- building -------------------------------------------------------------------------


def exited_with_volume(
    api: Any, count: int, file_bytes: int, labels: Mapping[str, str], *, keep_container: bool
) -> None:
    """`count` exited containers, each with an anonymous volume at /data holding a file
    of `file_bytes` random bytes; with `keep_container` false the container is removed
    (without its volume), leaving the volume unreferenced."""

    def one(_: int) -> None:
        c = api.create_container(
            BASE_IMAGE,
            ["sh", "-c", f"head -c {file_bytes} /dev/urandom > /data/out"],
            volumes=["/data"],
            labels=dict(labels),
            host_config=api.create_host_config(network_mode="none"),
        )
        api.start(c["Id"])
        api.wait(c["Id"])
        if not keep_container:
            api.remove_container(c["Id"], v=False)

    _parallel(one, count)


def build_image(engine: Engine, tag: str, blob_bytes: int, labels: Mapping[str, str]) -> None:
    """`tag` from the base image with one layer of its own (classic builder)."""
    with tempfile.TemporaryDirectory(prefix="bench-build-") as tmp:
        ctx = Path(tmp)
        (ctx / "blob").write_bytes(os.urandom(blob_bytes))
        label = "".join(f'LABEL "{k}"="{v}"\n' for k, v in labels.items())
        dockerfile = f"FROM {BASE_IMAGE}\n{label}COPY blob /layer-{secrets.token_hex(8)}\n"
        (ctx / "Dockerfile").write_text(dockerfile)
        engine.docker("build", "-q", "--network=none", "-t", tag, str(ctx))


def build_images(engine: Engine, size: Size) -> None:
    """Per repository bench/appN: tags 1, 2 and 3, and a dangling image (3 rebuilt)."""

    def repository(r: int) -> None:
        for tag in ("1", "2", "3", "3"):
            name = f"bench/app{r}:{tag}"
            labels = {KEEP_LABEL: "true"} if name == KEEP_IMAGE else {}
            build_image(engine, name, size.blob_bytes, labels)

    _parallel(repository, size.repositories, threads=2)


def build_cache(engine: Engine, size: Size) -> None:
    """BuildKit builds whose images are removed again: their build cache stays."""
    for i in range(size.cache_builds):
        with tempfile.TemporaryDirectory(prefix="bench-cache-") as tmp:
            ctx = Path(tmp)
            steps = (
                f"RUN head -c {size.blob_bytes} /dev/urandom > /cache-{secrets.token_hex(6)}\n"
                f"RUN echo {secrets.token_hex(6)} > /step2\n"
            )
            (ctx / "Dockerfile").write_text(f"FROM {BASE_IMAGE}\n{steps}")
            tag = f"bench/cache:{i}"
            engine.docker(
                "build", "-q", "--network=none", "-t", tag, str(ctx),
                extra={"DOCKER_BUILDKIT": "1"},
            )  # fmt: skip
            engine.docker("rmi", tag)


def named_volumes(engine: Engine, size: Size) -> None:
    """data-NN: the first `db_volumes` hold a database's marker file, all a small file."""
    mounts: list[str] = []
    script: list[str] = []
    for n in range(size.named_volumes):
        name = f"data-{n:02d}"
        db = n < size.db_volumes
        role = "db" if db else "named"
        engine.docker("volume", "create", "--label", f"{ROLE}={role}", name)
        mounts += ["-v", f"{name}:/v{n}"]
        script.append(f"head -c {size.file_bytes} /dev/urandom > /v{n}/payload")
        if db:
            script.append(f"echo 13 > /v{n}/{DB_FILES[n % len(DB_FILES)]}")
    engine.docker("run", "--rm", "--network", "none", *mounts, BASE_IMAGE, "sh", "-c",
                  " && ".join(script))  # fmt: skip


def protected_objects(engine: Engine, size: Size) -> None:
    """What no tool should remove: running containers (and their image and volumes), a
    container, a volume and an image labelled bilge.keep, and exited containers whose
    anonymous volume holds a database's files."""
    for name, image, volume in RUNNING:
        engine.docker(
            "create", "--name", name, "--network", "none", "--label", f"{ROLE}=running",
            "-v", f"{volume}:/data", image, "sleep", "1000000000",
        )  # fmt: skip
    engine.docker("volume", "create", "--label", f"{KEEP_LABEL}=true")
    engine.docker(
        "run", "--name", "keep-me", "--network", "none", "--label", f"{KEEP_LABEL}=true",
        "-v", "/data", BASE_IMAGE, "sh", "-c", f"head -c {size.file_bytes} /dev/urandom > /data/x",
    )  # fmt: skip
    for i in range(DBTRAP_CONTAINERS):
        engine.docker(
            "run", "--name", f"old-postgres-{i}", "--network", "none",
            "--label", f"{ROLE}=dbtrap", "-v", "/var/lib/postgresql/data", BASE_IMAGE,
            "sh", "-c", "echo 13 > /var/lib/postgresql/data/PG_VERSION",
        )  # fmt: skip


def build_crowded(engine: Engine, size: Size) -> None:
    """The crowded host (see the module's docstring)."""
    build_images(engine, size)
    build_cache(engine, size)
    named_volumes(engine, size)
    protected_objects(engine, size)
    with engine.api() as api:
        exited_with_volume(api, size.orphan_volumes, size.file_bytes, {}, keep_container=False)
        garbage = {ROLE: "garbage"}
        exited_with_volume(api, size.containers, size.file_bytes, garbage, keep_container=True)


def add_planning_volumes(engine: Engine, size: Size) -> None:
    """Named volumes plan-NN of `plan_files` small files each (kept by every tool's
    settings but docker's and custodian's volume prune, which these runs do not use)."""
    for n in range(size.plan_volumes):
        name = f"plan-{n:02d}"
        engine.docker("volume", "create", "--label", f"{ROLE}=named", name)
        script = f"i=0; while [ $i -lt {size.plan_files} ]; do echo $i > /v/f$i; i=$((i+1)); done"
        engine.docker("run", "--rm", "--network", "none", "-v", f"{name}:/v", BASE_IMAGE,
                      "sh", "-c", script)  # fmt: skip


def build_removal(engine: Engine, size: Size) -> None:
    with engine.api() as api:
        exited_with_volume(
            api, size.removal_containers, size.file_bytes, {ROLE: "garbage"}, keep_container=True
        )


def prepare(engine: Engine) -> None:
    """What a saved state loses on its way to disk: the running containers run again
    (stopping the engine stopped them)."""
    names = [name for name, _, _ in RUNNING]
    present = engine.docker("ps", "-aq", "--filter", f"label={ROLE}=running").stdout.split()
    if present:
        engine.docker("start", *names)


# --- what is on the host --------------------------------------------------------------


@dataclass(frozen=True)
class Inventory:
    """The engine's objects at one moment, by kind: id (volumes: name) -> what matters."""

    containers: Mapping[str, Mapping[str, Any]]
    volumes: Mapping[str, Mapping[str, str]]
    images: Mapping[str, Mapping[str, Any]]
    build_cache: frozenset[str] = field(default_factory=frozenset)

    def keys(self) -> dict[str, set[str]]:
        return {
            "containers": set(self.containers),
            "volumes": set(self.volumes),
            "images": set(self.images),
            "build cache": set(self.build_cache),
        }


def inventory(engine: Engine, *, build_cache: bool) -> Inventory:
    """List the engine's objects (the build cache only through /system/df, which also
    sizes everything: asked only when needed)."""
    with engine.api() as api:
        containers = {
            c["Id"]: {
                "name": c["Names"][0].lstrip("/"),
                "state": c["State"],
                "labels": c.get("Labels") or {},
                "image": c.get("ImageID", ""),
                "volumes": [m["Name"] for m in c.get("Mounts") or [] if m.get("Type") == "volume"],
            }
            for c in api.containers(all=True)
        }
        volumes = {v["Name"]: v.get("Labels") or {} for v in api.volumes().get("Volumes") or []}
        images = {
            i["Id"]: {"tags": i.get("RepoTags") or [], "labels": i.get("Labels") or {}}
            for i in api.images()
        }
        cache = (
            frozenset(r["ID"] for r in (api.df().get("BuildCache") or []))
            if build_cache
            else frozenset()
        )
    return Inventory(containers, volumes, images, cache)


def removed(before: Inventory, after: Inventory) -> dict[str, set[str]]:
    """What went, by kind."""
    now = after.keys()
    return {kind: keys - now[kind] for kind, keys in before.keys().items()}


def precious(inv: Inventory) -> dict[str, set[tuple[str, str]]]:
    """What no tool should remove, by why: (kind, key) pairs."""
    running = {cid: c for cid, c in inv.containers.items() if c["state"] == "running"}
    dbtrap = [c for c in inv.containers.values() if c["labels"].get(ROLE) == "dbtrap"]
    keep = [("containers", k) for k, c in inv.containers.items() if KEEP_LABEL in c["labels"]]
    keep += [("volumes", k) for k, labels in inv.volumes.items() if KEEP_LABEL in labels]
    keep += [("images", k) for k, i in inv.images.items() if KEEP_LABEL in i["labels"]]
    return {
        "named volumes": {("volumes", n) for n in inv.volumes if not _ANONYMOUS.fullmatch(n)},
        "database volumes": {
            ("volumes", n) for n, lab in inv.volumes.items() if lab.get(ROLE) == "db"
        }
        | {("volumes", v) for c in dbtrap for v in c["volumes"]},
        "keep-labelled": set(keep),
        "in use": {("containers", cid) for cid in running}
        | {("volumes", v) for c in running.values() for v in c["volumes"]}
        | {("images", c["image"]) for c in running.values()},
    }


def data_lost(before: Inventory, gone: Mapping[str, Iterable[str]]) -> dict[str, int]:
    """How many precious objects of each sort a tool removed."""
    went = {(kind, key) for kind, keys in gone.items() for key in keys}
    return {why: len(objects & went) for why, objects in precious(before).items()}
