"""The state store on a really full filesystem: a small tmpfs, filled to the brim.

Out of bytes and out of inodes, a store opened there (fresh, or on a database
made before the disk filled) records without raising, shows what it keeps,
and writes it all once space is freed. Needs root (to mount); skipped otherwise.
"""

from __future__ import annotations

import errno
import os
import subprocess
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from bilge.model import Action, Filesystem, Kind, Result
from bilge.state.store import StateStore

Filler = Callable[[Path], Callable[[], None]]


@pytest.fixture
def small_fs(tmp_path: Path) -> Iterator[Path]:
    """A 256 KiB tmpfs with 64 inodes, unmounted afterwards."""
    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs needs root")
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    mount = ["mount", "-t", "tmpfs", "-o", "size=256k,nr_inodes=64", "tmpfs", str(mnt)]
    try:
        done = subprocess.run(mount, capture_output=True, text=True, check=False)
    except OSError as exc:
        pytest.skip(f"cannot run mount: {exc}")
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip()}")
    try:
        yield mnt
    finally:
        # Lazily if something still holds a file open: a failed test must not
        # leave a mount behind.
        if subprocess.run(["umount", str(mnt)], capture_output=True, check=False).returncode:
            subprocess.run(["umount", "-l", str(mnt)], check=True)


def fill_bytes(mnt: Path) -> Callable[[], None]:
    """Write until no byte is left; returns what frees them again."""
    filler = mnt / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT)
    try:
        for chunk in (b"x" * 4096, b"x"):
            _write_until_full(fd, chunk)
    finally:
        os.close(fd)
    return filler.unlink


def _write_until_full(fd: int, chunk: bytes) -> None:
    try:
        while True:
            os.write(fd, chunk)
    except OSError as exc:
        assert exc.errno == errno.ENOSPC


def fill_inodes(mnt: Path) -> Callable[[], None]:
    """Create empty files until no inode is left; returns what frees them again."""
    made: list[Path] = []
    try:
        while True:
            made.append(mnt / f"f{len(made)}")
            made[-1].touch()
    except OSError as exc:
        assert exc.errno == errno.ENOSPC
        made.pop()

    def free() -> None:
        for path in made:
            path.unlink()

    return free


FILLERS = [pytest.param(fill_bytes, id="bytes"), pytest.param(fill_inodes, id="inodes")]
AT = datetime(2026, 1, 1, tzinfo=UTC)


def action(n: int) -> Action:
    return Action(Kind.VOLUME, f"v{n}", f"v{n}", "unreferenced", n, "no container mounts it", "fp")


def record(store: StateStore, n: int) -> None:
    """An attempt with its outcome and a sample: what apply and watch write."""
    entry = store.record_attempt("h", action(n))
    store.record_outcome(entry, Result.REMOVED, "")
    store.record_sample("h", Filesystem("/d", 1000, n, 100, 90), AT + timedelta(minutes=n))


def read_back(directory: Path) -> tuple[list[str], list[int]]:
    store = StateStore(directory)
    try:
        assert store.degraded is None
        audit = [f"{e.object_id}:{e.outcome}" for e in store.audit()]
        return audit, [s.free_bytes for s in store.samples()]
    finally:
        store.close()


@pytest.mark.parametrize("fill", FILLERS)
def test_a_fresh_store_on_a_full_disk_keeps_records_until_space_is_back(
    small_fs: Path, fill: Filler
) -> None:
    free = fill(small_fs)
    store = StateStore(small_fs / "state")
    try:
        assert store.degraded is not None
        record(store, 1)
        record(store, 2)
        assert [(e.object_id, e.outcome) for e in store.audit()] == [
            ("v2", Result.REMOVED),
            ("v1", Result.REMOVED),
        ]
        assert store.flush() == 0 and store.pending == 6
        free()
        assert store.flush() == 6
        assert store.degraded is None
    finally:
        store.close()
    assert read_back(small_fs / "state") == (["v2:removed", "v1:removed"], [2, 1])


@pytest.mark.parametrize("fill", FILLERS)
def test_a_store_made_before_the_disk_filled_shows_old_and_new_records(
    small_fs: Path, fill: Filler
) -> None:
    before = StateStore(small_fs / "state")
    record(before, 1)
    before.close()
    free = fill(small_fs)
    store = StateStore(small_fs / "state")
    try:
        assert store.degraded is not None
        record(store, 2)
        assert [e.object_id for e in store.audit()] == ["v2", "v1"]
        assert [s.free_bytes for s in store.samples()] == [2, 1]
        free()
        assert store.flush() == 3
    finally:
        store.close()
    assert read_back(small_fs / "state") == (["v2:removed", "v1:removed"], [2, 1])


def test_a_store_keeps_working_when_the_disk_fills_under_it(small_fs: Path) -> None:
    store = StateStore(small_fs / "state")
    try:
        record(store, 1)
        free = fill_bytes(small_fs)
        # SQLite reuses the room its WAL already has: a few more may be written.
        last = 1
        while store.degraded is None and last < 200:
            last += 1
            record(store, last)
        last += 1
        record(store, last)
        assert store.degraded is not None
        assert [e.object_id for e in store.audit()] == [f"v{n}" for n in range(last, 0, -1)]
        kept = store.pending
        free()
        assert store.flush() == kept > 0
    finally:
        store.close()
    audit, samples = read_back(small_fs / "state")
    assert audit == [f"v{n}:removed" for n in range(last, 0, -1)]
    assert samples == list(range(last, 0, -1))


def test_records_that_never_found_space_are_reported_lost(small_fs: Path) -> None:
    fill_inodes(small_fs)
    store = StateStore(small_fs / "state")
    record(store, 1)
    first = store.take_warnings()
    store.close()
    assert [w.split(": ", 1)[1] for w in first + store.take_warnings()] == [
        "no free inodes (No space left on device); records kept in memory until space is freed",
        "3 records lost, could not be written: no free inodes (No space left on device)",
    ]
    # Handed over, for the command line to print (handlers._report_lost).
    assert [type(r).__name__ for r in store.lost] == [
        "AttemptRecord",
        "OutcomeRecord",
        "SampleRecord",
    ]
