"""How the state store writes: group commits, and memory while the disk is full.

Threads hand records in (`submit`); while one thread writes, the others queue
theirs, and the next to get the database writes all that queued up in one
transaction. apply's workers record an attempt before each removal, and one
commit for several of them is what keeps the audit log from slowing apply down.

bilge is needed most when the disk is full, and the state dir is often on
that very disk. So a lack of space never makes the journal fail: it degrades.
While degraded, records are kept in memory, in order; reads see them with what
the database holds; `flush` writes them once space is back, and what the final
flush cannot write is `lost`, for the caller to hand to the user. Warnings are
collected, never printed: `take_warnings` hands them over.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from bilge.errors import StateError
from bilge.state.migrations import transaction
from bilge.state.records import AttemptRecord, OutcomeRecord, Record, Row
from bilge.state.space import NoSpace, space_errors

#: Records that wait for no one (outcomes) are written once this many queued up.
QUEUE_BATCH = 64


class Journal:
    """The records of one database, written in group commits or kept in memory.

    One lock (`lock`) serialises the database and the records kept in memory,
    and so the switch between the two; a second one guards the queue alone, so
    that threads can queue up behind a write.
    """

    def __init__(
        self,
        directory: Path,
        path: Path,
        open_db: Callable[[], sqlite3.Connection],
        open_reader: Callable[[], sqlite3.Connection | None],
    ) -> None:
        self.directory = directory
        self.path = path
        self._open_db = open_db
        self.lock = threading.RLock()
        self._db: sqlite3.Connection | None = None
        self._reader: sqlite3.Connection | None = None
        #: Records kept in memory while degraded, in the order handed in.
        self.pending: list[Record] = []
        self._next_id = -1
        self._flushed: dict[int, int] = {}  # id handed out in memory -> its rowid
        #: Records handed in and not yet taken by a writer (see `submit`).
        self._queue: list[Record] = []
        self._queue_lock = threading.Lock()
        self._handed_in = self._taken = 0
        self.degraded: str | None = None
        self._warnings: list[str] = []
        self._flush_warned = False
        #: Records the final flush could not write: the caller must keep them.
        self.lost: list[Record] = []
        try:
            self._db = open_db()
        except NoSpace as exc:
            self._degrade(exc.reason)
            self._reader = open_reader()

    def new_ids(self, count: int) -> int:
        """The first of `count` ids (counting down, all negative) for attempts
        not written yet; unique in this journal."""
        with self._queue_lock:
            first, self._next_id = self._next_id, self._next_id - count
        return first

    def written_id(self, entry_id: int, *, forget: bool = False) -> int:
        """The rowid of an attempt once written (its id in memory until then).
        `forget`: its caller only ever sees the rowid from now on, so the
        mapping, which would grow with every removal of a long guard, goes."""
        if forget:
            return self._flushed.pop(entry_id, entry_id)
        return self._flushed.get(entry_id, entry_id)

    def take_warnings(self) -> list[str]:
        with self.lock:
            taken, self._warnings = self._warnings, []
        return taken

    @contextmanager
    def settled(self) -> Iterator[None]:
        """The lock, with everything handed in written (or kept in memory)
        first: what a read or a flush must see."""
        with self.lock:
            self._take_queue()
            yield

    def submit(self, records: Sequence[Record], *, wait: bool) -> None:
        """Hand `records` in; with `wait`, return once they are written (or kept
        in memory). Without, they are written by the next writer, or by this
        thread when enough have queued up and no one else is writing.

        Group commit: the next thread to get the database writes all that
        queued up, in one transaction, and those whose records it took find
        them written.
        """
        with self._queue_lock:
            self._queue.extend(records)
            self._handed_in += len(records)
            mark, queued = self._handed_in, len(self._queue)
        if wait:
            with self.lock:
                if self._taken < mark:
                    try:
                        self._take_queue()
                    except StateError:
                        self._withdraw(records)  # the caller is told; never written later
                        raise
        elif queued >= QUEUE_BATCH and self.lock.acquire(blocking=False):
            try:
                self._take_queue()
            finally:
                self.lock.release()

    def read(self, sql: str, params: Row) -> list[Row]:
        """Rows of the database (the read-only view while it cannot be opened
        for writing); none when it cannot be read for lack of space."""
        db = self._db or self._reader
        if db is None:
            return []
        try:
            with space_errors(self.directory, self.path):
                return db.execute(sql, params).fetchall()
        except NoSpace:
            return []  # shown: what is kept in memory

    def flush(self) -> int:
        """Write the records kept in memory, in their order, in one transaction.

        Returns how many were written; afterwards the journal is no longer
        degraded. While there is still no space they stay in memory and 0 is
        returned (a warning says so, once per shortage). Other failures raise
        `StateError`, the records staying in memory.
        """
        with self.settled():
            try:
                return self._flush()
            except NoSpace as exc:
                if not self._flush_warned:
                    self._flush_warned = True
                    self._warn(f"still {exc.reason}; {_records(len(self.pending))} kept in memory")
                return 0

    def close(self) -> None:
        """Write what can be written, then close; the rest goes to `lost`."""
        with self.lock:
            try:
                self._take_queue()
                self._final_flush()
            finally:
                for db in (self._db, self._reader):
                    if db is not None:
                        db.close()
                self._db = self._reader = None

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
        if self.degraded is None and self._db is not None:
            try:
                self._write_all(self._db, batch)
                return
            except NoSpace as exc:
                self._degrade(exc.reason)
            except StateError:
                with self._queue_lock:
                    self._queue[:0] = batch
                    self._taken -= len(batch)
                raise
        self.pending.extend(batch)

    def _write_all(self, db: sqlite3.Connection, records: list[Record]) -> None:
        """Write `records` in order, all or none; map the ids handed out in memory."""
        ids: dict[int, int] = {}
        with space_errors(self.directory, self.path):
            if len(records) == 1:  # one statement is a transaction of its own
                self._write(db, records[0], ids)
            else:
                with transaction(db):
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

    def _flush(self) -> int:
        if self.degraded is None:
            return 0
        if self._db is None:
            self._db = self._open_db()
            self._close_reader()  # it may not see what is written from now on
        if self.pending:
            self._write_all(self._db, self.pending)
        written = len(self.pending)
        self.pending.clear()
        self.degraded = None
        if written:
            self._warn(f"space is back: {_records(written)} kept in memory now written")
        return written

    def _final_flush(self) -> None:
        if not self.pending:
            return
        try:
            self._flush()
        except NoSpace as exc:
            self._warn_lost(exc.reason)
        except StateError as exc:
            self._warn_lost(str(exc.__cause__ or exc))
            raise
        finally:
            if self.pending:
                self.lost = list(self.pending)

    def _close_reader(self) -> None:
        if self._reader is not None:
            self._reader.close()
            self._reader = None

    def _degrade(self, reason: str) -> None:
        if self.degraded is None:
            self.degraded = reason
            self._flush_warned = False
            self._warn(f"{reason}; records kept in memory until space is freed")

    def _warn_lost(self, reason: str) -> None:
        self._warn(f"{_records(len(self.pending))} lost, could not be written: {reason}")

    def _warn(self, text: str) -> None:
        self._warnings.append(f"state store {self.path}: {text}")


def _records(n: int) -> str:
    return f"{n} record" if n == 1 else f"{n} records"
