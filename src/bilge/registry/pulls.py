"""The last pull of each registry manifest, in the state store.

`bilge registry listen` records them from the registry's notifications;
`registry plan` reads them for `keep_pulled_within`. The table is the state
store's (migration 0004-registry-pulls); this module opens the same SQLite
file, migrated by the store's own list, so that a store from a newer bilge is
refused here too (docs/architecture.md, safety rule 11). A pull only ever
moves the time forward: notifications may arrive late or twice.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from bilge.errors import StateError
from bilge.state.migrations import migrate, transaction
from bilge.state.store import DB_NAME

#: registry URL -> repository -> digest -> last pull
PullTimes = dict[str, dict[str, dict[str, datetime]]]

_UPSERT = (
    "INSERT INTO registry_pulls (registry, repository, digest, last_pulled) VALUES (?, ?, ?, ?)"
    " ON CONFLICT (registry, repository, digest) DO UPDATE SET last_pulled ="
    " max(last_pulled, excluded.last_pulled)"
)


@dataclass(frozen=True)
class Pull:
    repository: str
    digest: str
    at: datetime


@contextmanager
def _open(state_dir: Path, now: datetime) -> Iterator[sqlite3.Connection]:
    path = state_dir / DB_NAME
    try:
        if not state_dir.is_dir():
            state_dir.mkdir(mode=0o700, parents=True)
            state_dir.chmod(0o700)  # mkdir's mode is cut by the umask, never widened
        # As the store does: the file is for its owner's eyes only (safety rule 10).
        os.close(os.open(path, os.O_RDWR | os.O_CREAT, 0o600))
        db = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False)
    except (OSError, sqlite3.Error) as exc:
        raise StateError(f"state store {path}: {exc}") from exc
    try:
        db.execute("PRAGMA busy_timeout=5000")
        db.execute("PRAGMA journal_mode=WAL")  # the store's mode: readers never wait
        migrate(db, now.isoformat())
        yield db
    except sqlite3.Error as exc:
        raise StateError(f"state store {path}: {exc}") from exc
    except StateError as exc:
        raise StateError(f"state store {path}: {exc}") from None
    finally:
        db.close()


def record_pulls(state_dir: Path, registry: str, pulls: Iterable[Pull], now: datetime) -> int:
    """Record `pulls` of `registry`, in one transaction; how many."""
    rows = [(registry, p.repository, p.digest, p.at.isoformat()) for p in pulls]
    if not rows:
        return 0
    with _open(state_dir, now) as db, transaction(db):
        db.executemany(_UPSERT, rows)
    return len(rows)


def read_pulls(state_dir: Path, now: datetime) -> PullTimes:
    """Every pull recorded, by registry, repository and digest."""
    out: PullTimes = {}
    with _open(state_dir, now) as db:
        rows = db.execute("SELECT registry, repository, digest, last_pulled FROM registry_pulls")
        for registry, repository, digest, at in rows:
            try:
                when = datetime.fromisoformat(at)
            except (TypeError, ValueError):
                continue  # not written by bilge: no pull time is better than a wrong one
            out.setdefault(registry, {}).setdefault(repository, {})[digest] = when
    return out
