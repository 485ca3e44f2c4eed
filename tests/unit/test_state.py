"""The state store: migrations applied once, audit log and samples round-trip."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime
from pathlib import Path

import pytest

from bilge import state
from bilge.errors import StateError
from bilge.model import Action, Filesystem, Kind, Result
from bilge.state import StateStore

ACTION = Action(Kind.VOLUME, "v1", "v1", "unreferenced", 42, "no container mounts it", "fp")


def test_migrations_are_applied_once_and_recorded(tmp_path: Path) -> None:
    StateStore(tmp_path).close()
    store = StateStore(tmp_path)
    assert store.applied_migrations == [name for name, _ in state.MIGRATIONS]


def test_a_failing_migration_leaves_nothing_half_done(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(db: sqlite3.Connection) -> None:
        db.execute("CREATE TABLE half (x)")
        raise sqlite3.OperationalError("boom")

    monkeypatch.setattr(state, "MIGRATIONS", (*state.MIGRATIONS, ("0099-broken", broken)))
    with pytest.raises(StateError, match="boom"):
        StateStore(tmp_path)
    db = sqlite3.connect(tmp_path / state.DB_NAME)
    tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master")}
    assert "half" not in tables and "audit" in tables


def test_audit_entries_round_trip(tmp_path: Path) -> None:
    store = StateStore(tmp_path)
    entry = store.record_attempt("unix:///h", ACTION)
    (pending,) = store.audit()
    assert pending.outcome is None and pending.bytes == 42
    store.record_outcome(entry, Result.SKIPPED, "already gone")
    (done,) = store.audit()
    assert (done.kind, done.object_id, done.outcome, done.detail) == (
        Kind.VOLUME,
        "v1",
        Result.SKIPPED,
        "already gone",
    )


def test_samples_round_trip(tmp_path: Path) -> None:
    store = StateStore(tmp_path)
    fs = Filesystem("/d", 1000, 400, 100, 90)
    store.record_sample("h", fs, datetime(2026, 1, 1, tzinfo=UTC))
    (sample,) = store.samples("h")
    assert (sample.total_bytes, sample.free_bytes, sample.free_inodes) == (1000, 400, 90)


def test_an_unusable_state_dir_is_a_state_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    with pytest.raises(StateError, match="state store"):
        StateStore(blocker / "sub")


def test_default_state_dir_honours_the_environment(tmp_path: Path) -> None:
    assert state.default_state_dir({"BILGE_STATE_DIR": str(tmp_path)}) == tmp_path
