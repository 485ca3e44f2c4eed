"""The guard's eviction: cheapest loss first, just enough, in the plan's order."""

from __future__ import annotations

from dataclasses import replace

from bilge.config.policy import parse_policy
from bilge.model import Filesystem, Kind, Snapshot
from bilge.planner.core import plan
from bilge.planner.eviction import Target, above, select, target
from tests.unit.snapshots import NOW, ago, cache, container, image, snapshot, volume

MB = 1000**2
ZERO = parse_policy(
    '[containers]\nexited_after = "0s"\n[volumes]\nanonymous_after = "0s"\n'
    '[images]\ndangling_after = "0s"\nunused_after = "0s"\nkeep_recent = 0\n'
    '[build_cache]\nkeep_storage = "0B"\nunused_after = "0s"\n',
    "t",
)


def crowded() -> Snapshot:
    return snapshot(
        containers=[
            container("job", volumes=["anon-1"], size_rw=20 * MB),
            container("web", state="running", image_id="sha256:web"),
        ],
        images=[
            image("sha256:web", "web:1", layers=["l-web"]),
            image("sha256:old", "app:1", layers=["l-old"], created=ago(days=90)),
            image(
                "sha256:new", "app:2", layers=["l-new"], created=ago(days=40), last_used=ago(days=1)
            ),
            image(
                "sha256:lru",
                "tool:1",
                layers=["l-lru"],
                created=ago(days=5),
                last_used=ago(days=30),
            ),
            image("sha256:dangling", layers=["l-dang"]),
        ],
        layers={
            "l-web": 5 * MB,
            "l-old": 50 * MB,
            "l-new": 50 * MB,
            "l-lru": 50 * MB,
            "l-dang": 30 * MB,
        },
        volumes=[
            volume("anon-1", anonymous=True, bytes=10 * MB),
            volume("anon-2", anonymous=True, bytes=10 * MB),
        ],
        build_cache=[cache("bc", size=40 * MB)],
    )


def chosen(goal_bytes: int) -> list[tuple[Kind, str]]:
    snap = crowded()
    p = plan(snap, ZERO, NOW)
    return [(a.kind, a.id) for a in select(p, snap, Target(goal_bytes, 0))]


def test_build_cache_goes_first_and_nothing_more_when_it_is_enough() -> None:
    assert chosen(30 * MB) == [(Kind.BUILD_CACHE, "bc")]


def test_then_dangling_images_then_containers_with_their_volumes() -> None:
    assert chosen(70 * MB) == [(Kind.IMAGE, "sha256:dangling"), (Kind.BUILD_CACHE, "bc")]
    got = chosen(75 * MB)
    assert (Kind.CONTAINER, "job-id") in got and (Kind.VOLUME, "anon-1") in got
    assert (Kind.VOLUME, "anon-2") not in got


def test_unused_images_go_least_recently_used_first() -> None:
    # 110 MB of everything cheaper, then images by last use: "old" (created 90 days
    # ago, never seen used) before "lru" (used 30 days ago) before "new" (yesterday).
    def images(goal: int) -> list[str]:
        return [i for k, i in chosen(goal) if k is Kind.IMAGE and i != "sha256:dangling"]

    assert images(150 * MB) == ["sha256:old"]
    assert set(images(200 * MB)) == {"sha256:old", "sha256:lru"}
    assert "sha256:web" not in images(10**12)


def test_the_order_is_the_plans_containers_before_volumes() -> None:
    got = chosen(10**12)
    kinds = [k for k, _ in got]
    assert kinds.index(Kind.CONTAINER) < kinds.index(Kind.VOLUME) < kinds.index(Kind.IMAGE)


def test_ties_in_last_use_go_by_first_seen() -> None:
    snap = snapshot(
        images=[
            image("sha256:a", "a:1", layers=["la"], last_used=ago(days=9)),
            image("sha256:b", "b:1", layers=["lb"], last_used=ago(days=9)),
        ],
        layers={"la": MB, "lb": MB},
    )
    snap = replace(
        snap,
        images=(
            replace(snap.images[0], first_seen=ago(days=20)),
            replace(snap.images[1], first_seen=ago(days=30)),
        ),
    )
    got = select(plan(snap, ZERO, NOW), snap, Target(MB, 0))
    assert [a.id for a in got] == ["sha256:b"]


def test_an_inode_target_counts_inodes() -> None:
    snap = snapshot(volumes=[volume("v1", anonymous=True), volume("v2", anonymous=True)])
    snap = replace(
        snap,
        volumes=tuple(replace(v, contents=replace(v.contents, inodes=500)) for v in snap.volumes),
    )
    got = select(plan(snap, ZERO, NOW), snap, Target(0, 400))
    assert [a.id for a in got] == ["v1"]


def test_targets_and_watermarks() -> None:
    fs = Filesystem("/d", 1000, 100, 100, 50)  # 90% bytes, 50% inodes
    assert above(fs, 0.85, 0.9) and not above(fs, 0.95, 0.9)
    assert target(fs, 0.75, 0.8) == Target(150, 0)
    assert target(fs, 0.95, 0.4) == Target(0, 10)
    assert Target(0, 0).reached and not Target(1, 0).reached
