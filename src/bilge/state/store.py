"""The state store: SQLite under the state dir.

It keeps the audit log of every removal (written before the removal is
attempted, completed after), usage samples of the data-root filesystem, and
when each image was first seen and last used. This module is its API and how
the database is opened; the rest is split by concern:

- journal.py: group commits, and records kept in memory while the disk is
  full (the store *degrades* rather than fails: bilge is needed most then);
- migrations.py: the schema, a registered list of migrations;
- space.py: telling a full disk from other failures, which are `StateError`.

Its times come from a `Clock` (bilge.clock), so that tests fix them. The store
never prints: `take_warnings()` hands over what the user must be told.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Mapping, Sequence
from datetime import datetime
from pathlib import Path

from bilge.clock import SYSTEM_CLOCK, Clock
from bilge.errors import StateError
from bilge.model import Action, AuditEntry, Filesystem, Kind, Result, UsageSample
from bilge.state.journal import QUEUE_BATCH, Journal
from bilge.state.migrations import MIGRATIONS, migrate, refuse_newer
from bilge.state.records import (
    AttemptRecord,
    ImageGoneRecord,
    ImageUseRecord,
    OutcomeRecord,
    Record,
    Row,
    SampleRecord,
)
from bilge.state.runs import current_run, run_alive
from bilge.state.space import space_errors

__all__ = [
    "DB_NAME",
    "MIGRATIONS",
    "QUEUE_BATCH",
    "StateStore",
    "default_state_dir",
]

DB_NAME = "bilge.db"


def default_state_dir(env: Mapping[str, str] | None = None) -> Path:
    """--state-dir, else $BILGE_STATE_DIR, else /var/lib/bilge as root, else XDG."""
    env = os.environ if env is None else env
    if env.get("BILGE_STATE_DIR"):
        return Path(env["BILGE_STATE_DIR"])
    if os.geteuid() == 0:
        return Path("/var/lib/bilge")
    base = env.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "bilge"


_AUDIT_COLUMNS = "id, host, at, kind, object_id, name, reason, bytes, outcome, detail"
_SELECT_AUDIT = f"SELECT {_AUDIT_COLUMNS} FROM audit ORDER BY id DESC LIMIT ?"
_SELECT_OPEN = f"SELECT {_AUDIT_COLUMNS}, run FROM audit WHERE host = ? AND outcome IS NULL"


class StateStore:
    """Audit log and usage samples, in SQLite (WAL); in memory while the disk is full.

    Safe to share between threads (journal.py says how).
    """

    def __init__(self, directory: Path, *, clock: Clock = SYSTEM_CLOCK) -> None:
        self.directory = directory
        self.path = directory / DB_NAME
        self.clock = clock
        self.run = current_run()
        self._closed = False
        self._journal = Journal(directory, self.path, self._open, self._open_reader)

    @property
    def degraded(self) -> str | None:
        """Why records are kept in memory (e.g. "disk full (...)"), or None."""
        return self._journal.degraded

    @property
    def pending(self) -> int:
        """How many records wait in memory for space."""
        with self._journal.settled():
            return len(self._journal.pending)

    @property
    def lost(self) -> list[Record]:
        """Records the final flush could not write: the caller must keep them."""
        return self._journal.lost

    def take_warnings(self) -> list[str]:
        """The warnings not taken yet, each a line for the user; each is given once."""
        return self._journal.take_warnings()

    @property
    def applied_migrations(self) -> list[str]:
        with self._journal.settled():
            return [r[0] for r in self._read("SELECT name FROM migrations ORDER BY name", ())]

    def record_attempt(self, host: str, action: Action) -> int:
        """Write the removal to the audit log; call before attempting it."""
        return self.record_attempts(host, [action])[0]

    def record_attempts(self, host: str, actions: Sequence[Action]) -> list[int]:
        """Write the removals to the audit log, in one transaction; call before
        attempting them.

        They are written when this returns. Threads recording at the same time
        share one transaction. The ids it returns are for `record_outcome`; one
        is negative while its entry is kept in memory, and stays valid after
        the entry is flushed.
        """
        at = self._now()
        first = self._journal.new_ids(len(actions))
        attempts = [
            AttemptRecord(
                first - n, host, at, str(a.kind), a.id, a.name, a.reason, a.bytes, self.run
            )
            for n, a in enumerate(actions)
        ]
        self._journal.submit(attempts, wait=True)
        # Those kept in memory keep their negative id until flushed.
        return [self._journal.written_id(a.id, forget=True) for a in attempts]

    def record_outcome(self, entry_id: int, result: Result, detail: str) -> None:
        """Queue the outcome: it is written with the next attempt, or by `flush`,
        `close` or any read, whichever comes first. A crash before that leaves
        the entry without an outcome, which is what the audit log then says."""
        entry_id = self._journal.written_id(entry_id)
        record = OutcomeRecord(entry_id, str(result), detail, self._now())
        self._journal.submit([record], wait=False)

    def record_sample(self, host: str, fs: Filesystem, at: datetime | None = None) -> None:
        at = at or self.clock.now()
        fields = (fs.total_bytes, fs.free_bytes, fs.total_inodes, fs.free_inodes)
        self._journal.submit([SampleRecord(host, at.isoformat(), *fields)], wait=True)

    def record_image_use(
        self, host: str, image_id: str, at: datetime, *, used: bool = True
    ) -> None:
        """The image was seen at `at` (pulled, built, tagged) and, when `used`, used
        by a container then. First-seen times only ever move back, last-used forward."""
        stamp = at.isoformat()
        record = ImageUseRecord(host, image_id, stamp, stamp if used else None)
        self._journal.submit([record], wait=True)

    def forget_image(self, host: str, image_id: str) -> None:
        self._journal.submit([ImageGoneRecord(host, image_id)], wait=True)

    def image_use(self, host: str) -> dict[str, tuple[datetime, datetime | None]]:
        """image id -> (first seen, last used) for `host`, what waits in memory included."""
        sql = "SELECT image_id, first_seen, last_used FROM image_use WHERE host = ?"
        with self._journal.settled():
            rows = self._read(sql, (host,))
            pending = [
                r for r in self._journal.pending if isinstance(r, ImageUseRecord | ImageGoneRecord)
            ]
        known: dict[str, tuple[str, str | None]] = {r[0]: (r[1], r[2]) for r in rows}
        for record in pending:
            if record.host == host:
                record.apply_to(known)
        return {
            image: (datetime.fromisoformat(first), datetime.fromisoformat(last) if last else None)
            for image, (first, last) in known.items()
        }

    def flush(self) -> int:
        """Write the records kept in memory, in their order, in one transaction.

        Returns how many were written; afterwards the store is no longer
        degraded. While there is still no space they stay in memory and 0 is
        returned (a warning says so, once per shortage). Other failures raise
        `StateError`, the records staying in memory.
        """
        return self._journal.flush()

    def close(self) -> None:
        """Flush, then close. What still cannot be written is lost, with a warning."""
        with self._journal.lock:
            if self._closed:
                return
            self._closed = True
            self._journal.close()

    def audit(self, limit: int = 100, hosts: Sequence[str] = ()) -> list[AuditEntry]:
        """The newest entries first, those kept in memory included; only those
        of `hosts` when given."""
        sql: str = _SELECT_AUDIT
        params: tuple[object, ...] = (limit,)
        if hosts:
            where = f"WHERE host IN ({', '.join('?' * len(hosts))}) ORDER BY id DESC LIMIT ?"
            sql, params = f"SELECT {_AUDIT_COLUMNS} FROM audit {where}", (*hosts, limit)
        with self._journal.settled():
            pending = self._journal.pending
            outcomes = {r.entry_id: r for r in pending if isinstance(r, OutcomeRecord)}
            mine = [r.row() for r in reversed(pending) if isinstance(r, AttemptRecord)]
            mine = [row for row in mine if not hosts or row[1] in hosts]
            rows = [*mine, *self._read(sql, params)][:limit]
        return [_audit_entry(row, outcomes.get(row[0])) for row in rows]

    def open_attempts(self, host: str) -> list[AuditEntry]:
        """Attempts on `host` that runs now dead left without an outcome (oldest first);
        settle each with `record_outcome`."""
        now = self.clock.now()
        with self._journal.settled():
            rows = self._read(_SELECT_OPEN, (host,))
        return [
            _audit_entry(row[:-1], None)
            for row in sorted(rows, key=lambda r: int(r[0]))
            if row[-1] != self.run and not run_alive(row[-1], datetime.fromisoformat(row[2]), now)
        ]

    def samples(self, host: str | None = None, limit: int = 500) -> list[UsageSample]:
        """The newest samples first, those kept in memory included."""
        where, params = ("WHERE host = ?", (host, limit)) if host else ("", (limit,))
        sql = (
            f"SELECT host, at, total_bytes, free_bytes, total_inodes, free_inodes FROM samples"
            f" {where} ORDER BY at DESC LIMIT ?"
        )
        with self._journal.settled():
            mine = [
                r.params()
                for r in self._journal.pending
                if isinstance(r, SampleRecord) and (not host or r.host == host)
            ]
            rows = [*mine, *self._read(sql, params)]
        # Sorted by the stored text, as SQLite sorts it.
        rows.sort(key=lambda r: str(r[1]), reverse=True)
        return [UsageSample(r[0], datetime.fromisoformat(r[1]), *r[2:]) for r in rows[:limit]]

    def _now(self) -> str:
        return self.clock.now().isoformat()

    def _read(self, sql: str, params: Row) -> list[Row]:
        return self._journal.read(sql, params)

    def _open(self) -> sqlite3.Connection:
        """The database for writing, created and migrated if need be; `NoSpace`
        when there is no room for it."""
        with space_errors(self.directory, self.path):
            _private_dir(self.directory)
            # The audit log lists every removed object: for root's eyes only.
            # SQLite gives its -wal and -shm files the database file's mode.
            os.close(os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600))
            if self.path.stat().st_mode & 0o077 and self.path.stat().st_uid == os.geteuid():
                self.path.chmod(0o600)
            db = _connect(str(self.path))
            try:
                _configure(db)
                migrate(db, self._now())
            except StateError as exc:
                db.close()
                raise StateError(f"state store {self.path}: {exc}") from None
            except BaseException:
                db.close()
                raise
            return db

    def _open_reader(self) -> sqlite3.Connection | None:
        """What the database holds, read-only, or None when nothing can be read.

        mode=ro still needs the -shm file of a WAL database, which a full disk
        may not let SQLite create; immutable=1 does without it, at the price of
        what only the WAL holds (nothing once the last writer closed cleanly).
        """
        try:
            uri = self.path.resolve().as_uri()
        except OSError:
            return None
        for option in ("mode=ro", "immutable=1"):
            try:
                db = _connect(f"{uri}?{option}", uri=True)
            except sqlite3.Error:
                continue
            try:
                db.execute("SELECT 1 FROM audit, samples, migrations LIMIT 0")
                refuse_newer(db)
            except sqlite3.Error:
                db.close()
                continue
            except StateError as exc:
                db.close()
                raise StateError(f"state store {self.path}: {exc}") from None
            return db
        return None


def _connect(target: str, *, uri: bool = False) -> sqlite3.Connection:
    # check_same_thread=False: apply's worker threads record through one
    # connection; the store's lock serialises them.
    return sqlite3.connect(target, uri=uri, isolation_level=None, check_same_thread=False)


def _configure(db: sqlite3.Connection) -> None:
    # Before journal_mode: switching to WAL takes a lock another process may hold.
    db.execute("PRAGMA busy_timeout=5000")
    db.execute("PRAGMA journal_mode=WAL")
    # In WAL mode NORMAL keeps the database consistent and loses nothing when
    # bilge itself dies; only a power cut may lose the newest records. FULL
    # would fsync every audit row: a third of apply's time on a crowded host.
    db.execute("PRAGMA synchronous=NORMAL")


def _private_dir(directory: Path) -> None:
    """Create the state dir (and its parents) for its owner's eyes only; an
    existing one keeps its mode (it may be a shared directory given on purpose)."""
    if directory.is_dir():
        return
    directory.parent.mkdir(parents=True, exist_ok=True)
    directory.mkdir(mode=0o700, exist_ok=True)
    directory.chmod(0o700)  # mkdir's mode is cut by the umask, never widened


def _audit_entry(row: Row, outcome: OutcomeRecord | None) -> AuditEntry:
    """An entry from a row of `_SELECT_AUDIT`; `outcome` (in memory) is newer than the row's."""
    result, detail = (outcome.outcome, outcome.detail) if outcome else (row[8], row[9])
    return AuditEntry(
        id=row[0],
        host=row[1],
        at=datetime.fromisoformat(row[2]),
        kind=Kind(row[3]),
        object_id=row[4],
        name=row[5],
        reason=row[6],
        bytes=row[7],
        outcome=Result(result) if result else None,
        detail=detail,
    )
