"""The state store: migrations applied once, audit log and samples round-trip,
and records kept in memory while the disk is full (faked here; for real in
test_state_full_disk.py)."""

from __future__ import annotations

import errno
import os
import sqlite3
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from bilge.clock import FakeClock
from bilge.errors import StateError
from bilge.model import Action, Filesystem, Kind, Result
from bilge.state import migrations
from bilge.state import store as state
from bilge.state.store import StateStore

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

    monkeypatch.setattr(migrations, "MIGRATIONS", (*state.MIGRATIONS, ("0099-broken", broken)))
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


# --- a full disk, faked: SQLite answers as it does when the disk is full ---

FULL = (sqlite3.SQLITE_FULL, "SQLITE_FULL", "database or disk is full")
SHMSIZE = (4874, "SQLITE_IOERR_SHMSIZE", "disk I/O error")
CANTOPEN = (sqlite3.SQLITE_CANTOPEN, "SQLITE_CANTOPEN", "unable to open database file")
CORRUPT = (sqlite3.SQLITE_CORRUPT, "SQLITE_CORRUPT", "database disk image is malformed")
WRITES = ("INSERT", "UPDATE", "BEGIN", "CREATE", "PRAGMA JOURNAL_MODE")


def sqlite_error(code: int, name: str, message: str) -> sqlite3.OperationalError:
    exc = sqlite3.OperationalError(message)
    exc.sqlite_errorcode = code
    exc.sqlite_errorname = name
    return exc


class Disk:
    """Stands between the store and SQLite: set `fails` to make every write
    (and every opening for writing) fail with that error."""

    def __init__(self) -> None:
        self.fails: tuple[int, str, str] | None = None

    def connect(self, target: str, *, uri: bool = False) -> object:
        if self.fails and not uri:
            raise sqlite_error(*self.fails)
        return Connection(self, sqlite3.connect(target, uri=uri, isolation_level=None))


class Connection:
    def __init__(self, disk: Disk, db: sqlite3.Connection) -> None:
        self.disk, self.db = disk, db

    def execute(self, sql: str, params: tuple[object, ...] = ()) -> sqlite3.Cursor:
        if self.disk.fails and sql.lstrip().upper().startswith(WRITES):
            raise sqlite_error(*self.disk.fails)
        return self.db.execute(sql, params)

    def __getattr__(self, name: str) -> object:
        return getattr(self.db, name)


@pytest.fixture
def disk(monkeypatch: pytest.MonkeyPatch) -> Disk:
    fake = Disk()
    monkeypatch.setattr(state, "_connect", fake.connect)
    return fake


def full_filesystem(monkeypatch: pytest.MonkeyPatch, *, free_inodes: int = 10) -> None:
    """statvfs answers: no free blocks (and `free_inodes`)."""
    result = os.statvfs_result((4096, 4096, 64, 0, 0, 64, free_inodes, free_inodes, 0, 255))
    monkeypatch.setattr(os, "statvfs", lambda path: result)


def stored_audit(directory: Path) -> list[tuple[Any, ...]]:
    db = sqlite3.connect(directory / state.DB_NAME)
    try:
        return db.execute("SELECT id, object_id, outcome, detail FROM audit ORDER BY id").fetchall()
    finally:
        db.close()


def action(n: int) -> Action:
    return Action(Kind.VOLUME, f"v{n}", f"v{n}", "unreferenced", n, "no container mounts it", "fp")


def test_a_full_disk_at_write_keeps_records_in_memory(tmp_path: Path, disk: Disk) -> None:
    store = StateStore(tmp_path)
    kept = store.record_attempt("h", action(1))
    disk.fails = FULL
    entry = store.record_attempt("h", action(2))
    store.record_outcome(kept, Result.REMOVED, "")
    store.record_outcome(entry, Result.SKIPPED, "already gone")
    store.record_sample("h", Filesystem("/d", 1000, 0, 100, 90), datetime(2026, 1, 1, tzinfo=UTC))
    assert store.degraded == "disk full (database or disk is full)"
    assert store.pending == 4 and entry < 0 < kept
    newest, oldest = store.audit()
    assert (newest.id, newest.object_id, newest.outcome, newest.detail) == (
        entry,
        "v2",
        Result.SKIPPED,
        "already gone",
    )
    assert (oldest.id, oldest.outcome) == (kept, Result.REMOVED)
    assert [s.free_bytes for s in store.samples("h")] == [0]


def test_a_full_disk_at_open_degrades_and_shows_what_is_stored(tmp_path: Path, disk: Disk) -> None:
    store = StateStore(tmp_path)
    store.record_attempt("h", action(1))
    store.close()
    disk.fails = FULL
    store = StateStore(tmp_path)
    entry = store.record_attempt("h", action(2))
    assert store.degraded is not None
    assert [e.object_id for e in store.audit()] == ["v2", "v1"]
    assert store.applied_migrations == [name for name, _ in state.MIGRATIONS]
    assert entry < 0
    store.close()


def test_a_full_disk_at_the_first_open_shows_only_what_is_in_memory(
    tmp_path: Path, disk: Disk
) -> None:
    disk.fails = FULL
    store = StateStore(tmp_path / "new")
    store.record_attempt("h", action(1))
    assert [e.object_id for e in store.audit()] == ["v1"]
    assert store.samples() == [] and store.applied_migrations == []


def test_ids_handed_out_in_memory_are_unique_across_threads(tmp_path: Path, disk: Disk) -> None:
    store = StateStore(tmp_path)
    disk.fails = FULL

    def remove(n: int) -> int:
        entry = store.record_attempt("h", action(n))
        store.record_outcome(entry, Result.REMOVED, f"done {n}")
        return entry

    with ThreadPoolExecutor(max_workers=8) as pool:
        ids = list(pool.map(remove, range(200)))
    assert len(set(ids)) == 200 and max(ids) < 0
    disk.fails = None
    assert store.flush() == 400
    rows = stored_audit(tmp_path)
    assert len(rows) == 200
    assert all(detail == f"done {obj[1:]}" and out == "removed" for _, obj, out, detail in rows)


def test_outcomes_reach_their_attempts_also_after_the_flush(tmp_path: Path, disk: Disk) -> None:
    store = StateStore(tmp_path)
    disk.fails = FULL
    first = store.record_attempt("h", action(1))
    second = store.record_attempt("h", action(2))
    store.record_outcome(first, Result.REMOVED, "")
    disk.fails = None
    store.flush()
    store.record_outcome(second, Result.FAILED, "engine said no")  # an id from before the flush
    assert [(e.object_id, e.outcome) for e in store.audit()] == [
        ("v2", Result.FAILED),
        ("v1", Result.REMOVED),
    ]
    assert all(e.id > 0 for e in store.audit())


def test_flush_writes_everything_in_order_once_space_is_back(tmp_path: Path, disk: Disk) -> None:
    disk.fails = FULL
    store = StateStore(tmp_path)  # not even opened
    for n in range(3):
        store.record_attempt("h", action(n))
    at = datetime(2026, 1, 1, tzinfo=UTC)
    store.record_sample("h", Filesystem("/d", 1000, 0, 100, 90), at)
    disk.fails = None
    assert store.flush() == 4
    assert store.degraded is None and store.pending == 0
    assert store.flush() == 0
    store.close()
    reopened = StateStore(tmp_path)
    assert [e.object_id for e in reopened.audit()] == ["v2", "v1", "v0"]
    assert [s.at for s in reopened.samples()] == [at]
    assert [row[0] for row in stored_audit(tmp_path)] == [1, 2, 3]


def test_a_flush_on_a_still_full_disk_keeps_the_records(tmp_path: Path, disk: Disk) -> None:
    store = StateStore(tmp_path)
    disk.fails = FULL
    entry = store.record_attempt("h", action(1))
    assert store.flush() == 0 and store.flush() == 0
    assert store.pending == 1 and store.degraded is not None
    assert stored_audit(tmp_path) == []
    disk.fails = None
    store.record_outcome(entry, Result.REMOVED, "")
    assert store.flush() == 2
    assert stored_audit(tmp_path) == [(1, "v1", "removed", "")]


def test_warnings_are_given_once(tmp_path: Path, disk: Disk) -> None:
    store = StateStore(tmp_path)
    assert store.take_warnings() == []
    disk.fails = FULL
    store.record_attempt("h", action(1))
    store.record_attempt("h", action(2))
    assert store.take_warnings() == [
        f"state store {store.path}: disk full (database or disk is full);"
        " records kept in memory until space is freed"
    ]
    store.flush()
    store.flush()
    assert store.take_warnings() == [
        f"state store {store.path}: still disk full (database or disk is full);"
        " 2 records kept in memory"
    ]
    assert store.take_warnings() == []


def test_records_that_cannot_be_written_at_close_are_reported_lost(
    tmp_path: Path, disk: Disk
) -> None:
    store = StateStore(tmp_path)
    disk.fails = FULL
    store.record_attempt("h", action(1))
    store.take_warnings()
    store.close()
    store.close()
    assert store.take_warnings() == [
        f"state store {store.path}: 1 record lost, could not be written:"
        " disk full (database or disk is full)"
    ]


def test_close_writes_what_is_kept_in_memory(tmp_path: Path, disk: Disk) -> None:
    store = StateStore(tmp_path)
    disk.fails = FULL
    store.record_attempt("h", action(1))
    disk.fails = None
    store.close()
    assert stored_audit(tmp_path) == [(1, "v1", None, "")]
    assert store.take_warnings()[1:] == [
        f"state store {store.path}: space is back: 1 record kept in memory now written"
    ]


def test_an_io_error_means_a_full_disk_only_when_the_filesystem_is_full(
    tmp_path: Path, disk: Disk, monkeypatch: pytest.MonkeyPatch
) -> None:
    StateStore(tmp_path).close()
    disk.fails = SHMSIZE
    with pytest.raises(StateError, match="disk I/O error"):
        StateStore(tmp_path)
    full_filesystem(monkeypatch)
    store = StateStore(tmp_path)
    assert store.degraded == "disk full (disk I/O error)"


def test_no_free_inodes_is_named(
    tmp_path: Path, disk: Disk, monkeypatch: pytest.MonkeyPatch
) -> None:
    full_filesystem(monkeypatch, free_inodes=0)
    disk.fails = CANTOPEN
    store = StateStore(tmp_path)
    assert store.degraded == "no free inodes (unable to open database file)"


def test_no_space_to_make_the_state_dir_degrades(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def mkdir(self: Path, *args: object, **kwargs: object) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(self))

    monkeypatch.setattr(Path, "mkdir", mkdir)
    store = StateStore(tmp_path / "state")
    assert store.degraded == f"disk full ({os.strerror(errno.ENOSPC)})"
    assert store.record_attempt("h", action(1)) == -1


@pytest.mark.parametrize("error", [CORRUPT, SHMSIZE, CANTOPEN])
def test_errors_other_than_space_still_raise(
    tmp_path: Path, disk: Disk, error: tuple[int, str, str]
) -> None:
    store = StateStore(tmp_path)
    disk.fails = error
    with pytest.raises(StateError, match=error[2]):
        store.record_attempt("h", action(1))
    with pytest.raises(StateError, match=error[2]):
        StateStore(tmp_path)
    assert store.degraded is None and store.take_warnings() == []


def test_samples_in_memory_and_stored_are_merged_newest_first(tmp_path: Path, disk: Disk) -> None:
    store = StateStore(tmp_path)
    fs = Filesystem("/d", 1000, 400, 100, 90)
    for day in (1, 3):
        store.record_sample("h", fs, datetime(2026, 1, day, tzinfo=UTC))
    disk.fails = FULL
    for day in (2, 4):
        store.record_sample("h", fs, datetime(2026, 1, day, tzinfo=UTC))
    store.record_sample("other", fs, datetime(2026, 1, 5, tzinfo=UTC))
    assert [s.at.day for s in store.samples("h")] == [4, 3, 2, 1]
    assert [s.at.day for s in store.samples(limit=2)] == [5, 4]


class SlowDisk(Disk):
    """Every INSERT takes a millisecond, so that threads queue up behind a write;
    counts the write transactions (BEGIN, or an INSERT outside one)."""

    def __init__(self) -> None:
        super().__init__()
        self.transactions = 0

    def connect(self, target: str, *, uri: bool = False) -> object:
        db = sqlite3.connect(target, uri=uri, isolation_level=None, check_same_thread=False)
        disk = self

        class Counting(Connection):
            def execute(self, sql: str, params: tuple[object, ...] = ()) -> sqlite3.Cursor:
                word = sql.lstrip().split()[0].upper()
                if word == "BEGIN" or (word == "INSERT" and not self.db.in_transaction):
                    disk.transactions += 1
                if word == "INSERT":
                    time.sleep(0.001)
                return super().execute(sql, params)

        return Counting(self, db)


def test_threads_recording_at_once_share_transactions(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    disk = SlowDisk()
    monkeypatch.setattr(state, "_connect", disk.connect)
    store = StateStore(tmp_path)
    before = disk.transactions
    with ThreadPoolExecutor(max_workers=8) as pool:
        ids = list(pool.map(lambda n: store.record_attempt("h", action(n)), range(200)))
    assert len(set(ids)) == 200 and min(ids) > 0
    assert sorted(obj for _, obj, _, _ in stored_audit(tmp_path)) == sorted(
        f"v{n}" for n in range(200)
    )
    # Each attempt was on disk when its call returned, yet far fewer than 200 commits.
    assert disk.transactions - before < 150


def test_all_attempts_of_a_call_are_written_before_it_returns(tmp_path: Path) -> None:
    store = StateStore(tmp_path)
    ids = store.record_attempts("h", [action(n) for n in range(5)])
    assert [row[0] for row in stored_audit(tmp_path)] == ids


def test_outcomes_are_written_with_the_next_write_or_at_close(tmp_path: Path) -> None:
    store = StateStore(tmp_path)
    first = store.record_attempt("h", action(1))
    store.record_outcome(first, Result.REMOVED, "")
    assert stored_audit(tmp_path) == [(first, "v1", None, "")]  # queued, not written yet
    second = store.record_attempt("h", action(2))
    assert stored_audit(tmp_path)[0] == (first, "v1", "removed", "")
    store.record_outcome(second, Result.SKIPPED, "already gone")
    store.close()
    assert stored_audit(tmp_path)[1] == (second, "v2", "skipped", "already gone")


def test_queued_outcomes_are_written_once_enough_wait(tmp_path: Path) -> None:
    store = StateStore(tmp_path)
    ids = store.record_attempts("h", [action(n) for n in range(state.QUEUE_BATCH)])
    for entry in ids:
        store.record_outcome(entry, Result.REMOVED, "")
    assert all(out == "removed" for _, _, out, _ in stored_audit(tmp_path))


def test_an_attempt_that_failed_to_be_written_is_never_written_later(
    tmp_path: Path, disk: Disk
) -> None:
    store = StateStore(tmp_path)
    disk.fails = CORRUPT
    with pytest.raises(StateError):
        store.record_attempt("h", action(1))
    disk.fails = None
    store.record_attempt("h", action(2))
    store.close()
    assert [obj for _, obj, _, _ in stored_audit(tmp_path)] == ["v2"]


def test_the_store_stamps_records_with_its_clock(tmp_path: Path) -> None:
    clock = FakeClock(datetime(2030, 5, 1, 12, tzinfo=UTC))
    store = StateStore(tmp_path, clock=clock)
    entry = store.record_attempt("h", ACTION)
    clock.advance(90)
    store.record_outcome(entry, Result.REMOVED, "")
    store.record_sample("h", Filesystem("/d", 1000, 400, 100, 90))
    (done,) = store.audit()
    (sample,) = store.samples("h")
    store.close()
    assert done.at == datetime(2030, 5, 1, 12, tzinfo=UTC)
    assert sample.at == datetime(2030, 5, 1, 12, 1, 30, tzinfo=UTC)
    db = sqlite3.connect(tmp_path / state.DB_NAME)
    (finished,) = db.execute("SELECT finished_at FROM audit").fetchone()
    applied = {r[0] for r in db.execute("SELECT at FROM migrations")}
    db.close()
    assert finished == "2030-05-01T12:01:30+00:00"
    assert applied == {"2030-05-01T12:00:00+00:00"}
