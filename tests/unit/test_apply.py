"""apply() against the fake engine: order, re-checked preconditions, skips, audit."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from bilge.applier.core import apply
from bilge.applier.saved import narrow_saved
from bilge.errors import PlanFileError, StateError
from bilge.model import Action, ActionOutcome, EngineInfo, Kept, Kind, Plan, Result, Snapshot
from bilge.state.store import StateStore
from tests.unit.fake_engine import FakeEngine

PLANNED = datetime(2026, 1, 1, 12, tzinfo=UTC)


def action(kind: Kind, ident: str, *, tags: tuple[str, ...] = (), fp: str = "fp") -> Action:
    return Action(kind, ident, ident, "test", 100, "test", fp, tags)


def container(ident: str, state: str = "exited", *, volumes: tuple[str, ...] = ()) -> dict:
    return {
        "Id": ident,
        "State": state,
        "ImageID": "sha256:img",
        "StartedAt": "2025-12-31T00:00:00Z",
        "Mounts": [{"Type": "volume", "Name": v} for v in volumes],
    }


class Events:
    """An audit log that records into a shared event list, to check ordering."""

    def __init__(self, events: list[tuple[str, str]], fail: bool = False) -> None:
        self.events = events
        self.fail = fail
        self.outcomes: list[tuple[int, Result, str]] = []

    def record_attempt(self, host: str, act: Action) -> int:
        return self.record_attempts(host, [act])[0]

    def record_attempts(self, host: str, acts: Sequence[Action]) -> list[int]:
        if self.fail:
            raise StateError("disk full")
        ids = []
        for act in acts:
            self.events.append(("audit", act.id))
            ids.append(len(self.events))
        return ids

    def record_outcome(self, entry_id: int, result: Result, detail: str) -> None:
        self.outcomes.append((entry_id, result, detail))


def run(engine: FakeEngine, *actions: Action, audit: Events | None = None) -> dict[str, Result]:
    audit = audit or Events([])
    plan = Plan(PLANNED, engine.host, tuple(actions))
    outcome = apply(plan, engine, audit, concurrency=4)
    return {r.action.id: r.result for r in outcome.results}


def test_removes_containers_then_their_volumes() -> None:
    engine = FakeEngine(
        container_list=[container("c1", volumes=("v1",))], volume_list=[{"Name": "v1"}]
    )
    got = run(engine, action(Kind.CONTAINER, "c1"), action(Kind.VOLUME, "v1"))
    assert got == {"c1": Result.REMOVED, "v1": Result.REMOVED}
    assert engine.removed == [("container", "c1"), ("volume", "v1")]


@pytest.mark.parametrize("state", ["running", "paused", "restarting"])
def test_a_container_that_became_active_is_skipped(state: str) -> None:
    engine = FakeEngine(container_list=[container("c1", state)])
    assert run(engine, action(Kind.CONTAINER, "c1")) == {"c1": Result.SKIPPED}
    assert engine.removed == []


def test_a_container_started_since_the_plan_is_skipped() -> None:
    c = container("c1") | {"StartedAt": (PLANNED + timedelta(minutes=1)).isoformat()}
    engine = FakeEngine(container_list=[c])
    assert run(engine, action(Kind.CONTAINER, "c1")) == {"c1": Result.SKIPPED}
    assert engine.removed == []


def test_conflict_and_vanished_objects_are_skips_not_errors() -> None:
    engine = FakeEngine(container_list=[container("c1")], conflicts={"c1"})
    got = run(engine, action(Kind.CONTAINER, "c1"), action(Kind.CONTAINER, "gone"))
    assert got == {"c1": Result.SKIPPED, "gone": Result.SKIPPED}


def test_a_volume_mounted_again_is_skipped() -> None:
    engine = FakeEngine(
        container_list=[container("new", "created", volumes=("v1",))],
        volume_list=[{"Name": "v1"}],
    )
    assert run(engine, action(Kind.VOLUME, "v1")) == {"v1": Result.SKIPPED}
    assert engine.removed == []


def test_the_volume_of_a_container_whose_removal_was_refused_stays() -> None:
    engine = FakeEngine(
        container_list=[container("c1", volumes=("v1",))],
        volume_list=[{"Name": "v1"}],
        conflicts={"c1"},
    )
    got = run(engine, action(Kind.CONTAINER, "c1"), action(Kind.VOLUME, "v1"))
    assert got == {"c1": Result.SKIPPED, "v1": Result.SKIPPED}
    assert engine.removed == []


def test_an_image_is_untagged_tag_by_tag_and_skipped_when_tags_moved() -> None:
    engine = FakeEngine(
        image_list=[
            {"Id": "sha256:a", "RepoTags": ["app:1", "app:one"]},
            {"Id": "sha256:b", "RepoTags": ["app:2", "app:new"]},
        ]
    )
    got = run(
        engine,
        action(Kind.IMAGE, "sha256:a", tags=("app:1", "app:one")),
        action(Kind.IMAGE, "sha256:b", tags=("app:2",)),
    )
    assert got == {"sha256:a": Result.REMOVED, "sha256:b": Result.SKIPPED}
    assert ("image", "sha256:a") in engine.removed
    assert all(value not in {"sha256:b", "app:2"} for _, value in engine.removed)


def test_an_image_used_since_the_plan_is_skipped() -> None:
    engine = FakeEngine(
        image_list=[{"Id": "sha256:img", "RepoTags": []}],
        container_list=[container("c9", "created")],
    )
    assert run(engine, action(Kind.IMAGE, "sha256:img")) == {"sha256:img": Result.SKIPPED}


def test_a_network_with_a_container_is_skipped() -> None:
    c = container("c1") | {"NetworkSettings": {"Networks": {"n": {"NetworkID": "net1"}}}}
    engine = FakeEngine(network_list=[{"Id": "net1", "Containers": {}}], container_list=[c])
    assert run(engine, action(Kind.NETWORK, "net1")) == {"net1": Result.SKIPPED}


def test_every_removal_is_audited_before_it_is_attempted() -> None:
    events: list[tuple[str, str]] = []
    engine = FakeEngine(container_list=[container("c1"), container("c2")])
    original = engine.remove_container

    def remove(container_id: str, *, volumes: bool = False) -> None:
        events.append(("remove", container_id))
        original(container_id, volumes=volumes)

    engine.remove_container = remove  # type: ignore[method-assign]
    audit = Events(events)
    run(engine, action(Kind.CONTAINER, "c1"), action(Kind.CONTAINER, "c2"), audit=audit)
    for ident in ("c1", "c2"):
        assert events.index(("audit", ident)) < events.index(("remove", ident))
    assert sorted(r for _, r, _ in audit.outcomes) == [Result.REMOVED, Result.REMOVED]


def test_nothing_is_removed_when_the_audit_log_cannot_be_written() -> None:
    engine = FakeEngine(container_list=[container("c1")])
    got = run(engine, action(Kind.CONTAINER, "c1"), audit=Events([], fail=True))
    assert got == {"c1": Result.FAILED}
    assert engine.removed == []


def test_an_unreachable_engine_fails_the_action() -> None:
    engine = FakeEngine(container_list=[container("c1")])
    engine.unreachable = True
    assert run(engine, action(Kind.CONTAINER, "c1")) == {"c1": Result.FAILED}


def test_outcomes_are_recorded_in_the_state_store(tmp_path: Path) -> None:
    store = StateStore(tmp_path)
    engine = FakeEngine(container_list=[container("c1")])
    plan = Plan(PLANNED, engine.host, (action(Kind.CONTAINER, "c1"), action(Kind.VOLUME, "x")))
    apply(plan, engine, store)
    entries = {e.object_id: e for e in store.audit()}
    assert entries["c1"].outcome is Result.REMOVED
    assert entries["x"].outcome is Result.SKIPPED
    assert entries["x"].detail == "already gone"


def snapshot_with(host: str, fingerprints: dict[str, str]) -> Snapshot:
    info = EngineInfo(host, "1.41", "20.10", "/d", "overlay2", False)

    class Fixed(Snapshot):
        def fingerprints(self) -> dict[tuple[Kind, str], str]:
            return {(Kind.CONTAINER, k): v for k, v in fingerprints.items()}

    return Fixed(taken_at=PLANNED, engine=info)


def test_a_stale_saved_plan_is_refused_for_changed_objects() -> None:
    saved = Plan(
        PLANNED,
        "unix:///h",
        (
            action(Kind.CONTAINER, "same", fp="a"),
            action(Kind.CONTAINER, "changed", fp="b"),
            action(Kind.CONTAINER, "gone", fp="c"),
        ),
    )
    fresh = Plan(
        PLANNED,
        "unix:///h",
        (action(Kind.CONTAINER, "changed", fp="B"), action(Kind.CONTAINER, "same", fp="a")),
    )
    narrowed, refused = narrow_saved(
        saved, fresh, snapshot_with("unix:///h", {"same": "a", "changed": "B"})
    )
    details = {r.action.id: r.detail for r in refused}
    assert details == {
        "changed": "refused: changed since the plan was made",
        "gone": "gone since the plan was made",
    }
    assert [a.id for a in narrowed.actions] == ["same"]
    engine = FakeEngine(host="unix:///h", container_list=[container("changed"), container("same")])
    outcome = apply(narrowed, engine, Events([]), refused=refused)
    assert engine.removed == [("container", "same")]
    assert {r.action.id: r.result for r in outcome.results}["changed"] is Result.SKIPPED


def test_a_saved_plan_never_widens_a_fresh_one() -> None:
    # Unchanged fingerprints, but the fresh plan keeps the object (a database now
    # in the volume, a keep_names pattern added): refused with the fresh reason.
    # An action written in by hand with a right fingerprint is refused alike.
    saved = Plan(
        PLANNED,
        "unix:///h",
        (
            action(Kind.VOLUME, "pgdata", fp="v"),
            action(Kind.CONTAINER, "keep-me", fp="k"),
            action(Kind.CONTAINER, "running", fp="r"),
            action(Kind.CONTAINER, "job", fp="j"),
        ),
    )
    fresh = Plan(
        PLANNED,
        "unix:///h",
        (replace(action(Kind.CONTAINER, "job", fp="j"), reason="fresh reason"),),
        kept=(
            Kept(Kind.VOLUME, "pgdata", "pgdata", "holds database data: postgres: PG_VERSION"),
            Kept(Kind.CONTAINER, "keep-me", "keep-me", "keep-me matches containers.keep_names"),
        ),
    )
    present = {"pgdata": "v", "keep-me": "k", "running": "r", "job": "j"}
    narrowed, refused = narrow_saved(saved, fresh, snapshot_with("unix:///h", present))
    assert [(a.id, a.reason) for a in narrowed.actions] == [("job", "fresh reason")]
    assert {r.action.id: (r.result, r.detail) for r in refused} == {
        "pgdata": (
            Result.SKIPPED,
            "refused: a fresh plan keeps it: holds database data: postgres: PG_VERSION",
        ),
        "keep-me": (
            Result.SKIPPED,
            "refused: a fresh plan keeps it: keep-me matches containers.keep_names",
        ),
        "running": (Result.SKIPPED, "refused: a fresh plan would not remove it"),
    }


def test_a_plan_for_another_host_is_refused() -> None:
    plan = Plan(PLANNED, "unix:///a", (action(Kind.CONTAINER, "x"),))
    with pytest.raises(PlanFileError, match="made for unix:///a"):
        narrow_saved(plan, Plan(PLANNED, "unix:///b", ()), snapshot_with("unix:///b", {}))


def test_a_container_takes_its_anonymous_volumes_along_audited_first() -> None:
    events: list[tuple[str, str]] = []
    engine = FakeEngine(
        container_list=[container("c1", volumes=("v1",))],
        volume_list=[{"Name": "v1"}],
        anonymous={"v1"},
    )
    original = engine.remove_container

    def remove(container_id: str, *, volumes: bool = False) -> None:
        events.append(("remove", f"{container_id} volumes={volumes}"))
        original(container_id, volumes=volumes)

    engine.remove_container = remove  # type: ignore[method-assign]
    audit = Events(events)
    c1 = replace(action(Kind.CONTAINER, "c1"), volumes=("v1",))
    plan = Plan(PLANNED, engine.host, (c1, action(Kind.VOLUME, "v1")))
    outcome = apply(plan, engine, audit)
    results = {r.action.id: (r.result, r.detail) for r in outcome.results}
    assert results["v1"] == (Result.REMOVED, "removed with its container")
    assert events.index(("audit", "v1")) < events.index(("remove", "c1 volumes=True"))
    assert engine.inspected.count("v1") == 0  # one volume listing, no call per volume
    assert len(audit.outcomes) == 2


def test_no_container_listing_when_every_volume_went_with_its_container() -> None:
    """The listing of who mounts what is for volumes still there: when all went with
    their containers it is not asked for (Podman takes seconds to list containers)."""
    engine = FakeEngine(
        container_list=[container("c1", volumes=("v1",))],
        volume_list=[{"Name": "v1"}],
        anonymous={"v1"},
    )
    listed: list[bool] = []
    original = engine.containers

    def containers(*, size: bool) -> list[Any]:
        listed.append(size)
        return original(size=size)

    engine.containers = containers  # type: ignore[method-assign]
    c1 = replace(action(Kind.CONTAINER, "c1"), volumes=("v1",))
    got = run(engine, c1, action(Kind.VOLUME, "v1"))
    assert got == {"c1": Result.REMOVED, "v1": Result.REMOVED}
    assert listed == []


def test_a_volume_the_engine_did_not_take_along_goes_the_ordinary_way() -> None:
    engine = FakeEngine(
        container_list=[container("c1", volumes=("v1",)), container("c2", "running",
                                                                    volumes=("v1",))],
        volume_list=[{"Name": "v1"}],
        anonymous={"v1"},
    )  # fmt: skip
    c1 = replace(action(Kind.CONTAINER, "c1"), volumes=("v1",))
    got = run(engine, c1, action(Kind.VOLUME, "v1"))
    assert got == {"c1": Result.REMOVED, "v1": Result.SKIPPED}
    assert [v["Name"] for v in engine.volume_list] == ["v1"]


def test_every_removal_is_audited_before_the_first_is_attempted() -> None:
    events: list[tuple[str, str]] = []
    engine = FakeEngine(
        container_list=[container("c1", volumes=("v1",)), container("c2")],
        volume_list=[{"Name": "v1"}, {"Name": "v2"}],
        anonymous={"v1"},
    )
    original = engine.remove_container

    def remove(container_id: str, *, volumes: bool = False) -> None:
        events.append(("remove", container_id))
        original(container_id, volumes=volumes)

    engine.remove_container = remove  # type: ignore[method-assign]
    c1 = replace(action(Kind.CONTAINER, "c1"), volumes=("v1",))
    plan = (c1, action(Kind.CONTAINER, "c2"), action(Kind.VOLUME, "v1"), action(Kind.VOLUME, "v2"))
    run(engine, *plan, audit=Events(events))
    first_removal = events.index(next(e for e in events if e[0] == "remove"))
    assert sorted(ident for _, ident in events[:first_removal]) == ["c1", "c2", "v1", "v2"]


def test_a_volume_refused_by_the_saved_plan_check_is_not_taken_along() -> None:
    # The plan let c1 take v1 along; the fresh snapshot says v1 changed since. The
    # container may still go, but not with v=true: that would remove v1 too.
    engine = FakeEngine(
        container_list=[container("c1", volumes=("v1",))],
        volume_list=[{"Name": "v1"}],
        anonymous={"v1"},
    )
    calls: list[bool] = []
    original = engine.remove_container

    def remove(container_id: str, *, volumes: bool = False) -> None:
        calls.append(volumes)
        original(container_id, volumes=volumes)

    engine.remove_container = remove  # type: ignore[method-assign]
    c1 = replace(action(Kind.CONTAINER, "c1"), volumes=("v1",))
    v1 = action(Kind.VOLUME, "v1")
    plan = Plan(PLANNED, engine.host, (c1, v1))
    refused = (ActionOutcome(v1, Result.SKIPPED, "refused: changed since the plan was made"),)
    outcome = apply(plan, engine, Events([]), refused=refused)
    assert calls == [False]
    assert [v["Name"] for v in engine.volume_list] == ["v1"]
    assert {r.action.id: r.result for r in outcome.results} == {
        "v1": Result.SKIPPED,
        "c1": Result.REMOVED,
    }


def test_once_stopping_the_rest_is_skipped_and_audited() -> None:
    stop = threading.Event()
    engine = FakeEngine(container_list=[container("c1"), container("c2")])
    original = engine.remove_container

    def remove(container_id: str, *, volumes: bool = False) -> None:
        original(container_id, volumes=volumes)
        stop.set()  # a signal arrives during the first removal

    engine.remove_container = remove  # type: ignore[method-assign]
    audit = Events([])
    plan = Plan(PLANNED, engine.host, (action(Kind.CONTAINER, "c1"), action(Kind.CONTAINER, "c2")))
    outcome = apply(plan, engine, audit, concurrency=1, stop=stop)
    assert [(r.result, r.detail) for r in outcome.results] == [
        (Result.REMOVED, ""),
        (Result.SKIPPED, "not attempted: bilge is stopping"),
    ]
    assert engine.removed == [("container", "c1")]
    assert sorted(r for _, r, _ in audit.outcomes) == [Result.REMOVED, Result.SKIPPED]


@pytest.mark.parametrize("audit_fails", [False, True])
def test_every_outcome_reaches_on_result(audit_fails: bool) -> None:
    # The progress bar and the guard's log count on it: refused and unrecorded too.
    engine = FakeEngine(container_list=[container("c1"), container("c2")])
    c1, c2 = action(Kind.CONTAINER, "c1"), action(Kind.CONTAINER, "c2")
    refused = (ActionOutcome(c1, Result.SKIPPED, "refused: changed since the plan was made"),)
    seen: list[ActionOutcome] = []
    outcome = apply(
        Plan(PLANNED, engine.host, (c1, c2)),
        engine,
        Events([], fail=audit_fails),
        refused=refused,
        on_result=seen.append,
    )
    assert seen == list(outcome.results)
    assert [r.action.id for r in seen] == ["c1", "c2"]
    assert seen[1].result is (Result.FAILED if audit_fails else Result.REMOVED)
