"""Last use of images from engine events, and the LRU view plan and apply get."""

from __future__ import annotations

from datetime import UTC, datetime

from bilge.config.policy import parse_policy
from bilge.guard.lastuse import interpret, used_now, with_last_use
from bilge.planner.core import plan
from tests.unit.snapshots import NOW, ago, container, image, snapshot

T = 1_700_000_000
NO_KEEP_RECENT = parse_policy("[images]\nkeep_recent = 0\n", "t")


def event(kind: str, action: str, actor_id: str, **attributes: str) -> dict[str, object]:
    return {
        "Type": kind,
        "Action": action,
        "Actor": {"ID": actor_id, "Attributes": attributes},
        "time": T,
        "timeNano": T * 10**9,
    }


def test_container_events_use_their_image() -> None:
    use = interpret(event("container", "start", "c1", image="app:1"))
    assert use is not None and use.image_ref == "app:1" and use.container_id == "c1"
    assert use.at == datetime.fromtimestamp(T, UTC)
    assert interpret(event("container", "exec_start", "c1", image="app:1")) is None


def test_image_events_want_or_forget_it() -> None:
    pulled = interpret(event("image", "pull", "busybox:latest"))
    assert pulled is not None and not pulled.gone and pulled.image_ref == "busybox:latest"
    deleted = interpret(event("image", "delete", "sha256:abc"))
    assert deleted is not None and deleted.gone
    assert interpret(event("image", "untag", "sha256:abc")) is None
    assert interpret({"Type": "network", "Action": "create"}) is None
    assert interpret({"Type": "container", "Action": "start", "Actor": "junk"}) is None


def test_an_image_a_container_uses_and_its_parents_are_used_now() -> None:
    snap = snapshot(
        containers=[container("c", image_id="sha256:child")],
        images=[
            image("sha256:child", "c:1", parent_id="sha256:parent"),
            image("sha256:parent", "p:1"),
            image("sha256:other", "o:1"),
        ],
    )
    assert used_now(snap) == {"sha256:child", "sha256:parent"}


def test_recorded_last_use_keeps_an_old_image() -> None:
    snap = snapshot(
        images=[
            image("sha256:old", "app:1", created=ago(days=90)),
            image("sha256:new", "app:2", created=ago(days=1)),
        ]
    )
    no_history = plan(
        snap,
        NO_KEEP_RECENT,
        NOW,
    )
    assert "sha256:old" in {a.id for a in no_history.actions}
    times = {"sha256:old": (ago(days=90), ago(days=2))}
    enriched = with_last_use(snap, times, NOW)
    old = next(i for i in enriched.images if i.id == "sha256:old")
    assert old.last_used == ago(days=2) and old.first_seen == ago(days=90)
    p = plan(
        enriched,
        NO_KEEP_RECENT,
        NOW,
    )
    assert "sha256:old" not in {a.id for a in p.actions}
    assert any("last used" in k.reason for k in p.kept if k.id == "sha256:old")
