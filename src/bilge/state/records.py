"""The records the state store writes: each knows its SQL and its parameters.

Kept in memory in this shape while the disk is full (store.py), and written
in order once space is back.
"""

from __future__ import annotations

import json
from dataclasses import asdict, astuple, dataclass
from typing import Any, ClassVar

Row = tuple[Any, ...]


@dataclass(frozen=True)
class AttemptRecord:
    """An audit row kept in memory; `id` is negative, unique in this store."""

    SQL: ClassVar[str] = (
        "INSERT INTO audit (host, at, kind, object_id, name, reason, bytes, run)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
    )
    id: int
    host: str
    at: str
    kind: str
    object_id: str
    name: str
    reason: str
    bytes: int
    #: The run (process) that attempts it: an open attempt of a dead run is settled later.
    run: str

    def params(self) -> Row:
        return astuple(self)[1:]

    def row(self) -> Row:
        """Shaped like a row of `_SELECT_AUDIT`, not finished yet."""
        return (self.id, *self.params()[:-1], None, "")


@dataclass(frozen=True)
class OutcomeRecord:
    SQL: ClassVar[str] = "UPDATE audit SET outcome = ?, detail = ?, finished_at = ? WHERE id = ?"
    entry_id: int
    outcome: str
    detail: str
    finished_at: str

    def params(self) -> Row:
        return (self.outcome, self.detail, self.finished_at, self.entry_id)


@dataclass(frozen=True)
class SampleRecord:
    SQL: ClassVar[str] = "INSERT INTO samples VALUES (?, ?, ?, ?, ?, ?)"
    host: str
    at: str
    total_bytes: int
    free_bytes: int
    total_inodes: int
    free_inodes: int

    def params(self) -> Row:
        return astuple(self)


@dataclass(frozen=True)
class ImageUseRecord:
    SQL: ClassVar[str] = (
        "INSERT INTO image_use (host, image_id, first_seen, last_used) VALUES (?, ?, ?, ?)"
        " ON CONFLICT (host, image_id) DO UPDATE SET"
        " first_seen = min(first_seen, excluded.first_seen),"
        " last_used = CASE WHEN excluded.last_used IS NULL THEN last_used"
        " WHEN last_used IS NULL OR excluded.last_used > last_used THEN excluded.last_used"
        " ELSE last_used END"
    )
    host: str
    image_id: str
    first_seen: str
    last_used: str | None

    def params(self) -> Row:
        return astuple(self)

    def apply_to(self, known: dict[str, tuple[str, str | None]]) -> None:
        """The same merge as SQL, on rows read back (for records not yet written)."""
        first, last = known.get(self.image_id, (self.first_seen, self.last_used))
        newest = max((t for t in (last, self.last_used) if t), default=None)
        known[self.image_id] = (min(first, self.first_seen), newest)


@dataclass(frozen=True)
class ImageGoneRecord:
    SQL: ClassVar[str] = "DELETE FROM image_use WHERE host = ? AND image_id = ?"
    host: str
    image_id: str

    def params(self) -> Row:
        return astuple(self)

    def apply_to(self, known: dict[str, tuple[str, str | None]]) -> None:
        known.pop(self.image_id, None)


Record = AttemptRecord | OutcomeRecord | SampleRecord | ImageUseRecord | ImageGoneRecord


_RECORD_NAMES = {
    AttemptRecord: "attempt",
    OutcomeRecord: "outcome",
    SampleRecord: "sample",
    ImageUseRecord: "image-use",
    ImageGoneRecord: "image-gone",
}


def lost_line(record: Record) -> str:
    """A record that could not be written, as one JSON line for a log collector.
    An outcome's `entry_id` is its attempt's `id` (both negative: ids in memory)."""
    doc = {"bilge_lost_record": _RECORD_NAMES[type(record)], **asdict(record)}
    return json.dumps(doc, sort_keys=True, ensure_ascii=True)


def is_audit(record: Record) -> bool:
    return isinstance(record, AttemptRecord | OutcomeRecord)
