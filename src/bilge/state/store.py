"""The state store: SQLite under the state dir.

It keeps the audit log of every removal (written before the removal is
attempted, completed after) and usage samples of the data-root filesystem.
The schema grows by migrations: a registered list, each applied in one
transaction together with the record that it was applied.

bilge is needed most when the disk is full, and the state dir is often on that
very disk. So a lack of space never makes the store fail: it *degrades*. While
degraded, records are kept in memory, in order, and reads show them together
with what the database already holds; `flush()` (and `close()`) writes them
once space is back. The store never prints: `take_warnings()` hands over what
the user must be told. Every other failure is a `StateError`.
"""

from __future__ import annotations

import errno
import os
import sqlite3
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

from bilge import __version__
from bilge.errors import StateError
from bilge.model import Action, AuditEntry, Filesystem, Kind, Result, UsageSample
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

DB_NAME = "bilge.db"

#: With less free than this, an I/O error of SQLite's is taken for a lack of
#: space: it grows the WAL several pages at a time and the -shm by 32 KiB.
SPACE_SLACK = 128 * 1024

#: Records that wait for no one (outcomes) are written once this many queued up.
QUEUE_BATCH = 64

_ERRNO_SHORTAGE = {errno.ENOSPC: "disk full", errno.EDQUOT: "disk quota exceeded"}


def _m1_initial(db: sqlite3.Connection) -> None:
    db.execute(
        """CREATE TABLE audit (
            id INTEGER PRIMARY KEY,
            host TEXT NOT NULL,
            at TEXT NOT NULL,
            kind TEXT NOT NULL,
            object_id TEXT NOT NULL,
            name TEXT NOT NULL,
            reason TEXT NOT NULL,
            bytes INTEGER NOT NULL,
            outcome TEXT,
            detail TEXT NOT NULL DEFAULT '',
            finished_at TEXT
        )"""
    )
    db.execute(
        """CREATE TABLE samples (
            host TEXT NOT NULL,
            at TEXT NOT NULL,
            total_bytes INTEGER NOT NULL,
            free_bytes INTEGER NOT NULL,
            total_inodes INTEGER NOT NULL,
            free_inodes INTEGER NOT NULL
        )"""
    )
    db.execute("CREATE INDEX samples_host_at ON samples (host, at)")


def _m2_image_use(db: sqlite3.Connection) -> None:
    # Docker records no "last used" time for images; the guard learns it from the
    # engine's events, and plan and apply use it for images.unused_after.
    db.execute(
        """CREATE TABLE image_use (
            host TEXT NOT NULL,
            image_id TEXT NOT NULL,
            first_seen TEXT NOT NULL,
            last_used TEXT,
            PRIMARY KEY (host, image_id)
        )"""
    )


def _m3_audit_runs(db: sqlite3.Connection) -> None:
    # Which run made an attempt: an attempt left open by a run that died is
    # settled by a later one, never one of a run still going.
    db.execute("ALTER TABLE audit ADD COLUMN run TEXT")
    db.execute("CREATE INDEX audit_open ON audit (host) WHERE outcome IS NULL")


#: Append only: a migration, once released, is never edited or reordered.
MIGRATIONS: tuple[tuple[str, Callable[[sqlite3.Connection], None]], ...] = (
    ("0001-initial", _m1_initial),
    ("0002-image-use", _m2_image_use),
    ("0003-audit-runs", _m3_audit_runs),
)


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


class _NoSpace(Exception):
    """The state dir's filesystem has no room; `reason` is told to the user."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class StateStore:
    """Audit log and usage samples, in SQLite (WAL); in memory while the disk is full.

    Safe to share between threads: one lock serialises the database and the
    records kept in memory, and so the switch between the two.
    """

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.path = directory / DB_NAME
        self._lock = threading.RLock()
        self._db: sqlite3.Connection | None = None
        self._reader: sqlite3.Connection | None = None
        self._pending: list[Record] = []
        self._next_id = -1
        self._flushed: dict[int, int] = {}  # id handed out in memory -> its rowid
        #: Records handed in and not yet taken by a writer (see `_submit`), and
        #: the lock for them alone, so that threads can queue up behind a write.
        self._queue: list[Record] = []
        self._queue_lock = threading.Lock()
        self._handed_in = self._taken = 0
        self._degraded: str | None = None
        self._warnings: list[str] = []
        self._flush_warned = False
        self._closed = False
        self.run = current_run()
        #: Records the final flush could not write: the caller must keep them.
        self.lost: list[Record] = []
        try:
            self._db = self._open()
        except _NoSpace as exc:
            self._degrade(exc.reason)
            self._reader = self._open_reader()

    @property
    def degraded(self) -> str | None:
        """Why records are kept in memory (e.g. "disk full (...)"), or None."""
        return self._degraded

    @property
    def pending(self) -> int:
        """How many records wait in memory for space."""
        with self._settled():
            return len(self._pending)

    def take_warnings(self) -> list[str]:
        """The warnings not taken yet, each a line for the user; each is given once."""
        with self._lock:
            taken, self._warnings = self._warnings, []
        return taken

    @property
    def applied_migrations(self) -> list[str]:
        with self._settled():
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
        at = _now()
        with self._queue_lock:
            first, self._next_id = self._next_id, self._next_id - len(actions)
        attempts = [
            AttemptRecord(
                first - n, host, at, str(a.kind), a.id, a.name, a.reason, a.bytes, self.run
            )
            for n, a in enumerate(actions)
        ]
        self._submit(attempts, wait=True)
        # A written attempt's caller only ever sees its rowid: drop the mapping,
        # which would otherwise grow with every removal of a long-running guard.
        # Those kept in memory keep their negative id until flushed.
        return [self._flushed.pop(a.id, a.id) for a in attempts]

    def record_outcome(self, entry_id: int, result: Result, detail: str) -> None:
        """Queue the outcome: it is written with the next attempt, or by `flush`,
        `close` or any read, whichever comes first. A crash before that leaves
        the entry without an outcome, which is what the audit log then says."""
        entry_id = self._flushed.get(entry_id, entry_id)
        self._submit([OutcomeRecord(entry_id, str(result), detail, _now())], wait=False)

    def record_sample(self, host: str, fs: Filesystem, at: datetime | None = None) -> None:
        at = at or datetime.now(UTC)
        fields = (fs.total_bytes, fs.free_bytes, fs.total_inodes, fs.free_inodes)
        self._submit([SampleRecord(host, at.isoformat(), *fields)], wait=True)

    def record_image_use(
        self, host: str, image_id: str, at: datetime, *, used: bool = True
    ) -> None:
        """The image was seen at `at` (pulled, built, tagged) and, when `used`, used
        by a container then. First-seen times only ever move back, last-used forward."""
        stamp = at.isoformat()
        self._submit([ImageUseRecord(host, image_id, stamp, stamp if used else None)], wait=True)

    def forget_image(self, host: str, image_id: str) -> None:
        self._submit([ImageGoneRecord(host, image_id)], wait=True)

    def image_use(self, host: str) -> dict[str, tuple[datetime, datetime | None]]:
        """image id -> (first seen, last used) for `host`, what waits in memory included."""
        sql = "SELECT image_id, first_seen, last_used FROM image_use WHERE host = ?"
        with self._settled():
            rows = self._read(sql, (host,))
            pending = [r for r in self._pending if isinstance(r, ImageUseRecord | ImageGoneRecord)]
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
        with self._settled():
            try:
                return self._flush()
            except _NoSpace as exc:
                if not self._flush_warned:
                    self._flush_warned = True
                    kept = _records(len(self._pending))
                    self._warn(f"still {exc.reason}; {kept} kept in memory")
                return 0

    def close(self) -> None:
        """Flush, then close. What still cannot be written is lost, with a warning."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            try:
                self._take_queue()
                self._final_flush()
            finally:
                for db in (self._db, self._reader):
                    if db is not None:
                        db.close()
                self._db = self._reader = None

    def audit(self, limit: int = 100) -> list[AuditEntry]:
        """The newest entries first, those kept in memory included."""
        with self._settled():
            outcomes = {r.entry_id: r for r in self._pending if isinstance(r, OutcomeRecord)}
            mine = [r.row() for r in reversed(self._pending) if isinstance(r, AttemptRecord)]
            rows = [*mine, *self._read(_SELECT_AUDIT, (limit,))][:limit]
        return [_audit_entry(row, outcomes.get(row[0])) for row in rows]

    def open_attempts(self, host: str) -> list[AuditEntry]:
        """Attempts on `host` that runs now dead left without an outcome (oldest first);
        settle each with `record_outcome`."""
        now = datetime.now(UTC)
        with self._settled():
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
        with self._settled():
            mine = [
                r.params()
                for r in self._pending
                if isinstance(r, SampleRecord) and (not host or r.host == host)
            ]
            rows = [*mine, *self._read(sql, params)]
        # Sorted by the stored text, as SQLite sorts it.
        rows.sort(key=lambda r: str(r[1]), reverse=True)
        return [UsageSample(r[0], datetime.fromisoformat(r[1]), *r[2:]) for r in rows[:limit]]

    def _open(self) -> sqlite3.Connection:
        with self._errors():
            _private_dir(self.directory)
            # The audit log lists every removed object: for root's eyes only.
            # SQLite gives its -wal and -shm files the database file's mode.
            os.close(os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600))
            if self.path.stat().st_mode & 0o077 and self.path.stat().st_uid == os.geteuid():
                self.path.chmod(0o600)
            db = _connect(str(self.path))
            try:
                _configure(db)
                _migrate(db)
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
                _refuse_newer(db)
            except sqlite3.Error:
                db.close()
                continue
            except StateError as exc:
                db.close()
                raise StateError(f"state store {self.path}: {exc}") from None
            return db
        return None

    @contextmanager
    def _errors(self) -> Iterator[None]:
        """Lack of space becomes `_NoSpace`, any other failure `StateError`."""
        try:
            yield
        except (OSError, sqlite3.Error) as exc:
            reason = _space_shortage(exc, self.directory)
            if reason is None:
                raise StateError(f"state store {self.path}: {exc}") from exc
            raise _NoSpace(reason) from exc

    @contextmanager
    def _settled(self) -> Iterator[None]:
        """The store's lock, with everything handed in written (or kept in memory)
        first: what a read or a flush must see."""
        with self._lock:
            self._take_queue()
            yield

    def _submit(self, records: Sequence[Record], *, wait: bool) -> None:
        """Hand `records` in; with `wait`, return once they are written (or kept
        in memory). Without, they are written by the next writer, or by this
        thread when enough have queued up and no one else is writing.

        Group commit: while one thread writes, the others queue their records;
        the next to get the database writes all that queued up, in one
        transaction, and those whose records it took find them written.
        """
        with self._queue_lock:
            self._queue.extend(records)
            self._handed_in += len(records)
            mark, queued = self._handed_in, len(self._queue)
        if wait:
            with self._lock:
                if self._taken < mark:
                    try:
                        self._take_queue()
                    except StateError:
                        self._withdraw(records)  # the caller is told; never written later
                        raise
        elif queued >= QUEUE_BATCH and self._lock.acquire(blocking=False):
            try:
                self._take_queue()
            finally:
                self._lock.release()

    def _withdraw(self, records: Sequence[Record]) -> None:
        mine = {id(r) for r in records}
        with self._queue_lock:
            self._queue = [r for r in self._queue if id(r) not in mine]

    def _take_queue(self) -> None:
        """Write what was handed in, or keep it in memory when there is no space.

        Once degraded, every record waits in memory, even if space came back:
        written ahead of the earlier ones it would break their order, and
        trying the disk for each record would slow apply down on a full disk.
        Any other failure puts the records back: the thread of each retries
        and is told, and withdraws its own.
        """
        with self._queue_lock:
            batch, self._queue = self._queue, []
            self._taken += len(batch)
        if not batch:
            return
        if self._degraded is None and self._db is not None:
            try:
                self._write_all(self._db, batch)
                return
            except _NoSpace as exc:
                self._degrade(exc.reason)
            except StateError:
                with self._queue_lock:
                    self._queue[:0] = batch
                    self._taken -= len(batch)
                raise
        self._pending.extend(batch)

    def _write_all(self, db: sqlite3.Connection, records: list[Record]) -> None:
        """Write `records` in order, all or none; map the ids handed out in memory."""
        ids: dict[int, int] = {}
        with self._errors():
            if len(records) == 1:  # one statement is a transaction of its own
                self._write(db, records[0], ids)
            else:
                with _transaction(db):
                    for record in records:
                        self._write(db, record, ids)
        self._flushed.update(ids)

    def _write(self, db: sqlite3.Connection, record: Record, ids: dict[int, int]) -> None:
        params = record.params()
        if isinstance(record, OutcomeRecord):
            entry = record.entry_id
            params = (*params[:-1], ids.get(entry, self._flushed.get(entry, entry)))
        rowid = db.execute(record.SQL, params).lastrowid
        if isinstance(record, AttemptRecord):
            ids[record.id] = int(rowid or 0)

    def _read(self, sql: str, params: Row) -> list[Row]:
        db = self._db or self._reader
        if db is None:
            return []
        try:
            with self._errors():
                return db.execute(sql, params).fetchall()
        except _NoSpace:
            return []  # shown: what is kept in memory

    def _flush(self) -> int:
        if self._degraded is None:
            return 0
        if self._db is None:
            self._db = self._open()
            self._close_reader()  # it may not see what is written from now on
        if self._pending:
            self._write_all(self._db, self._pending)
        written = len(self._pending)
        self._pending.clear()
        self._degraded = None
        if written:
            self._warn(f"space is back: {_records(written)} kept in memory now written")
        return written

    def _final_flush(self) -> None:
        if not self._pending:
            return
        try:
            self._flush()
        except _NoSpace as exc:
            self._warn_lost(exc.reason)
        except StateError as exc:
            self._warn_lost(str(exc.__cause__ or exc))
            raise
        finally:
            if self._pending:
                self.lost = list(self._pending)

    def _close_reader(self) -> None:
        if self._reader is not None:
            self._reader.close()
            self._reader = None

    def _degrade(self, reason: str) -> None:
        if self._degraded is None:
            self._degraded = reason
            self._flush_warned = False
            self._warn(f"{reason}; records kept in memory until space is freed")

    def _warn_lost(self, reason: str) -> None:
        self._warn(f"{_records(len(self._pending))} lost, could not be written: {reason}")

    def _warn(self, text: str) -> None:
        self._warnings.append(f"state store {self.path}: {text}")


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


def _migrate(db: sqlite3.Connection) -> None:
    db.execute("CREATE TABLE IF NOT EXISTS migrations (name TEXT PRIMARY KEY, at TEXT)")
    _refuse_newer(db)
    done = {row[0] for row in db.execute("SELECT name FROM migrations")}
    for name, migrate in MIGRATIONS:
        if name not in done:
            with _transaction(db):
                migrate(db)
                db.execute("INSERT INTO migrations VALUES (?, ?)", (name, _now()))


def _refuse_newer(db: sqlite3.Connection) -> None:
    """A store a newer bilge migrated may mean things this one does not know:
    refused, not used (DESIGN.md, safety rule 11)."""
    known = [name for name, _ in MIGRATIONS]
    unknown = sorted({r[0] for r in db.execute("SELECT name FROM migrations")} - set(known))
    if unknown:
        raise StateError(
            f"written by a newer bilge (schema {unknown[-1]}; bilge {__version__} knows up to"
            f" {known[-1]}): upgrade bilge, or use another --state-dir"
        )


def _private_dir(directory: Path) -> None:
    """Create the state dir (and its parents) for its owner's eyes only; an
    existing one keeps its mode (it may be a shared directory given on purpose)."""
    if directory.is_dir():
        return
    directory.parent.mkdir(parents=True, exist_ok=True)
    directory.mkdir(mode=0o700, exist_ok=True)
    directory.chmod(0o700)  # mkdir's mode is cut by the umask, never widened


@contextmanager
def _transaction(db: sqlite3.Connection) -> Iterator[None]:
    db.execute("BEGIN IMMEDIATE")
    try:
        yield
        db.execute("COMMIT")
    except BaseException:
        # SQLite may have rolled back already (it does on some SQLITE_FULL);
        # a second ROLLBACK would hide the error that matters.
        if db.in_transaction:
            db.execute("ROLLBACK")
        raise


def _space_shortage(exc: OSError | sqlite3.Error, directory: Path) -> str | None:
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
    found = _filesystem_shortage(directory)
    if certain is None and found is None:
        return None
    return f"{found or certain} ({detail})"


def _filesystem_shortage(directory: Path) -> str | None:
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


def _records(n: int) -> str:
    return f"{n} record" if n == 1 else f"{n} records"


def _now() -> str:
    return datetime.now(UTC).isoformat()
