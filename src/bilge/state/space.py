"""Telling a full disk from other failures of the state store.

A lack of space must not make the store fail (it degrades, journal.py), while
any other failure must: a corrupt database, a state dir that is a file. SQLite
does not always say "disk full" when that is the cause (an I/O error growing
the WAL, a -shm file it cannot create), so for those the filesystem is asked.
"""

from __future__ import annotations

import errno
import os
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from bilge.errors import StateError

#: With less free than this, an I/O error of SQLite's is taken for a lack of
#: space: it grows the WAL several pages at a time and the -shm by 32 KiB.
SPACE_SLACK = 128 * 1024

_ERRNO_SHORTAGE = {errno.ENOSPC: "disk full", errno.EDQUOT: "disk quota exceeded"}


class NoSpace(Exception):
    """The state dir's filesystem has no room; `reason` is told to the user."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@contextmanager
def space_errors(directory: Path, path: Path) -> Iterator[None]:
    """Lack of space in `directory` becomes `NoSpace`, any other failure a
    `StateError` naming the database `path`."""
    try:
        yield
    except (OSError, sqlite3.Error) as exc:
        reason = space_shortage(exc, directory)
        if reason is None:
            raise StateError(f"state store {path}: {exc}") from exc
        raise NoSpace(reason) from exc


def space_shortage(exc: OSError | sqlite3.Error, directory: Path) -> str | None:
    """Why `exc` means that the state dir's filesystem is out of space, or None."""
    if isinstance(exc, OSError):
        certain, possible, detail = _ERRNO_SHORTAGE.get(exc.errno or 0), False, exc.strerror
    else:
        primary = (getattr(exc, "sqlite_errorcode", None) or 0) & 0xFF
        certain = "disk full" if primary == sqlite3.SQLITE_FULL else None
        # An I/O error, or a file SQLite cannot create (-wal, -shm, the
        # database), means no space only when the filesystem says so.
        possible, detail = primary in (sqlite3.SQLITE_IOERR, sqlite3.SQLITE_CANTOPEN), str(exc)
    if certain is None and not possible:
        return None
    found = filesystem_shortage(directory)
    if certain is None and found is None:
        return None
    return f"{found or certain} ({detail})"


def filesystem_shortage(directory: Path) -> str | None:
    """What statvfs says the state dir's filesystem lacks ("no free inodes",
    "disk full"), or None; asks the nearest existing parent when the dir
    itself could not be made."""
    path = directory.absolute()
    try:
        while not path.exists() and path != path.parent:
            path = path.parent
        st = os.statvfs(path)
    except OSError:
        return None
    # Root may use the blocks ext4 reserves for it; everyone else may not.
    root = os.geteuid() == 0
    if st.f_files and (st.f_ffree if root else st.f_favail) == 0:
        return "no free inodes"
    if (st.f_bfree if root else st.f_bavail) * st.f_frsize < SPACE_SLACK:
        return "disk full"
    return None
