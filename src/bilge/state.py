"""The state store: SQLite under the state dir.

It keeps the audit log of every removal (written before the removal is
attempted, completed after) and usage samples of the data-root filesystem.
The schema grows by migrations: a registered list, each applied in one
transaction together with the record that it was applied.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from pathlib import Path

from bilge.errors import StateError
from bilge.model import Action, AuditEntry, Filesystem, Kind, Result, UsageSample

DB_NAME = "bilge.db"


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


#: Append only: a migration, once released, is never edited or reordered.
MIGRATIONS: tuple[tuple[str, Callable[[sqlite3.Connection], None]], ...] = (
    ("0001-initial", _m1_initial),
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


class StateStore:
    """Audit log and usage samples, in SQLite (WAL)."""

    def __init__(self, directory: Path) -> None:
        self.path = directory / DB_NAME
        try:
            directory.mkdir(parents=True, exist_ok=True)
            # check_same_thread=False: apply's worker threads record through
            # this one connection; sqlite3 serialises calls on it.
            self._db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
            self._db.execute("PRAGMA journal_mode=WAL")
            # In WAL mode NORMAL keeps the database consistent and loses nothing when
            # bilge itself dies; only a power cut may lose the newest records. FULL
            # would fsync every audit row: a third of apply's time on a crowded host.
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.execute("PRAGMA busy_timeout=5000")
            self._migrate()
        except (OSError, sqlite3.Error) as exc:
            raise StateError(f"state store {self.path}: {exc}") from exc

    def close(self) -> None:
        self._db.close()

    def _migrate(self) -> None:
        self._db.execute("CREATE TABLE IF NOT EXISTS migrations (name TEXT PRIMARY KEY, at TEXT)")
        done = {row[0] for row in self._db.execute("SELECT name FROM migrations")}
        for name, migrate in MIGRATIONS:
            if name in done:
                continue
            self._db.execute("BEGIN IMMEDIATE")
            try:
                migrate(self._db)
                self._db.execute("INSERT INTO migrations VALUES (?, ?)", (name, _now()))
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    @property
    def applied_migrations(self) -> list[str]:
        return [r[0] for r in self._db.execute("SELECT name FROM migrations ORDER BY name")]

    def record_attempt(self, host: str, action: Action) -> int:
        """Write the removal to the audit log; call before attempting it."""
        cur = self._write(
            "INSERT INTO audit (host, at, kind, object_id, name, reason, bytes)"
            " VALUES (?, ?, ?, ?, ?, ?, ?)",
            (host, _now(), str(action.kind), action.id, action.name, action.reason, action.bytes),
        )
        return int(cur.lastrowid or 0)

    def record_outcome(self, entry_id: int, result: Result, detail: str) -> None:
        self._write(
            "UPDATE audit SET outcome = ?, detail = ?, finished_at = ? WHERE id = ?",
            (str(result), detail, _now(), entry_id),
        )

    def record_sample(self, host: str, fs: Filesystem, at: datetime | None = None) -> None:
        self._write(
            "INSERT INTO samples VALUES (?, ?, ?, ?, ?, ?)",
            (
                host,
                (at or datetime.now(UTC)).isoformat(),
                fs.total_bytes,
                fs.free_bytes,
                fs.total_inodes,
                fs.free_inodes,
            ),
        )

    def _write(self, sql: str, params: tuple[object, ...]) -> sqlite3.Cursor:
        try:
            return self._db.execute(sql, params)
        except sqlite3.Error as exc:
            raise StateError(f"state store {self.path}: {exc}") from exc

    def audit(self, limit: int = 100) -> list[AuditEntry]:
        rows = self._db.execute(
            "SELECT id, host, at, kind, object_id, name, reason, bytes, outcome, detail"
            " FROM audit ORDER BY id DESC LIMIT ?",
            (limit,),
        )
        return [
            AuditEntry(
                id=r[0],
                host=r[1],
                at=datetime.fromisoformat(r[2]),
                kind=Kind(r[3]),
                object_id=r[4],
                name=r[5],
                reason=r[6],
                bytes=r[7],
                outcome=Result(r[8]) if r[8] else None,
                detail=r[9],
            )
            for r in rows
        ]

    def samples(self, host: str | None = None, limit: int = 500) -> list[UsageSample]:
        where, params = ("WHERE host = ?", (host, limit)) if host else ("", (limit,))
        rows = self._db.execute(
            f"SELECT host, at, total_bytes, free_bytes, total_inodes, free_inodes FROM samples"
            f" {where} ORDER BY at DESC LIMIT ?",
            params,
        )
        return [UsageSample(r[0], datetime.fromisoformat(r[1]), *r[2:]) for r in rows]


def _now() -> str:
    return datetime.now(UTC).isoformat()
