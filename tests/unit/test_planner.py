"""The planner as tables: a snapshot in, the decision and reason for each object out."""

from __future__ import annotations

import ast
import copy
import gc
import inspect
from datetime import timedelta
from types import ModuleType
from typing import Any

import pytest

import bilge.planner.build_cache
import bilge.planner.containers
import bilge.planner.core
import bilge.planner.decision
import bilge.planner.images
import bilge.planner.networks
import bilge.planner.reclaim
import bilge.planner.volumes
from bilge.config.policy import (
    BuildCachePolicy,
    ContainersPolicy,
    ImagesPolicy,
    Policy,
    VolumesPolicy,
)
from bilge.model import Kind, Plan, Snapshot
from bilge.planner.core import PRECONDITIONS, plan
from tests.unit.snapshots import (
    COUCH_MARKER,
    KEEP,
    NOW,
    PG_MARKER,
    ago,
    cache,
    container,
    image,
    network,
    snapshot,
    volume,
)

DEFAULT = Policy()
NAMED = Policy(volumes=VolumesPolicy(named=True))
ANON = "a" * 60 + "0001"  # an anonymous volume's name, as the engine makes them

C, V, IMG, N, B = Kind.CONTAINER, Kind.VOLUME, Kind.IMAGE, Kind.NETWORK, Kind.BUILD_CACHE
REMOVE, KEEP_ = "remove", "keep"


def decisions(p: Plan) -> dict[tuple[Kind, str], tuple[str, str]]:
    """(kind, id) -> ("remove" | "keep", reason)."""
    out = {(a.kind, a.id): (REMOVE, a.reason) for a in p.actions}
    out.update({(k.kind, k.id): (KEEP_, k.reason) for k in p.kept})
    return out


Expected = dict[tuple[Kind, str], tuple[str, str]]

CASES: list[tuple[str, Snapshot, Policy, Expected]] = [
    # --- containers ---
    (
        "exited long enough ago",
        snapshot(containers=[container("web-1", finished=ago(days=3))]),
        DEFAULT,
        {(C, "web-1-id"): (REMOVE, "exited 3d ago (exited_after 1d)")},
    ),
    (
        "exited recently",
        snapshot(containers=[container("web-1", finished=ago(hours=3))]),
        DEFAULT,
        {(C, "web-1-id"): (KEEP_, "exited 3h ago, too young (exited_after 1d)")},
    ),
    (
        "exited, stop time unknown: age from creation",
        snapshot(containers=[container("web-1", created=ago(days=2))]),
        DEFAULT,
        {(C, "web-1-id"): (REMOVE, "exited, created 2d ago (exited_after 1d)")},
    ),
    (
        "dead",
        snapshot(containers=[container("web-1", state="dead", finished=ago(days=2, hours=5))]),
        DEFAULT,
        {(C, "web-1-id"): (REMOVE, "dead, stopped 2d 5h ago (exited_after 1d)")},
    ),
    (
        "exited_after from the policy",
        snapshot(containers=[container("web-1", finished=ago(hours=3))]),
        Policy(containers=ContainersPolicy(exited_after=timedelta(hours=1))),
        {(C, "web-1-id"): (REMOVE, "exited 3h ago (exited_after 1h)")},
    ),
    (
        "created, never started",
        snapshot(containers=[container("job", state="created", created=ago(days=2))]),
        DEFAULT,
        {(C, "job-id"): (REMOVE, "created 2d ago, never started (created_after 1d)")},
    ),
    (
        "created recently",
        snapshot(containers=[container("job", state="created", created=ago(hours=2))]),
        DEFAULT,
        {(C, "job-id"): (KEEP_, "created 2h ago, never started, too young (created_after 1d)")},
    ),
    (
        "keep label, any value",
        snapshot(containers=[container("web-1", finished=ago(days=9), labels={KEEP: ""})]),
        DEFAULT,
        {(C, "web-1-id"): (KEEP_, "labelled bilge.keep")},
    ),
    (
        "keep label named by the policy",
        snapshot(containers=[container("web-1", finished=ago(days=9), labels={"x.keep": "1"})]),
        Policy(keep_label="x.keep"),
        {(C, "web-1-id"): (KEEP_, "labelled x.keep")},
    ),
    (
        "keep_names glob",
        snapshot(containers=[container("web-1", finished=ago(days=9))]),
        Policy(containers=ContainersPolicy(keep_names=("db-*", "web-*"))),
        {(C, "web-1-id"): (KEEP_, "web-1 matches containers.keep_names 'web-*'")},
    ),
    (
        "a state bilge does not know",
        snapshot(containers=[container("odd", state="zombie", finished=ago(days=9))]),
        DEFAULT,
        {(C, "odd-id"): (KEEP_, "state 'zombie' is neither exited nor created")},
    ),
    (
        "rule 4: postgres container and its anonymous data volume both stay",
        snapshot(
            containers=[container("pg-1", finished=ago(days=30), volumes=[ANON])],
            volumes=[volume(ANON, anonymous=True, markers=[PG_MARKER], bytes=40_000_000)],
        ),
        DEFAULT,
        {
            (C, "pg-1-id"): (
                KEEP_,
                "owns anonymous volume aaaaaaaaaaaa holding database data (postgres: PG_VERSION)",
            ),
            (V, ANON): (KEEP_, f"in use by container pg-1; holds database data: {PG_MARKER}"),
        },
    ),
    (
        "rule 4: an anonymous volume bilge cannot see counts as data",
        snapshot(
            containers=[container("pg-1", finished=ago(days=30), volumes=[ANON])],
            volumes=[volume(ANON, anonymous=True, visible=False, bytes=None)],
        ),
        DEFAULT,
        {
            (C, "pg-1-id"): (
                KEEP_,
                "owns anonymous volume aaaaaaaaaaaa holding database data (contents not visible)",
            ),
            (V, ANON): (KEEP_, "in use by container pg-1"),
        },
    ),
    # --- volumes ---
    (
        "anonymous volume of a removed container",
        snapshot(
            containers=[container("web-1", finished=ago(days=3), volumes=[ANON])],
            volumes=[volume(ANON, anonymous=True, created=ago(hours=1), bytes=5)],
        ),
        DEFAULT,
        {
            (C, "web-1-id"): (REMOVE, "exited 3d ago (exited_after 1d)"),
            (V, ANON): (REMOVE, "anonymous volume of removed container web-1"),
        },
    ),
    (
        "a running container's anonymous volume",
        snapshot(
            containers=[container("web-1", state="running", volumes=[ANON])],
            volumes=[volume(ANON, anonymous=True)],
        ),
        DEFAULT,
        {
            (C, "web-1-id"): (KEEP_, "in use (running)"),
            (V, ANON): (KEEP_, "in use by container web-1"),
        },
    ),
    (
        "a volume shared by a removed and a kept container",
        snapshot(
            containers=[
                container("old", finished=ago(days=3), volumes=[ANON]),
                container("new", finished=ago(hours=1), volumes=[ANON]),
            ],
            volumes=[volume(ANON, anonymous=True)],
        ),
        DEFAULT,
        {
            (C, "old-id"): (REMOVE, "exited 3d ago (exited_after 1d)"),
            (V, ANON): (KEEP_, "in use by container new"),
        },
    ),
    (
        "unreferenced anonymous volume",
        snapshot(volumes=[volume(ANON, anonymous=True, created=ago(days=2))]),
        DEFAULT,
        {(V, ANON): (REMOVE, "unreferenced anonymous volume, created 2d ago (anonymous_after 1d)")},
    ),
    (
        "unreferenced anonymous volume, too young",
        snapshot(volumes=[volume(ANON, anonymous=True, created=ago(hours=2))]),
        DEFAULT,
        {
            (V, ANON): (
                KEEP_,
                "unreferenced anonymous volume, created 2h ago, too young (anonymous_after 1d)",
            )
        },
    ),
    (
        "unreferenced anonymous volume, creation time unknown",
        snapshot(volumes=[volume(ANON, anonymous=True, unknown_creation=True)]),
        DEFAULT,
        {
            (V, ANON): (
                KEEP_,
                "unreferenced anonymous volume, creation time unknown (anonymous_after 1d)",
            )
        },
    ),
    (
        "unreferenced anonymous volume holding data",
        snapshot(volumes=[volume(ANON, anonymous=True, markers=[PG_MARKER])]),
        Policy(volumes=VolumesPolicy(protect_data=False)),
        {(V, ANON): (KEEP_, "holds database data: postgres: PG_VERSION")},
    ),
    (
        "invisible anonymous volume the engine reports non-empty",
        snapshot(volumes=[volume(ANON, anonymous=True, visible=False, bytes=10**9)]),
        DEFAULT,
        {(V, ANON): (KEEP_, "may hold database data: contents not visible")},
    ),
    (
        "invisible anonymous volume the engine reports empty",
        snapshot(volumes=[volume(ANON, anonymous=True, visible=False, bytes=0)]),
        DEFAULT,
        {
            (V, ANON): (
                REMOVE,
                "unreferenced anonymous volume, created 60d ago (anonymous_after 1d)",
            )
        },
    ),
    (
        "named volumes stay by default",
        snapshot(volumes=[volume("uploads")]),
        DEFAULT,
        {(V, "uploads"): (KEEP_, "named volume (volumes.named = false)")},
    ),
    (
        "named volume, opted in",
        snapshot(volumes=[volume("uploads")]),
        NAMED,
        {(V, "uploads"): (REMOVE, "unused named volume, created 60d ago (named_after 30d)")},
    ),
    (
        "named volume, opted in, too young",
        snapshot(volumes=[volume("uploads", created=ago(days=3))]),
        NAMED,
        {
            (V, "uploads"): (
                KEEP_,
                "unused named volume, created 3d ago, too young (named_after 30d)",
            )
        },
    ),
    (
        "named volume of a removed container",
        snapshot(
            containers=[container("web-1", finished=ago(days=3), volumes=["uploads"])],
            volumes=[volume("uploads")],
        ),
        NAMED,
        {
            (V, "uploads"): (
                REMOVE,
                "named volume of removed container web-1, created 60d ago (named_after 30d)",
            )
        },
    ),
    (
        "named volume holding CouchDB files survives named = true",
        snapshot(volumes=[volume("couch", markers=[COUCH_MARKER], bytes=7_000_000)]),
        NAMED,
        {(V, "couch"): (KEEP_, "holds database data: couchdb: _dbs.couch")},
    ),
    (
        "named volume holding data, protect_data off",
        snapshot(volumes=[volume("couch", markers=[COUCH_MARKER])]),
        Policy(volumes=VolumesPolicy(named=True, protect_data=False)),
        {(V, "couch"): (REMOVE, "unused named volume, created 60d ago (named_after 30d)")},
    ),
    (
        "invisible named volume the engine reports non-empty",
        snapshot(volumes=[volume("blob", visible=False, bytes=5)]),
        NAMED,
        {(V, "blob"): (KEEP_, "may hold database data: contents not visible")},
    ),
    (
        "invisible named volume with no size from the engine",
        snapshot(volumes=[volume("blob", visible=False, bytes=None)]),
        NAMED,
        {(V, "blob"): (KEEP_, "may hold database data: contents not visible")},
    ),
    (
        "invisible named volume the engine reports empty",
        snapshot(volumes=[volume("blob", visible=False, bytes=0)]),
        NAMED,
        {(V, "blob"): (REMOVE, "unused named volume, created 60d ago (named_after 30d)")},
    ),
    (
        # The engine walked it and says 0 bytes, but bilge could not read all of it.
        "partly read named volume the engine reports empty",
        snapshot(volumes=[volume("blob", visible=False, bytes=0, unseen="not read below depth 3")]),
        NAMED,
        {
            (V, "blob"): (
                KEEP_,
                "may hold database data: could not read all of it (not read below depth 3)",
            )
        },
    ),
    (
        "partly read anonymous volume of a removed container",
        snapshot(
            containers=[container("job", state="exited", finished=ago(days=3), volumes=[ANON])],
            volumes=[volume(ANON, anonymous=True, visible=False, bytes=0, unseen="x")],
        ),
        Policy(),
        {
            (C, "job-id"): (
                KEEP_,
                "owns anonymous volume aaaaaaaaaaaa holding database data"
                " (could not read all of it (x))",
            ),
            (V, ANON): (KEEP_, "in use by container job"),
        },
    ),
    (
        "keep-labelled volume",
        snapshot(volumes=[volume(ANON, anonymous=True, labels={KEEP: "yes"})]),
        NAMED,
        {(V, ANON): (KEEP_, "labelled bilge.keep")},
    ),
    (
        "volume keep_names glob",
        snapshot(volumes=[volume("cache-npm")]),
        Policy(volumes=VolumesPolicy(named=True, keep_names=("cache-*",))),
        {(V, "cache-npm"): (KEEP_, "cache-npm matches volumes.keep_names 'cache-*'")},
    ),
    # --- images ---
    (
        "image used only by a created container",
        snapshot(
            containers=[container("job", state="created", created=ago(hours=1), image_id="i1")],
            images=[image("i1", "job:1", created=ago(days=90))],
        ),
        Policy(images=ImagesPolicy(keep_recent=0)),
        {(IMG, "i1"): (KEEP_, "in use by container job")},
    ),
    (
        "image of a removed container",
        snapshot(
            containers=[container("web-1", finished=ago(days=3), image_id="i1")],
            images=[image("i1", created=ago(days=90))],
        ),
        DEFAULT,
        {(IMG, "i1"): (REMOVE, "dangling image, created 90d ago (dangling_after 1h)")},
    ),
    (
        "dangling image",
        snapshot(images=[image("sha256:0123456789abcdef", created=ago(hours=5))]),
        DEFAULT,
        {
            (IMG, "sha256:0123456789abcdef"): (
                REMOVE,
                "dangling image, created 5h ago (dangling_after 1h)",
            )
        },
    ),
    (
        "dangling image, too young",
        snapshot(images=[image("i1", created=ago(minutes=20))]),
        DEFAULT,
        {(IMG, "i1"): (KEEP_, "dangling image, created 20m ago, too young (dangling_after 1h)")},
    ),
    (
        "newest of each repository stays, the older goes",
        snapshot(
            images=[
                image("i1", "app:1", created=ago(days=9)),
                image("i2", "app:2", created=ago(days=8)),
                image("i3", "db:1", created=ago(days=20)),
            ]
        ),
        DEFAULT,
        {
            (IMG, "i1"): (REMOVE, "unused for 9d (unused_after 7d)"),
            (IMG, "i2"): (KEEP_, "newest 1 of app"),
            (IMG, "i3"): (KEEP_, "newest 1 of db"),
        },
    ),
    (
        "keep_recent 2",
        snapshot(
            images=[
                image("i1", "app:1", created=ago(days=9)),
                image("i2", "app:2", created=ago(days=8)),
                image("i3", "app:3", created=ago(days=10)),
            ]
        ),
        Policy(images=ImagesPolicy(keep_recent=2)),
        {
            (IMG, "i1"): (KEEP_, "newest 2 of app"),
            (IMG, "i2"): (KEEP_, "newest 2 of app"),
            (IMG, "i3"): (REMOVE, "unused for 10d (unused_after 7d)"),
        },
    ),
    (
        "keep_recent ties broken by id",
        snapshot(
            images=[
                image("i2", "app:2", created=ago(days=9)),
                image("i1", "app:1", created=ago(days=9)),
            ]
        ),
        DEFAULT,
        {
            (IMG, "i1"): (KEEP_, "newest 1 of app"),
            (IMG, "i2"): (REMOVE, "unused for 9d (unused_after 7d)"),
        },
    ),
    (
        "an image in two repositories stays if newest in either",
        snapshot(
            images=[
                image("i1", "app:1", "mirror/app:1", created=ago(days=9)),
                image("i2", "app:2", created=ago(days=8)),
            ]
        ),
        DEFAULT,
        {
            (IMG, "i1"): (KEEP_, "newest 1 of mirror/app"),
            (IMG, "i2"): (KEEP_, "newest 1 of app"),
        },
    ),
    (
        "keep_recent 0",
        snapshot(images=[image("i1", "app:1", created=ago(days=9))]),
        Policy(images=ImagesPolicy(keep_recent=0)),
        {(IMG, "i1"): (REMOVE, "unused for 9d (unused_after 7d)")},
    ),
    (
        "last use preferred to creation",
        snapshot(
            images=[
                image("i1", "app:1", created=ago(days=90), last_used=ago(days=2)),
                image("i2", "app:2", created=ago(days=3), last_used=ago(days=9)),
            ]
        ),
        Policy(images=ImagesPolicy(keep_recent=0)),
        {
            (IMG, "i1"): (KEEP_, "last used 2d ago, too young (unused_after 7d)"),
            (IMG, "i2"): (REMOVE, "unused for 9d (unused_after 7d)"),
        },
    ),
    (
        "creation when never seen used",
        snapshot(images=[image("i1", "app:1", created=ago(days=2))]),
        Policy(images=ImagesPolicy(keep_recent=0)),
        {(IMG, "i1"): (KEEP_, "created 2d ago, too young (unused_after 7d)")},
    ),
    (
        "keep-labelled image",
        snapshot(images=[image("i1", created=ago(days=90), labels={KEEP: ""})]),
        DEFAULT,
        {(IMG, "i1"): (KEEP_, "labelled bilge.keep")},
    ),
    (
        "images.keep glob on repo:tag",
        snapshot(images=[image("i1", "base:1", "app:1", created=ago(days=90))]),
        Policy(images=ImagesPolicy(keep_recent=0, keep=("app:*",))),
        {(IMG, "i1"): (KEEP_, "app:1 matches images.keep 'app:*'")},
    ),
    (
        "parents of a kept image stay, transitively",
        snapshot(
            containers=[container("web", state="running", image_id="i3")],
            images=[
                image("i1", created=ago(days=90)),
                image("i2", "base:1", created=ago(days=90), parent_id="i1"),
                image("i3", created=ago(days=90), parent_id="i2"),
                image("i4", created=ago(days=90), parent_id="i1"),
            ],
        ),
        Policy(images=ImagesPolicy(keep_recent=0)),
        {
            (IMG, "i3"): (KEEP_, "in use by container web"),
            (IMG, "i2"): (KEEP_, "parent of kept image i3"),
            (IMG, "i1"): (KEEP_, "parent of kept image base:1"),
            (IMG, "i4"): (REMOVE, "dangling image, created 90d ago (dangling_after 1h)"),
        },
    ),
    # --- networks ---
    (
        "built-in network",
        snapshot(networks=[network("bridge"), network("host"), network("none")]),
        DEFAULT,
        {
            (N, "bridge-id"): (KEEP_, "built-in network"),
            (N, "host-id"): (KEEP_, "built-in network"),
            (N, "none-id"): (KEEP_, "built-in network"),
        },
    ),
    (
        "unused network",
        snapshot(networks=[network("front", created=ago(days=3))]),
        DEFAULT,
        {(N, "front-id"): (REMOVE, "unused network, created 3d ago (unused_after 1d)")},
    ),
    (
        "unused network, too young",
        snapshot(networks=[network("front", created=ago(hours=3))]),
        DEFAULT,
        {(N, "front-id"): (KEEP_, "unused network, created 3h ago, too young (unused_after 1d)")},
    ),
    (
        "network with an endpoint",
        snapshot(networks=[network("front", endpoints=1)]),
        DEFAULT,
        {(N, "front-id"): (KEEP_, "in use (1 endpoint)")},
    ),
    (
        "network with endpoints",
        snapshot(networks=[network("front", endpoints=2)]),
        DEFAULT,
        {(N, "front-id"): (KEEP_, "in use (2 endpoints)")},
    ),
    (
        "network of a kept container; network of a removed one",
        snapshot(
            containers=[
                container("new", finished=ago(hours=1), networks=["front-id"]),
                container("old", finished=ago(days=3), networks=["back-id"]),
            ],
            networks=[network("front"), network("back")],
        ),
        DEFAULT,
        {
            (N, "front-id"): (KEEP_, "in use by container new"),
            (N, "back-id"): (REMOVE, "unused network, created 60d ago (unused_after 1d)"),
        },
    ),
    (
        "keep-labelled network",
        snapshot(networks=[network("front", labels={KEEP: ""})]),
        DEFAULT,
        {(N, "front-id"): (KEEP_, "labelled bilge.keep")},
    ),
    # --- build cache ---
    (
        "build cache in use",
        snapshot(build_cache=[cache("b1", in_use=True, created=ago(days=90))]),
        DEFAULT,
        {(B, "b1"): (KEEP_, "in use")},
    ),
    (
        "build cache unused, by last use",
        snapshot(
            build_cache=[
                cache("b1", created=ago(days=90), last_used=ago(days=8)),
                cache("b2", created=ago(days=90), last_used=ago(days=1)),
            ]
        ),
        DEFAULT,
        {
            (B, "b1"): (REMOVE, "build cache unused for 8d (unused_after 7d)"),
            (B, "b2"): (
                KEEP_,
                "build cache used 1d ago (unused_after 7d), total within keep_storage 10GB",
            ),
        },
    ),
    (
        "build cache over keep_storage, least recently used first",
        snapshot(
            build_cache=[
                cache("b1", size=4 * 10**9, last_used=ago(days=2)),
                cache("b2", size=4 * 10**9, last_used=ago(days=3)),
                cache("b3", size=4 * 10**9, last_used=ago(days=1), in_use=True),
                cache("b4", size=1 * 10**9, last_used=ago(days=1)),
            ]
        ),
        DEFAULT,
        {
            (B, "b2"): (REMOVE, "build cache over keep_storage 10GB, oldest first (used 3d ago)"),
            (B, "b1"): (
                KEEP_,
                "build cache used 2d ago (unused_after 7d), total within keep_storage 10GB",
            ),
            (B, "b3"): (KEEP_, "in use"),
        },
    ),
    (
        "keep_storage ties: older creation, then id",
        snapshot(
            build_cache=[
                cache("b1", size=10, created=ago(days=2), last_used=ago(days=1)),
                cache("b2", size=10, created=ago(days=3), last_used=ago(days=1)),
                cache("b3", size=10, created=ago(days=3), last_used=ago(days=1)),
            ]
        ),
        Policy(build_cache=BuildCachePolicy(keep_storage=15)),
        {
            (B, "b2"): (REMOVE, "build cache over keep_storage 15B, oldest first (used 1d ago)"),
            (B, "b3"): (REMOVE, "build cache over keep_storage 15B, oldest first (used 1d ago)"),
            (B, "b1"): (
                KEEP_,
                "build cache used 1d ago (unused_after 7d), total within keep_storage 15B",
            ),
        },
    ),
]


@pytest.mark.parametrize(
    ("snap", "policy", "expected"), [pytest.param(*case[1:], id=case[0]) for case in CASES]
)
def test_decides_and_explains(snap: Snapshot, policy: Policy, expected: Expected) -> None:
    got = decisions(plan(snap, policy, NOW))
    assert {key: got[key] for key in expected} == expected


@pytest.mark.parametrize("state", ["running", "paused", "restarting", "removing"])
def test_active_containers_stay_whatever_the_policy(state: str) -> None:
    snap = snapshot(containers=[container("web-1", state=state, finished=ago(days=90))])
    eager = Policy(containers=ContainersPolicy(exited_after=timedelta(0)))
    assert decisions(plan(snap, eager, NOW)) == {(C, "web-1-id"): (KEEP_, f"in use ({state})")}


def _layered(*images_: tuple[str, bool, tuple[str, ...]]) -> Snapshot:
    """Images (id, kept?, layers); a running container keeps the kept ones."""
    return snapshot(
        containers=[
            container(f"user-{i}", state="running", image_id=i) for i, kept, _ in images_ if kept
        ],
        images=[image(i, created=ago(days=90), layers=layers) for i, _, layers in images_],
        layers={"l1": 100, "l2": 20, "l3": 3},
    )


@pytest.mark.parametrize(
    ("snap", "expected"),
    [
        pytest.param(
            _layered(("i1", True, ("l1", "l2")), ("i2", False, ("l1", "l3"))),
            {"i2": 3},
            id="a layer shared with a kept image frees nothing",
        ),
        pytest.param(
            _layered(("i1", True, ("l1",)), ("i2", False, ("l1",))),
            {"i2": 0},
            id="an image all of whose layers are kept frees nothing",
        ),
        pytest.param(
            _layered(("i1", False, ("l1", "l2")), ("i2", False, ("l1", "l3"))),
            {"i1": 120, "i2": 3},
            id="a layer two removed images share counts once, for the first",
        ),
        pytest.param(
            _layered(("i1", False, ("l1", "unknown"))),
            {"i1": 100},
            id="a layer of unknown size counts 0",
        ),
    ],
)
def test_image_bytes_are_layer_aware(snap: Snapshot, expected: dict[str, int]) -> None:
    p = plan(snap, DEFAULT, NOW)
    assert {a.id: a.bytes for a in p.actions if a.kind is IMG} == expected


def test_action_carries_what_apply_needs() -> None:
    web = container("web-1", finished=ago(days=3), size_rw=1000, log_bytes=24, volumes=[ANON])
    anon = volume(ANON, anonymous=True, bytes=500)
    old = image("i1", "app:1", "app:old", created=ago(days=30), layers=["l1"])
    new = image("i2", "app:2", created=ago(days=1))
    front = network("front")
    step = cache("b1", size=77, last_used=ago(days=30))
    snap = snapshot(
        containers=[web],
        volumes=[anon],
        images=[old, new],
        networks=[front],
        build_cache=[step],
        layers={"l1": 9},
    )
    p = plan(snap, DEFAULT, NOW)
    rows = [(a.kind, a.id, a.name, a.bytes, a.fingerprint, a.tags) for a in p.actions]
    assert rows == [
        (C, "web-1-id", "web-1", 1024, web.fingerprint(), ()),
        (V, ANON, ANON, 500, anon.fingerprint(), ()),
        (IMG, "i1", "app:1", 9, old.fingerprint(), ("app:1", "app:old")),
        (N, "front-id", "front", 0, front.fingerprint(), ()),
        (B, "b1", "step b1", 77, step.fingerprint(), ()),
    ]
    assert all(a.precondition == PRECONDITIONS[a.kind] for a in p.actions)
    assert p.total_bytes == 1024 + 500 + 9 + 77
    assert (p.created_at, p.host) == (NOW, snap.engine.host)


def test_dangling_image_is_named_by_short_id() -> None:
    snap = snapshot(images=[image("sha256:0123456789abcdef", created=ago(days=1))])
    assert [a.name for a in plan(snap, DEFAULT, NOW).actions] == ["0123456789ab"]


def test_kept_objects_carry_their_size() -> None:
    snap = snapshot(
        containers=[container("web-1", state="running", size_rw=10, log_bytes=5)],
        volumes=[volume("uploads", bytes=300)],
        images=[image("i1", "app:1", size=4000)],
    )
    kept = {(k.kind, k.id): k.bytes for k in plan(snap, DEFAULT, NOW).kept}
    assert kept == {(C, "web-1-id"): 15, (V, "uploads"): 300, (IMG, "i1"): 4000}


def _everything() -> Snapshot:
    return snapshot(
        containers=[
            container("b", finished=ago(days=3), volumes=[ANON], networks=["front-id"]),
            container("a", state="created", created=ago(days=3), image_id="i2"),
            container("c", state="running", image_id="i3"),
        ],
        volumes=[volume(ANON, anonymous=True), volume("uploads")],
        images=[image("i3", "app:3"), image("i2", created=ago(days=9)), image("i1")],
        networks=[network("front"), network("bridge")],
        build_cache=[cache("b2", last_used=ago(days=9)), cache("b1", last_used=ago(days=8))],
    )


def test_actions_ordered_by_kind_then_id() -> None:
    keys = [(a.kind, a.id) for a in plan(_everything(), NAMED, NOW).actions]
    order = list(Kind)
    assert keys == sorted(keys, key=lambda k: (order.index(k[0]), k[1]))
    assert [k for k, _ in keys] == [C, C, V, V, IMG, IMG, N, B, B]


def test_plan_is_deterministic_and_ignores_input_order() -> None:
    snap = _everything()
    shuffled = snapshot(
        containers=reversed(snap.containers),
        volumes=reversed(snap.volumes),
        images=reversed(snap.images),
        networks=reversed(snap.networks),
        build_cache=reversed(snap.build_cache),
    )
    assert plan(snap, DEFAULT, NOW) == plan(snap, DEFAULT, NOW) == plan(shuffled, DEFAULT, NOW)


def test_plan_does_not_mutate_its_arguments() -> None:
    snap, policy = _everything(), NAMED
    before = (copy.deepcopy(snap), policy.model_copy(deep=True))
    plan(snap, policy, NOW)
    assert (snap, policy) == before


def test_plan_uses_the_given_now_not_the_clock() -> None:
    snap = snapshot(containers=[container("web-1", finished=ago(days=3))])
    earlier = plan(snap, DEFAULT, NOW - timedelta(days=2, hours=12))
    assert decisions(earlier)[(C, "web-1-id")] == (
        KEEP_,
        "exited 12h ago, too young (exited_after 1d)",
    )


PLANNER_MODULES = [
    bilge.planner.core,
    bilge.planner.decision,
    bilge.planner.containers,
    bilge.planner.volumes,
    bilge.planner.images,
    bilge.planner.networks,
    bilge.planner.build_cache,
    bilge.planner.reclaim,
]


def imported_module(node: ast.Import | ast.ImportFrom, alias: ast.alias) -> str:
    if isinstance(node, ast.Import):
        return alias.name
    # `from bilge.planner import volumes` imports a module of the package: check
    # that module, not the package, so only the planner's own modules pass.
    if node.module == "bilge.planner":
        return f"bilge.planner.{alias.name}"
    return node.module or ""


@pytest.mark.parametrize("module", PLANNER_MODULES)
def test_planner_imports_nothing_that_does_io(module: ModuleType) -> None:
    tree = ast.parse(inspect.getsource(module))
    imported = {
        imported_module(node, alias)
        for node in ast.walk(tree)
        if isinstance(node, ast.Import | ast.ImportFrom)
        for alias in node.names
    }
    pure = {
        "__future__",
        "collections",
        "collections.abc",
        "contextlib",
        "dataclasses",
        "datetime",
        "fnmatch",
        "gc",  # the cycle collector paused while planning: no I/O, no clock
        "typing",
    }
    assert imported <= pure | {
        "bilge.model",
        "bilge.config.policy",
        "bilge.config.units",
        "bilge.planner.reclaim",
        "bilge.planner.decision",
        "bilge.planner.containers",
        "bilge.planner.volumes",
        "bilge.planner.images",
        "bilge.planner.networks",
        "bilge.planner.build_cache",
    }
    assert ".now(" not in inspect.getsource(module)


def test_a_container_takes_its_anonymous_volumes_along_only_when_all_of_them_go() -> None:
    other = "b" * 60 + "0002"
    snap = snapshot(
        containers=[
            container("job", finished=ago(days=3), volumes=[ANON, "named"]),
            container("labelled", finished=ago(days=3), volumes=[other]),
        ],
        volumes=[
            volume(ANON, anonymous=True, bytes=10),
            volume("named", bytes=10),
            volume(other, anonymous=True, bytes=10, labels={"bilge.keep": "1"}),
        ],
    )
    actions = {a.id: a for a in plan(snap, DEFAULT, NOW).actions}
    assert actions["job-id"].volumes == (ANON,)  # never the named one
    assert ANON in actions
    assert actions["labelled-id"].volumes == ()  # its volume is kept: the engine must not take it
    assert other not in actions


def test_planning_resumes_the_cycle_collector_and_leaves_it_off_if_it_was() -> None:
    snap = snapshot(containers=[container("web-1", finished=ago(days=3))])
    assert gc.isenabled()
    plan(snap, DEFAULT, NOW)
    assert gc.isenabled()
    gc.disable()
    try:
        plan(snap, DEFAULT, NOW)
        assert not gc.isenabled()
    finally:
        gc.enable()


def test_the_cycle_collector_is_paused_while_planning(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[bool] = []
    real = bilge.planner.containers.decided

    def spy(*args: Any, **kwargs: Any) -> Any:
        seen.append(gc.isenabled())
        return real(*args, **kwargs)

    monkeypatch.setattr(bilge.planner.containers, "decided", spy)
    plan(snapshot(containers=[container("web-1", finished=ago(days=3))]), DEFAULT, NOW)
    assert seen == [False]
    assert gc.isenabled()


def test_image_keep_patterns_match_podmans_spelling_of_names() -> None:
    from bilge.planner.images import spellings

    assert spellings(["localhost/k:1"]) == ["localhost/k:1", "k:1"]
    assert spellings(["docker.io/library/redis:7"]) == [
        "docker.io/library/redis:7",
        "redis:7",
        "library/redis:7",
    ]
    assert spellings(["registry.example/app:1"]) == ["registry.example/app:1"]
