"""The state store: open attempts of dead runs, a newer schema, private files,
records that could not be written at all."""

from __future__ import annotations

import json
import sqlite3
import stat
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest

from bilge.cli import entry as cli
from bilge.config.policy import Policy
from bilge.errors import EngineUnreachable, StateError
from bilge.model import Action, EngineInfo, Kind, Result, Snapshot
from bilge.session import Session
from bilge.state.records import AttemptRecord, OutcomeRecord, SampleRecord, is_audit, lost_line
from bilge.state.runs import current_run, run_alive
from bilge.state.store import MIGRATIONS, StateStore
from tests.unit.fake_engine import FakeEngine

HOST = "unix:///fake/docker.sock"
DEAD_RUN = "nowhere-else:1:1"


def act(ident: str, kind: Kind = Kind.VOLUME) -> Action:
    return Action(kind, ident, ident, "test", 10, "", "fp")


def killed_run(directory: Path, *ids: str, kind: Kind = Kind.VOLUME) -> None:
    """Attempts written by a run that then died before their outcomes."""
    store = StateStore(directory)
    # A pid that cannot be alive: the highest possible, with a start time of 0.
    store.run = current_run().rsplit(":", 2)[0] + ":4194304:0"
    store.record_attempts(HOST, [act(i, kind) for i in ids])
    store.close()


def test_attempts_of_a_dead_run_are_open_for_settling(tmp_path: Path) -> None:
    killed_run(tmp_path, "gone", "there")
    store = StateStore(tmp_path)
    assert [e.object_id for e in store.open_attempts(HOST)] == ["gone", "there"]
    assert store.open_attempts("unix:///other.sock") == []


def test_attempts_of_a_live_run_are_not_settled(tmp_path: Path) -> None:
    # Another apply still going on the same state dir: its attempts are its own.
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        with open(f"/proc/{sleeper.pid}/stat", "rb") as f:
            start = f.read().rpartition(b")")[2].split()[19].decode()
        store = StateStore(tmp_path)
        store.run = f"{current_run().rsplit(':', 2)[0]}:{sleeper.pid}:{start}"
        store.record_attempts(HOST, [act("busy")])
        assert StateStore(tmp_path).open_attempts(HOST) == []
        # Its own attempts are never open to the run itself either.
        assert store.open_attempts(HOST) == []
    finally:
        sleeper.kill()
        sleeper.wait()
    assert [e.object_id for e in StateStore(tmp_path).open_attempts(HOST)] == ["busy"]


def test_a_run_on_another_machine_is_given_a_day() -> None:
    now = datetime(2026, 1, 2, tzinfo=UTC)
    assert run_alive("elsewhere:12:34", datetime(2026, 1, 1, 12, tzinfo=UTC), now)
    assert not run_alive("elsewhere:12:34", datetime(2025, 12, 30, tzinfo=UTC), now)
    assert not run_alive(None, now, now)


def test_the_next_run_settles_open_attempts_by_asking_the_engine(tmp_path: Path) -> None:
    killed_run(tmp_path, "gone", "there")
    killed_run(tmp_path, "c-gone", kind=Kind.CONTAINER)
    engine = FakeEngine(volume_list=[{"Name": "there"}])
    ctx = Session(HOST, Policy(), state_dir=tmp_path, engine=engine)
    snap = Snapshot(
        taken_at=datetime.now(UTC),
        engine=EngineInfo(HOST, "1.41", "20.10", "/d", "overlay2", False),
    )
    assert ctx.settle_open_attempts(snap) == 3
    assert ctx.settle_open_attempts(snap) == 0  # once per host and store
    ctx.close()
    entries = {e.object_id: (e.outcome, e.detail) for e in StateStore(tmp_path).audit()}
    stopped = "the run that attempted it stopped before its outcome"
    assert entries == {
        "gone": (Result.REMOVED, f"gone: {stopped}"),
        "c-gone": (Result.REMOVED, f"gone: {stopped}"),
        "there": (Result.SKIPPED, f"not removed: {stopped}"),
    }


def test_open_attempts_wait_while_the_engine_cannot_answer(tmp_path: Path) -> None:
    killed_run(tmp_path, "v")

    class Down(FakeEngine):
        def inspect_volume(self, name: str) -> dict:
            raise EngineUnreachable("cannot connect to the engine (fake)")

    ctx = Session(HOST, Policy(), state_dir=tmp_path, engine=Down())
    snap = Snapshot(
        taken_at=datetime.now(UTC),
        engine=EngineInfo(HOST, "1.41", "20.10", "/d", "overlay2", False),
    )
    assert ctx.settle_open_attempts(snap) == 0
    ctx.close()
    (entry,) = StateStore(tmp_path).audit()
    assert entry.outcome is None


def newer_store(directory: Path) -> None:
    StateStore(directory).close()
    db = sqlite3.connect(directory / "bilge.db")
    db.execute("INSERT INTO migrations VALUES ('0099-from-the-future', '2030-01-01')")
    db.commit()
    db.close()


def test_a_store_from_a_newer_bilge_is_refused(tmp_path: Path) -> None:
    newer_store(tmp_path)
    with pytest.raises(StateError) as caught:
        StateStore(tmp_path)
    message = str(caught.value)
    assert "written by a newer bilge" in message
    assert "0099-from-the-future" in message and MIGRATIONS[-1][0] in message
    assert "\n" not in message


def test_a_store_from_a_newer_bilge_fails_the_command_with_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    newer_store(tmp_path)
    code = cli.main(["history", "--state-dir", str(tmp_path)])
    err = capsys.readouterr().err
    assert code == 1
    assert err.count("\n") == 1 and err.startswith("bilge: error: state store ")
    assert "internal error" not in err


def test_the_state_dir_and_its_files_are_private(tmp_path: Path) -> None:
    directory = tmp_path / "deep" / "state"
    store = StateStore(directory)
    store.record_attempts(HOST, [act("v")])
    assert stat.S_IMODE(directory.stat().st_mode) == 0o700
    for name in ("bilge.db", "bilge.db-wal", "bilge.db-shm"):
        assert stat.S_IMODE((directory / name).stat().st_mode) == 0o600, name
    store.close()


def test_an_existing_database_is_made_private(tmp_path: Path) -> None:
    StateStore(tmp_path).close()
    (tmp_path / "bilge.db").chmod(0o644)
    StateStore(tmp_path).close()
    assert stat.S_IMODE((tmp_path / "bilge.db").stat().st_mode) == 0o600


def test_lost_records_are_one_json_line_each() -> None:
    attempt = AttemptRecord(
        -1, HOST, "2026-01-01T00:00:00+00:00", "volume", "v", "v", "r", 5, "run"
    )
    outcome = OutcomeRecord(-1, "removed", "", "2026-01-01T00:00:01+00:00")
    sample = SampleRecord(HOST, "2026-01-01T00:00:00+00:00", 10, 5, 10, 5)
    lines = [lost_line(r) for r in (attempt, outcome, sample)]
    docs = [json.loads(line) for line in lines]
    assert [d["bilge_lost_record"] for d in docs] == ["attempt", "outcome", "sample"]
    assert docs[0]["object_id"] == "v" and docs[1]["entry_id"] == docs[0]["id"]
    assert all("\n" not in line for line in lines)
    assert [is_audit(r) for r in (attempt, outcome, sample)] == [True, True, False]
