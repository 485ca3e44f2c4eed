"""The state store's schema, grown by migrations, and the SQLite habits it
relies on.

Migrations are a registered list, append only: each is applied in one
transaction together with the row that records it, so a store is never left
half migrated. A store that records a migration this bilge does not know was
written by a newer bilge, and is refused (docs/architecture.md, safety rule 11).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from bilge import __version__
from bilge.errors import StateError


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


def _m4_registry_pulls(db: sqlite3.Connection) -> None:
    # The Registry API does not say when a manifest was last pulled; the
    # registry's notifications do (`bilge registry listen`), and registry
    # rules keep what was pulled lately (keep_pulled_within).
    db.execute(
        """CREATE TABLE registry_pulls (
            registry TEXT NOT NULL,
            repository TEXT NOT NULL,
            digest TEXT NOT NULL,
            last_pulled TEXT NOT NULL,
            PRIMARY KEY (registry, repository, digest)
        )"""
    )


#: Append only: a migration, once released, is never edited or reordered.
MIGRATIONS: tuple[tuple[str, Callable[[sqlite3.Connection], None]], ...] = (
    ("0001-initial", _m1_initial),
    ("0002-image-use", _m2_image_use),
    ("0003-audit-runs", _m3_audit_runs),
    ("0004-registry-pulls", _m4_registry_pulls),
)


def migrate(db: sqlite3.Connection, now: str) -> None:
    """Apply the migrations `db` lacks, each recorded as applied at `now`."""
    db.execute("CREATE TABLE IF NOT EXISTS migrations (name TEXT PRIMARY KEY, at TEXT)")
    refuse_newer(db)
    done = {row[0] for row in db.execute("SELECT name FROM migrations")}
    for name, step in MIGRATIONS:
        if name not in done:
            with transaction(db):
                step(db)
                db.execute("INSERT INTO migrations VALUES (?, ?)", (name, now))


def refuse_newer(db: sqlite3.Connection) -> None:
    """A store a newer bilge migrated may mean things this one does not know:
    refused, not used (docs/architecture.md, safety rule 11)."""
    known = [name for name, _ in MIGRATIONS]
    unknown = sorted({r[0] for r in db.execute("SELECT name FROM migrations")} - set(known))
    if unknown:
        raise StateError(
            f"written by a newer bilge (schema {unknown[-1]}; bilge {__version__} knows up to"
            f" {known[-1]}): upgrade bilge, or use another --state-dir"
        )


@contextmanager
def transaction(db: sqlite3.Connection) -> Iterator[None]:
    """All of the block or nothing; the connection is in autocommit mode
    (isolation_level=None), so the transaction is spelled out."""
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
