"""apply() tells the truth: lost answers, data found at the last moment, volumes
credited only to the run that removed them, and what a skipped container keeps."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from bilge.applier.core import apply
from bilge.errors import EngineError, EngineUnreachable
from bilge.model import Action, Kind, Plan, Result
from bilge.state.store import StateStore
from tests.unit.fake_engine import FakeEngine
from tests.unit.test_apply import Events, action, container

PLANNED = datetime(2026, 1, 1, 12, tzinfo=UTC)
ANON = "a" * 64


def outcomes(
    engine: FakeEngine, *actions: Action, **kwargs: object
) -> dict[str, tuple[Result, str]]:
    plan = Plan(PLANNED, engine.host, tuple(actions))
    audit = kwargs.pop("audit", None) or Events([])
    outcome = apply(plan, engine, audit, concurrency=4, **kwargs)  # type: ignore[arg-type]
    return {r.action.id: (r.result, r.detail) for r in outcome.results}


class DiesOnRemoval(FakeEngine):
    """Carries out the removal, then loses the answer (the engine died after it)."""

    def __init__(self, *, then_unreachable: bool = False, carried_out: bool = True, **kw: object):
        super().__init__(**kw)  # type: ignore[arg-type]
        self.then_unreachable = then_unreachable
        self.carried_out = carried_out

    def remove_volume(self, name: str) -> None:
        if self.carried_out:
            super().remove_volume(name)
        self.unreachable = self.then_unreachable
        raise EngineUnreachable("connection reset by peer (fake)")

    def inspect_volume(self, name: str) -> dict:
        self._check()
        return super().inspect_volume(name)


def test_a_removal_whose_answer_was_lost_but_happened_is_removed() -> None:
    engine = DiesOnRemoval(volume_list=[{"Name": "v1"}])
    got = outcomes(engine, action(Kind.VOLUME, "v1"))
    assert got["v1"][0] is Result.REMOVED
    assert "the engine's answer was lost" in got["v1"][1]


def test_a_removal_whose_answer_was_lost_and_did_not_happen_failed() -> None:
    engine = DiesOnRemoval(volume_list=[{"Name": "v1"}], carried_out=False)
    assert outcomes(engine, action(Kind.VOLUME, "v1"))["v1"][0] is Result.FAILED


def test_an_engine_gone_for_good_leaves_the_outcome_open(tmp_path: Path) -> None:
    store = StateStore(tmp_path)
    engine = DiesOnRemoval(volume_list=[{"Name": "v1"}], then_unreachable=True)
    got = outcomes(engine, action(Kind.VOLUME, "v1"), audit=store)
    assert got["v1"] == (
        Result.FAILED,
        "outcome unknown, to be settled by the next run: connection reset by peer (fake)",
    )
    # Never "failed" in the audit log: the entry waits for a run that can tell.
    (entry,) = store.audit()
    assert entry.outcome is None


def test_volumes_of_a_container_that_was_not_removed_stay() -> None:
    engine = FakeEngine(
        container_list=[container("c1", volumes=(ANON,))],
        volume_list=[{"Name": ANON}],
        anonymous={ANON},
        conflicts={"c1"},
    )
    c1 = Action(Kind.CONTAINER, "c1", "job", "exited", 1, "", "fp", (), (ANON,))
    got = outcomes(engine, c1, action(Kind.VOLUME, ANON))
    assert got["c1"][0] is Result.SKIPPED
    assert got[ANON] == (Result.SKIPPED, "its container job was not removed")
    assert engine.removed == []


def test_a_volume_is_credited_only_when_its_container_was_removed_by_this_run() -> None:
    # Another run removed the container (and its volume) first: this one removed
    # neither, and must not claim the volume.
    engine = FakeEngine(volume_list=[], anonymous={ANON})
    c1 = Action(Kind.CONTAINER, "c1", "job", "exited", 1, "", "fp", (), (ANON,))
    got = outcomes(engine, c1, action(Kind.VOLUME, ANON))
    assert got["c1"] == (Result.SKIPPED, "already gone")
    assert got[ANON][0] is Result.SKIPPED


def data_root_with(tmp_path: Path, name: str, files: dict[str, str]) -> str:
    data = tmp_path / "volumes" / name / "_data"
    data.mkdir(parents=True)
    for rel, content in files.items():
        (data / rel).parent.mkdir(parents=True, exist_ok=True)
        (data / rel).write_text(content)
    return str(tmp_path)


def test_a_volume_that_now_holds_a_database_is_kept(tmp_path: Path) -> None:
    root = data_root_with(tmp_path, "pgdata", {"a/b/c/d/e/PG_VERSION": "15"})
    engine = FakeEngine(volume_list=[{"Name": "pgdata"}])
    got = outcomes(engine, action(Kind.VOLUME, "pgdata"), data_root=root)
    assert got["pgdata"] == (
        Result.SKIPPED,
        "now holds database data: postgres: a/b/c/d/e/PG_VERSION",
    )
    assert engine.removed == []


def test_a_volume_partly_unreadable_now_is_kept(tmp_path: Path) -> None:
    root = data_root_with(tmp_path, "v", {"x": "1"})
    (tmp_path / "volumes" / "v" / "_data" / "link").symlink_to("/etc")
    engine = FakeEngine(volume_list=[{"Name": "v"}])
    got = outcomes(engine, action(Kind.VOLUME, "v"), data_root=root)
    assert got["v"][0] is Result.SKIPPED
    assert "could not read all of it" in got["v"][1]


def test_named_volumes_are_not_rechecked_when_data_is_not_protected(tmp_path: Path) -> None:
    root = data_root_with(tmp_path, "pgdata", {"PG_VERSION": "15"})
    engine = FakeEngine(volume_list=[{"Name": "pgdata"}])
    got = outcomes(engine, action(Kind.VOLUME, "pgdata"), data_root=root, protect_data=False)
    assert got["pgdata"][0] is Result.REMOVED


def test_an_anonymous_volume_with_data_is_not_taken_along(tmp_path: Path) -> None:
    root = data_root_with(tmp_path, ANON, {"mysql/user.frm": "x"})
    engine = FakeEngine(
        container_list=[container("c1", volumes=(ANON,))],
        volume_list=[{"Name": ANON}],
        anonymous={ANON},
    )
    c1 = Action(Kind.CONTAINER, "c1", "job", "exited", 1, "", "fp", (), (ANON,))
    got = outcomes(engine, c1, action(Kind.VOLUME, ANON), data_root=root, protect_data=False)
    assert got["c1"][0] is Result.REMOVED
    assert got[ANON] == (Result.SKIPPED, "now holds database data: mysql: mysql/")
    assert engine.removed == [("container", "c1")]
    assert engine.volume_list == [{"Name": ANON}]


def test_an_engine_error_while_rechecking_fails_without_a_removal() -> None:
    class Broken(FakeEngine):
        def inspect_container(self, container_id: str) -> dict:
            raise EngineError("inspect: boom")

    engine = Broken(container_list=[container("c1")])
    assert outcomes(engine, action(Kind.CONTAINER, "c1"))["c1"] == (Result.FAILED, "inspect: boom")
    assert engine.removed == []
