from __future__ import annotations

from datetime import UTC, datetime

from bilge.model import (
    Action,
    BuildCacheRecord,
    Container,
    EngineInfo,
    Image,
    Kind,
    Plan,
    Snapshot,
    Volume,
    VolumeContents,
)
from bilge.planner.summary import KindUsage, SizedObject, image_bytes, largest, usage_by_kind

T0 = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)
ENGINE = EngineInfo("unix:///d.sock", "1.41", "20.10.24", "/var/lib/docker", "overlay2", True)


def container(name: str, size_rw: int = 0, log_bytes: int = 0) -> Container:
    return Container(
        id=f"c-{name}",
        name=name,
        image_id="sha256:aaa",
        image="app:1",
        state="exited",
        created=T0,
        finished=T0,
        size_rw=size_rw,
        log_bytes=log_bytes,
    )


def volume(name: str, size: int | None) -> Volume:
    return Volume(name, "local", False, T0, f"/v/{name}", VolumeContents(True, size))


def snapshot() -> Snapshot:
    return Snapshot(
        taken_at=T0,
        engine=ENGINE,
        containers=(container("web", 100, 7000), container("db", 50)),
        images=(
            Image("sha256:aaa", ("app:1",), (), T0, layers=("L1", "L2"), size=1300),
            Image("sha256:bbb", ("app:2",), (), T0, layers=("L1", "L3"), size=1500),
        ),
        layers={"L1": 1000, "L2": 300, "L3": 500},
        volumes=(volume("data", 4000), volume("unknown", None)),
        build_cache=(BuildCacheRecord("b1", "regular", "RUN make", False, False, 200, T0, None),),
    )


def action(kind: Kind, size: int) -> Action:
    return Action(kind, f"id-{size}", f"n-{size}", "old", size, "unused", "fp")


def test_rows_in_order_with_distinct_layers_counted_once() -> None:
    rows = usage_by_kind(snapshot(), None)
    assert rows == (
        KindUsage("images", 2, 1800, 0, 0),
        KindUsage("containers", 2, 150, 0, 0),
        KindUsage("logs", 1, 7000, 0, 0),
        KindUsage("volumes", 2, 4000, 0, 0),
        KindUsage("build cache", 1, 200, 0, 0),
    )


def test_reclaimable_comes_from_the_plan_actions_by_kind() -> None:
    plan = Plan(
        created_at=T0,
        host="h",
        actions=(
            action(Kind.CONTAINER, 7100),
            action(Kind.VOLUME, 4000),
            action(Kind.IMAGE, 500),
            action(Kind.IMAGE, 300),
            action(Kind.NETWORK, 0),
        ),
    )
    rows = {r.kind: r for r in usage_by_kind(snapshot(), plan)}
    assert (rows["images"].reclaimable_bytes, rows["images"].reclaimable_count) == (800, 2)
    # A container action's bytes include its log: they count under containers.
    assert (rows["containers"].reclaimable_bytes, rows["containers"].reclaimable_count) == (7100, 1)
    assert rows["logs"].reclaimable_bytes == 0
    assert rows["volumes"].reclaimable_count == 1
    assert rows["build cache"].reclaimable_bytes == 0


def test_empty_snapshot_has_five_zero_rows() -> None:
    rows = usage_by_kind(Snapshot(taken_at=T0, engine=ENGINE), None)
    assert [r.kind for r in rows] == ["images", "containers", "logs", "volumes", "build cache"]
    assert all(r.bytes == r.count == 0 for r in rows)


def test_images_without_known_layers_fall_back_to_engine_size() -> None:
    snap = Snapshot(
        taken_at=T0,
        engine=ENGINE,
        images=(
            Image("sha256:aaa", ("a:1",), (), T0, layers=("L1",), size=900),
            Image("sha256:bbb", ("b:1",), (), T0, layers=("X",), size=250),
        ),
        layers={"L1": 800},
    )
    assert image_bytes(snap) == 800 + 250


def test_largest_lists_logs_separately_largest_first() -> None:
    assert largest(snapshot(), 3) == (
        SizedObject("log", "web", 7000),
        SizedObject("volume", "data", 4000),
        SizedObject("image", "app:2", 1500),
    )


def test_largest_names_dangling_images_by_short_id() -> None:
    snap = Snapshot(
        taken_at=T0,
        engine=ENGINE,
        images=(Image("sha256:0123456789abcdef", (), (), T0, size=10),),
    )
    assert largest(snap) == (SizedObject("image", "0123456789ab", 10),)
