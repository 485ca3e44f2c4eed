"""The engine module against the real engine: both transports give the same answers
and the same errors, and the data-root prefetch changes nothing in a snapshot (on
Docker and on Podman)."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from bilge.collect.prefetch import Prefetch
from bilge.collect.snapshot import collect
from bilge.engine.connect import open_engine
from bilge.engine.docker import DockerEngine, buildkit
from bilge.engine.transport import SdkHTTP, UnixHTTP
from bilge.errors import EngineUnreachable, ObjectConflict, ObjectGone
from bilge.model import Snapshot, VolumeContents
from bilge.timeparse import parse_time
from tests.integration.helpers import Sandbox, build_image, make_volume, run_container

TRANSPORTS = ["stdlib", "docker-py"]


@pytest.fixture(params=TRANSPORTS)
def api(request: pytest.FixtureRequest, engine: Sandbox) -> Iterator[DockerEngine]:
    if request.param == "stdlib":
        transport: UnixHTTP | SdkHTTP = UnixHTTP(engine.host, timeout=30)
    else:
        transport = SdkHTTP(engine.host, timeout=30, pool_size=4)
    eng = DockerEngine(engine.host, transport=transport)
    yield eng
    eng.close()


def test_the_api_version_is_negotiated(api: DockerEngine) -> None:
    assert api.api_version == api.version()["ApiVersion"]
    assert tuple(int(p) for p in api.api_version.split(".")) >= (1, 41)


def test_listings_name_what_exists(engine: Sandbox, api: DockerEngine) -> None:
    cid = run_container(engine, name="listed", volumes=["/scratch"])
    make_volume(engine, "listed-volume")
    assert cid in {c["Id"] for c in api.containers(size=False)}
    assert "listed-volume" in {v["Name"] for v in api.volumes()}
    assert any("bilge-sandbox/busybox:latest" in (i["RepoTags"] or []) for i in api.images())
    assert {"none", "host"} <= {n["Name"] for n in api.networks()}
    assert api.containers_using(volume="listed-volume") == []
    anonymous = api.inspect_container(cid)["Mounts"][0]["Name"]
    assert api.containers_using(volume=anonymous) == [cid]


def test_a_missing_object_is_gone(api: DockerEngine) -> None:
    with pytest.raises(ObjectGone):
        api.inspect_container("0" * 64)
    with pytest.raises(ObjectGone):
        api.remove_volume("no-such-volume")
    with pytest.raises(ObjectGone):
        api.remove_image("no-such/image:tag")


def test_removing_something_in_use_is_a_conflict(engine: Sandbox, api: DockerEngine) -> None:
    cid = run_container(engine, state="running", volumes=["busy:/data"])
    with pytest.raises(ObjectConflict, match="running"):
        api.remove_container(cid)
    with pytest.raises(ObjectConflict):
        api.remove_volume("busy")
    assert api.inspect_container(cid)["State"]["Running"] is True


def test_removal_takes_anonymous_volumes_only_when_asked(
    engine: Sandbox, api: DockerEngine
) -> None:
    keep = run_container(engine, volumes=["/a"])
    take = run_container(engine, volumes=["/b"])
    kept_volume = api.inspect_container(keep)["Mounts"][0]["Name"]
    taken_volume = api.inspect_container(take)["Mounts"][0]["Name"]
    api.remove_container(keep)
    api.remove_container(take, volumes=True)
    names = {v["Name"] for v in api.volumes()}
    assert kept_volume in names and taken_volume not in names


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_a_dead_socket_is_one_clear_error(tmp_path: object, transport: str) -> None:
    host = "unix:///nonexistent/bilge/docker.sock"
    with pytest.raises(EngineUnreachable, match="cannot connect") as caught:
        if transport == "stdlib":
            DockerEngine(host)
        else:
            DockerEngine(host, transport=SdkHTTP(host, timeout=5, pool_size=1))
    assert "\n" not in str(caught.value)


def _normal(snap: Snapshot) -> Snapshot:
    """The engine lists objects in no fixed order: compare them sorted. The free
    space differs between two readings anyway, and so does the time of each."""
    return dataclasses.replace(
        snap,
        taken_at=datetime(2026, 1, 1, tzinfo=UTC),
        filesystem=None,
        containers=tuple(sorted(snap.containers, key=lambda c: c.id)),
        images=tuple(sorted(snap.images, key=lambda i: i.id)),
        volumes=tuple(sorted(snap.volumes, key=lambda v: v.name)),
        networks=tuple(sorted(snap.networks, key=lambda n: n.id)),
        build_cache=tuple(sorted(snap.build_cache, key=lambda r: r.id)),
    )


@pytest.mark.parametrize("readers", [1, 3])
def test_the_prefetched_data_root_gives_the_same_snapshot(
    either_engine: Sandbox, readers: int
) -> None:
    """On Docker and on Podman (whose readers are told where its storage is)."""
    engine = either_engine
    run_container(engine, volumes=["/scratch"], write={"/scratch/f": 300_000, "/layer": 70_000})
    run_container(engine, state="running", volumes=["pg:/var/lib/postgresql/data"],
                  write={"/var/lib/postgresql/data/PG_VERSION": b"15\n"})  # fmt: skip
    make_volume(engine, "plain", files={"blob": 120_000})
    eng = open_engine(engine.host)
    now = datetime.now(UTC)
    prefetch = Prefetch.start(engine.host, readers)
    assert prefetch is not None
    with_child = collect(eng, now, prefetch=prefetch)
    read_ahead = prefetch.facts(with_child.engine.data_root, with_child.engine.storage_driver)
    assert read_ahead is not None and len(read_ahead.containers) == 2  # the readers' answers
    alone = collect(eng, now)
    assert with_child.engine.local
    assert with_child.taken_at > now  # listed by the prefetch's thread, started after `now`
    assert _normal(with_child) == _normal(alone)
    pg = next(v for v in with_child.volumes if v.name == "pg")
    assert pg.contents.data_markers


def test_buildkit_lists_the_build_cache_that_system_df_lists(engine: Sandbox) -> None:
    """On API 1.41 the build cache comes from BuildKit's own API (buildkit.py), not
    from /system/df: the same records, without the engine walking every volume."""
    build_image(engine, "bilge-test/bk:1", size=50_000, buildkit=True)
    build_image(engine, "bilge-test/bk:2", size=20_000, buildkit=True)
    http = UnixHTTP(engine.host, timeout=60)
    status, body = http.request("GET", "/v1.41/system/df")
    assert status == 200
    by_df = {r["ID"]: r for r in json.loads(body)["BuildCache"]}
    by_api = {r["ID"]: r for r in buildkit.disk_usage(engine.host.removeprefix("unix://"))}
    assert by_df and by_api.keys() == by_df.keys()
    for rid, rec in by_api.items():
        want = by_df[rid]
        for key in ("Type", "Description", "InUse", "Shared", "Size", "UsageCount", "Parent"):
            assert rec[key] == want[key], key
        for key in ("CreatedAt", "LastUsedAt"):
            assert parse_time(rec.get(key)) == parse_time(want.get(key)), key
    eng = DockerEngine(engine.host)
    only = eng.system_df(build_cache_only=True)
    assert set(only) == {"BuildCache"}  # /system/df would also list volumes and containers
    assert {r["ID"] for r in only["BuildCache"]} == by_df.keys()


def test_the_prefetch_may_leave_named_volumes_unread(either_engine: Sandbox) -> None:
    engine = either_engine
    run_container(engine, volumes=["/scratch"], write={"/scratch/f": 300_000})
    make_volume(engine, "plain", files={"blob": 120_000})
    eng = open_engine(engine.host)
    prefetch = Prefetch.start(engine.host, 2, skip_named=True)
    assert prefetch is not None
    unread = collect(eng, datetime.now(UTC), prefetch=prefetch)
    whole = collect(eng, datetime.now(UTC))
    plain = next(v for v in unread.volumes if v.name == "plain")
    assert plain.contents == VolumeContents(visible=False, bytes=None)
    assert plain.contents.holds_data  # not seen is never taken for empty
    whole_plain = next(v for v in whole.volumes if v.name == "plain")
    assert whole_plain.contents.bytes is not None and whole_plain.contents.bytes > 120_000
    anonymous = {v.name: v for v in unread.volumes if v.anonymous}
    assert anonymous and anonymous == {v.name: v for v in whole.volumes if v.anonymous}
