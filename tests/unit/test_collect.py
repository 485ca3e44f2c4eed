"""collect() against the fake engine: parsing, remote fallbacks, bad answers."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from bilge.collect.snapshot import collect
from bilge.errors import EngineError
from tests.unit.fake_engine import FakeEngine

NOW = datetime(2026, 1, 1, 12, tzinfo=UTC)
ANON = "a" * 64


def crowded() -> FakeEngine:
    return FakeEngine(
        container_list=[
            {
                "Id": "c1" * 32,
                "Names": ["/web-1"],
                "Image": "app:1",
                "ImageID": "sha256:i1",
                "State": "exited",
                "Status": "Exited (0) 3 hours ago",
                "Created": int((NOW - timedelta(days=1)).timestamp()),
                "Labels": {"team": "x"},
                "Mounts": [{"Type": "volume", "Name": ANON, "Destination": "/data"}],
                "NetworkSettings": {"Networks": {"none": {"NetworkID": "n0"}}},
                "SizeRw": 1234,
            }
        ],
        image_list=[
            {
                "Id": "sha256:i1",
                "RepoTags": ["app:1"],
                "RepoDigests": None,
                "Created": int((NOW - timedelta(days=2)).timestamp()),
                "Size": 5000,
                "SharedSize": -1,
                "Labels": None,
                "ParentId": "",
            },
            {"Id": "sha256:i2", "RepoTags": ["<none>:<none>"], "Created": 1, "Size": 10},
        ],
        volume_list=[
            {"Name": ANON, "Driver": "local", "CreatedAt": "2025-12-31T12:00:00Z"},
            {"Name": "pgdata", "Driver": "local", "CreatedAt": "2025-12-31T12:00:00Z"},
            {"Name": "empty", "Driver": "local", "CreatedAt": "2025-12-31T12:00:00Z"},
        ],
        network_list=[
            {"Id": "n0", "Name": "none", "Created": "2025-12-01T00:00:00.123456789Z"},
        ],
        df={
            "Images": [{"Id": "sha256:i1", "SharedSize": 2000}],
            "Volumes": [
                {"Name": "pgdata", "UsageData": {"Size": 999, "RefCount": 0}},
                {"Name": "empty", "UsageData": {"Size": 0, "RefCount": 0}},
            ],
            "BuildCache": [
                {
                    "ID": "bc1",
                    "Type": "regular",
                    "Description": "mount / from exec",
                    "InUse": False,
                    "Shared": True,
                    "Size": 300,
                    "CreatedAt": "2025-12-30T00:00:00.5Z",
                    "LastUsedAt": "2025-12-31T00:00:00Z",
                    "UsageCount": 2,
                }
            ],
        },
    )


def test_a_remote_host_is_read_from_list_calls_only() -> None:
    engine = crowded()
    snap = collect(engine, NOW)
    assert not snap.engine.local and snap.filesystem is None
    assert engine.inspected == []  # never one inspect per object for a listing
    (c,) = snap.containers
    assert (c.name, c.state, c.size_rw, c.volume_names) == ("web-1", "exited", 1234, (ANON,))
    assert c.finished == NOW - timedelta(hours=3)  # a lower bound of the age
    assert c.networks == ("n0",)


def test_images_without_the_data_root_count_only_their_unique_bytes() -> None:
    snap = collect(crowded(), NOW)
    i1, i2 = snap.images
    assert i1.tags == ("app:1",) and i2.dangling
    assert [snap.layers[layer] for layer in i1.layers] == [3000]


def test_unseen_volumes_hold_data_unless_the_engine_says_they_are_empty() -> None:
    volumes = {v.name: v for v in collect(crowded(), NOW).volumes}
    assert volumes[ANON].anonymous and not volumes["pgdata"].anonymous
    assert volumes["pgdata"].contents.holds_data  # 999 bytes bilge cannot see
    assert volumes[ANON].contents.holds_data  # size unknown
    assert not volumes["empty"].contents.holds_data


def test_a_volume_with_a_device_option_is_never_judged_by_its_folder() -> None:
    engine = crowded()
    engine.volume_list.append(
        {"Name": "nfs", "Driver": "local", "Options": {"type": "nfs", "device": ":/srv"}}
    )
    nfs = next(v for v in collect(engine, NOW).volumes if v.name == "nfs")
    assert not nfs.contents.visible and nfs.contents.holds_data


def test_build_cache_and_networks_are_parsed() -> None:
    snap = collect(crowded(), NOW)
    (rec,) = snap.build_cache
    assert (rec.id, rec.shared, rec.size, rec.usage_count) == ("bc1", True, 300, 2)
    assert rec.created == datetime(2025, 12, 30, 0, 0, 0, 500000, tzinfo=UTC)
    assert snap.networks[0].builtin


@pytest.mark.parametrize(
    ("mangle", "message"),
    [
        (lambda e: e.container_list.append({"Names": ["/x"]}), "container"),
        (lambda e: e.container_list.append("nonsense"), "unexpected answer"),
        (lambda e: e.image_list.append({"Id": "sha256:x", "Created": "yesterday"}), "image"),
        (lambda e: e.volume_list.append({"Driver": "local"}), "volume"),
        (lambda e: e.df["BuildCache"].append({"ID": "b", "CreatedAt": None}), "build cache"),
    ],
)
def test_a_malformed_engine_answer_is_one_clear_error(mangle, message) -> None:  # type: ignore[no-untyped-def]
    engine = crowded()
    mangle(engine)
    with pytest.raises(EngineError, match=message) as info:
        collect(engine, NOW)
    assert "\n" not in str(info.value)


def test_a_never_started_container_still_claims_its_network_by_name() -> None:
    engine = crowded()
    engine.network_list.append({"Id": "n1", "Name": "busy", "Created": "2025-12-01T00:00:00Z"})
    engine.container_list[0]["NetworkSettings"] = {"Networks": {"busy": {"NetworkID": ""}}}
    (c,) = collect(engine, NOW).containers
    assert c.networks == ("n1",)
