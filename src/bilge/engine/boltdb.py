"""A read-only reader of bbolt database files: where Podman 4 keeps its state.

bbolt (go.etcd.io/bbolt) stores a B+tree of pages in one file. Two meta pages
at the start name the root bucket; the valid one with the higher transaction id
is current. A bucket is a tree of branch pages (keys and child page ids) over
leaf pages (keys and values); a value flagged as a bucket holds the sub-bucket's
root page id, or, when that id is 0, the sub-bucket's whole page inline.

Nothing here trusts the file: every offset is checked against the page it must
lie in and the file's length, trees are walked to a bounded depth, and any
inconsistency is a `BoltError`, so a caller can fall back to asking the engine.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from dataclasses import dataclass

_MAGIC = 0xED0CDAED
_VERSION = 2
_PAGE_HEADER = struct.Struct("<QHHI")  # id, flags, count, overflow
_META = struct.Struct("<IIIIQQQQQQ")  # magic, version, page size, flags, root, seq, ...
_BRANCH_ELEMENT = struct.Struct("<IIQ")  # pos, key size, child page id
_LEAF_ELEMENT = struct.Struct("<IIII")  # flags, pos, key size, value size
_BUCKET_HEADER = struct.Struct("<QQ")  # root page id, sequence
_BRANCH, _LEAF, _META_PAGE = 0x01, 0x02, 0x04
_BUCKET_FLAG = 0x01
#: Offset of the checksum in a meta page's body: the FNV-1a hash covers what precedes it.
_CHECKSUM_AT = 56
#: Far deeper than any real tree (a million keys fit in 4 levels): a loop in a
#: corrupt file ends here.
_MAX_DEPTH = 32


class BoltError(Exception):
    """The file is not a bbolt database this reader understands, or is inconsistent."""


def _fnv1a64(data: bytes) -> int:
    value = 0xCBF29CE484222325
    for byte in data:
        value = ((value ^ byte) * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
    return value


@dataclass(frozen=True)
class Entry:
    key: bytes
    value: bytes
    is_bucket: bool


class BoltFile:
    """One database image (the file's bytes, or a read-only mmap of them)."""

    def __init__(self, data: bytes | memoryview) -> None:
        self.data = memoryview(data)
        metas = [m for m in (self._meta(0), self._meta(1)) if m is not None]
        if not metas:
            raise BoltError("no valid meta page: not a bbolt database")
        self.txid, self.page_size, root = max(metas)
        self.root = Bucket(self, root, None)

    def _meta(self, index: int) -> tuple[int, int, int] | None:
        """(txid, page size, root page id) of meta page `index`, if it is valid.
        Page 1 sits one page size after page 0, which page 0 (or the default 4096) says."""
        offset = 0 if index == 0 else self._first_page_size()
        body = offset + _PAGE_HEADER.size
        if len(self.data) < body + _META.size:
            return None
        magic, version, page_size, _, root, _, _, _, txid, checksum = _META.unpack_from(
            self.data, body
        )
        if magic != _MAGIC or version != _VERSION:
            return None
        if _fnv1a64(bytes(self.data[body : body + _CHECKSUM_AT])) != checksum:
            return None
        return txid, page_size, root

    def _first_page_size(self) -> int:
        if len(self.data) >= _PAGE_HEADER.size + _META.size:
            size = int(_META.unpack_from(self.data, _PAGE_HEADER.size)[2])
            if size in {1 << n for n in range(9, 17)}:
                return size
        return 4096

    def page(self, page_id: int) -> memoryview:
        """The bytes of page `page_id`, overflow pages included."""
        start = page_id * self.page_size
        if page_id < 2 or start + _PAGE_HEADER.size > len(self.data):
            raise BoltError(f"page {page_id} is outside the file")
        overflow = _PAGE_HEADER.unpack_from(self.data, start)[3]
        end = start + (overflow + 1) * self.page_size
        if end > len(self.data):
            raise BoltError(f"page {page_id} runs past the end of the file")
        return self.data[start:end]

    def open_bucket(self, value: bytes) -> Bucket:
        """The bucket a bucket-flagged value describes."""
        if len(value) < _BUCKET_HEADER.size:
            raise BoltError("a bucket value shorter than its header")
        root, _ = _BUCKET_HEADER.unpack_from(value, 0)
        if root == 0:
            return Bucket(self, 0, memoryview(value)[_BUCKET_HEADER.size :])
        return Bucket(self, root, None)


class Bucket:
    """A bucket: its tree's root page, or its page inline in the parent's value."""

    def __init__(self, db: BoltFile, root: int, inline: memoryview | None) -> None:
        self.db, self._root, self._inline = db, root, inline

    def _top(self) -> memoryview:
        return self._inline if self._inline is not None else self.db.page(self._root)

    def entries(self) -> Iterator[Entry]:
        """Every key of the bucket, in key order."""
        yield from self._walk(self._top(), 0)

    def _walk(self, page: memoryview, depth: int) -> Iterator[Entry]:
        if depth > _MAX_DEPTH:
            raise BoltError("the tree is deeper than any real one (a loop?)")
        flags, count = _header(page)
        if flags & _BRANCH:
            for i in range(count):
                at = _PAGE_HEADER.size + i * _BRANCH_ELEMENT.size
                _, _, child = _BRANCH_ELEMENT.unpack_from(_within(page, at, _BRANCH_ELEMENT.size))
                yield from self._walk(self.db.page(child), depth + 1)
        elif flags & _LEAF:
            for i in range(count):
                at = _PAGE_HEADER.size + i * _LEAF_ELEMENT.size
                element = _within(page, at, _LEAF_ELEMENT.size)
                flag, pos, key_size, value_size = _LEAF_ELEMENT.unpack(element)
                key = _within(page, at + pos, key_size)
                value = _within(page, at + pos + key_size, value_size)
                yield Entry(bytes(key), bytes(value), bool(flag & _BUCKET_FLAG))
        else:
            raise BoltError(f"a page of unknown kind (flags {flags:#x}) in a bucket")

    def find(self, key: bytes) -> Entry | None:
        """The entry of `key`, found down the tree (keys are kept in byte order)."""
        page = self._top()
        for _ in range(_MAX_DEPTH):
            flags, count = _header(page)
            if not flags & _BRANCH:
                return next((e for e in self._walk(page, 0) if e.key == key), None)
            child = None
            for i in range(count):  # the last element whose key is not above `key`
                at = _PAGE_HEADER.size + i * _BRANCH_ELEMENT.size
                pos, key_size, page_id = _BRANCH_ELEMENT.unpack_from(
                    _within(page, at, _BRANCH_ELEMENT.size)
                )
                if child is not None and bytes(_within(page, at + pos, key_size)) > key:
                    break
                child = page_id
            if child is None:
                return None
            page = self.db.page(child)
        raise BoltError("the tree is deeper than any real one (a loop?)")

    def get(self, key: bytes) -> bytes | None:
        """The value of `key` (a plain key, not a bucket), if there is one."""
        entry = self.find(key)
        return entry.value if entry is not None and not entry.is_bucket else None

    def bucket(self, key: bytes) -> Bucket | None:
        """The sub-bucket `key`, if there is one."""
        entry = self.find(key)
        return self.db.open_bucket(entry.value) if entry is not None and entry.is_bucket else None

    def buckets(self) -> Iterator[tuple[bytes, Bucket]]:
        """Every sub-bucket, by key."""
        for entry in self.entries():
            if entry.is_bucket:
                yield entry.key, self.db.open_bucket(entry.value)


def _header(page: memoryview) -> tuple[int, int]:
    """A page's flags and element count."""
    if len(page) < _PAGE_HEADER.size:
        raise BoltError("a page shorter than its header")
    _, flags, count, _ = _PAGE_HEADER.unpack_from(page, 0)
    return flags, count


def _within(page: memoryview, start: int, size: int) -> memoryview:
    if start < 0 or size < 0 or start + size > len(page):
        raise BoltError("an element points outside its page")
    return page[start : start + size]
