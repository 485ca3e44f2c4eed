"""Does this directory hold a database's files? (docs/architecture.md, safety rules 3 and 4.)

`scan_dir` walks a volume's directory once: it adds up the disk usage and
inodes that removing it would free, and looks for the files and directories
that database engines keep in their data directory. A volume with such markers
is kept while the policy protects data; an anonymous one is also reported as
data at risk. A scan that could not read everything says so (`complete=False`)
and the caller then treats the volume as possibly holding data.

The markers are a declarative table, `RULES`; `match_markers` applies it to
relative paths and is pure, apart from the optional header reader.
"""

from __future__ import annotations

import contextlib
import fnmatch
import os
import re
import stat
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

#: Reads the first bytes of the file at a relative path; b"" when it cannot.
HeaderReader = Callable[[str], bytes]

_GLOB_CHARS = frozenset("*?[")


@dataclass(frozen=True)
class DirScan:
    """What a directory holds, not counting the directory itself.

    `bytes` is disk usage (st_blocks * 512, as `du` counts and as statvfs sees
    freed), hard links counted once. `complete` is False when some entry could
    not be read: then the figures are lower bounds and markers may be missing.
    """

    bytes: int
    inodes: int
    markers: tuple[str, ...]
    complete: bool
    #: Why the scan is not complete, e.g. "directory a/b cannot be read".
    unseen: str = field(default="", compare=False)


class _Paths:
    """Relative paths (directories end in "/"), indexed by their last component."""

    def __init__(self, relpaths: Iterable[str], globs: re.Pattern[str]) -> None:
        self.all = frozenset(relpaths)
        self.by_name: dict[str, list[str]] = {}
        for path in self.all:
            self.by_name.setdefault(_last(path), []).append(path)
        # Most names match none of the rules' globs: find the few that may, once,
        # rather than trying every glob on every name.
        self._glob_names = [name for name in self.by_name if globs.fullmatch(name)]

    def named(self, pattern: str) -> list[str]:
        """Paths whose last component matches `pattern`, shallowest first."""
        if not _GLOB_CHARS & set(pattern):
            return sorted(self.by_name.get(pattern, ()), key=_shallow_first)
        # "*" would match a directory's trailing "/": keep files and dirs apart.
        is_dir = pattern.endswith("/")
        hits = [
            path
            for name in self._glob_names
            if name.endswith("/") == is_dir and fnmatch.fnmatchcase(name, pattern)
            for path in self.by_name[name]
        ]
        return sorted(hits, key=_shallow_first)


def _last(path: str) -> str:
    if path.endswith("/"):
        return path[:-1].rpartition("/")[2] + "/"
    return path.rpartition("/")[2]


def _shallow_first(path: str) -> tuple[int, str]:
    return path.rstrip("/").count("/"), path


@dataclass(frozen=True)
class Named:
    """A path whose last components match `pattern` ("a/b/", "*.ibd"; "/" ends a dir)."""

    engine: str
    pattern: str

    def names(self) -> tuple[str, ...]:
        return (_last(self.pattern),)

    def find(self, paths: _Paths, read_header: HeaderReader | None) -> str | None:
        parts = self.pattern.rstrip("/").split("/")
        for path in paths.named(_last(self.pattern)):
            tail = path.rstrip("/").split("/")[-len(parts) :]
            if len(tail) == len(parts) and all(map(fnmatch.fnmatchcase, tail, parts)):
                return path
        return None


@dataclass(frozen=True)
class Together:
    """Directories that all sit in one parent, e.g. Cassandra's commitlog/ and data/."""

    engine: str
    dirs: tuple[str, ...]

    def names(self) -> tuple[str, ...]:
        return self.dirs

    def find(self, paths: _Paths, read_header: HeaderReader | None) -> str | None:
        first, *others = self.dirs
        for path in paths.named(first):
            parent = path[: -len(first)]
            if all(parent + other in paths.all for other in others):
                return " + ".join(parent + d for d in self.dirs)
        return None


@dataclass(frozen=True)
class Header:
    """A file named `pattern` whose content starts with `magic`."""

    engine: str
    pattern: str
    magic: bytes

    def names(self) -> tuple[str, ...]:
        return (self.pattern,)

    def find(self, paths: _Paths, read_header: HeaderReader | None) -> str | None:
        if read_header is None:
            return None
        for path in paths.named(self.pattern):
            if read_header(path).startswith(self.magic):
                return path
        return None


Rule = Named | Together | Header

#: Per engine, the most telling marker first; one marker is reported per engine.
RULES: tuple[Rule, ...] = (
    # PostgreSQL writes PG_VERSION at the top of every data directory.
    Named("postgres", "PG_VERSION"),
    # InnoDB's system tablespace; the `mysql` system schema; MariaDB's Aria
    # log; InnoDB file-per-table tablespaces.
    Named("mysql", "ibdata1"),
    Named("mysql", "mysql/"),
    Named("mysql", "aria_log_control"),
    Named("mysql", "*.ibd"),
    # CouchDB 2+ keeps its node database in _dbs.couch, every shard in *.couch.
    Named("couchdb", "_dbs.couch"),
    Named("couchdb", "*.couch"),
    # MongoDB's storage engine files and its lock file.
    Named("mongodb", "WiredTiger"),
    Named("mongodb", "WiredTiger.wt"),
    Named("mongodb", "mongod.lock"),
    # Redis snapshots, the append-only file, and Redis 7's multi-part AOF dir.
    Named("redis", "dump.rdb"),
    Named("redis", "appendonly.aof"),
    Named("redis", "appendonlydir/"),
    # SQLite has no fixed name: trust the usual suffixes, check *.db by its
    # header (many tools use .db for other formats), and a WAL means a live db.
    Named("sqlite", "*.sqlite"),
    Named("sqlite", "*.sqlite3"),
    Header("sqlite", "*.db", b"SQLite format 3\x00"),
    Named("sqlite", "*.db-wal"),
    Named("sqlite", "*.sqlite-wal"),
    Named("sqlite", "*.sqlite3-wal"),
    # Elasticsearch/OpenSearch before ES 8 keep nodes/0/; ES 8 puts _state/
    # and indices/ at the top of the data path.
    Named("elasticsearch", "nodes/0/"),
    Named("elasticsearch", "nodes/_state/"),
    Together("elasticsearch", ("_state/", "indices/")),
    # etcd's snapshots and write-ahead log.
    Named("etcd", "member/snap/"),
    Named("etcd", "member/wal/"),
    # InfluxDB 2's metadata store, 1.x's meta store, and TSM shard files
    # (1.x and 2.x; often deeper than max_depth, hence the two before).
    Named("influxdb", "influxd.bolt"),
    Named("influxdb", "meta/meta.db"),
    Named("influxdb", "*.tsm"),
    # Cassandra: commit log beside data, or an SSTable's data component.
    Together("cassandra", ("commitlog/", "data/")),
    Named("cassandra", "*-Data.db"),
    # RabbitMQ's Mnesia database (queues, users, vhosts).
    Named("rabbitmq", "mnesia/"),
    # ZooKeeper's snapshots and transaction logs live in version-2/.
    Named("zookeeper", "version-2/"),
    # Neo4j's store files: neostore, neostore.nodestore.db, ...
    Named("neo4j", "neostore*"),
    # ClickHouse: table metadata beside the Atomic (store/) or Ordinary (data/) layout.
    Together("clickhouse", ("metadata/", "store/")),
    Together("clickhouse", ("metadata/", "data/")),
    # SQL Server's primary data files.
    Named("mssql", "*.mdf"),
    # Prometheus TSDB: the WAL beside the head chunks.
    Together("prometheus", ("wal/", "chunks_head/")),
)


#: Every glob the rules look up, as one regex, to pick candidate names quickly.
_RULE_GLOBS = re.compile(
    "|".join(
        fnmatch.translate(name)
        for rule in RULES
        for name in rule.names()
        if _GLOB_CHARS & set(name)
    )
)


def match_markers(
    relpaths: Iterable[str], *, read_header: HeaderReader | None = None
) -> tuple[str, ...]:
    """Database markers among relative paths ("a/b", directories as "a/b/").

    Returns one marker per engine, like "postgres: PG_VERSION": the first rule
    of RULES that matches, at its shallowest path. Header rules (SQLite *.db)
    match only when `read_header` is given.
    """
    paths = _Paths(relpaths, _RULE_GLOBS)
    found: dict[str, str] = {}
    for rule in RULES:
        if rule.engine not in found and (hit := rule.find(paths, read_header)):
            found[rule.engine] = _printable(hit)
    return tuple(f"{engine}: {path}" for engine, path in found.items())


def _printable(path: str) -> str:
    # File names are bytes: show undecodable ones and control characters
    # harmlessly, so that a marker stays one printable line.
    text = path.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
    return "".join(c if c.isprintable() else "?" for c in text)


#: A volume with more entries than this is not read to the end: it then counts
#: as possibly holding data. Far above what a volume of build or cache files
#: holds, and a bound on how long one volume can keep a plan waiting
#: (docs/benchmarks.md, "Reading a volume whole", has the scan's speed).
MAX_ENTRIES = 5_000_000


def scan_dir(
    root: Path | str, *, max_depth: int | None = None, max_entries: int = MAX_ENTRIES
) -> DirScan:
    """Disk usage, inodes and database markers under `root` (root itself excluded).

    Walks the whole tree once without following symlinks or crossing into
    another filesystem. Markers are looked for at every depth; `max_depth`
    limits that (0: none, a plain `du`), and a tree with entries deeper than a
    positive limit is then not "complete": what bilge did not look at may be a
    database. With markers looked for, the scan is also incomplete when a
    symlink points out of the tree, another filesystem is mounted inside it, or
    it holds more than `max_entries` entries.
    """
    walk = _Walk(os.fspath(root), max_depth, max_entries)
    walk.run()
    # A plain du (max_depth 0) has no paths to match: skip the rule table.
    markers = match_markers(walk.relpaths, read_header=walk.read_header) if walk.relpaths else ()
    return DirScan(walk.bytes, walk.inodes, markers, walk.unseen is None, walk.unseen or "")


class _Walk:
    """One pass over a tree; what it adds up stays in its attributes."""

    def __init__(self, root: str, max_depth: int | None, max_entries: int) -> None:
        self.root = root
        self.max_depth = max_depth
        self.markers = max_depth != 0
        self.max_entries = max_entries
        self.bytes = 0
        self.inodes = 0
        #: Why the scan did not see everything (the first reason), or None.
        self.unseen: str | None = None
        self.relpaths: list[str] = []
        self._linked: set[tuple[int, int]] = set()
        self._device = -1

    def run(self) -> None:
        # When the root cannot be read, scandir below says why.
        with contextlib.suppress(OSError):
            self._device = os.lstat(self.root).st_dev
        # An explicit stack: volume trees can be deeper than Python's recursion limit.
        stack = [(self.root, "", 1)]
        while stack:
            path, prefix, depth = stack.pop()
            for entry in self._entries(path):
                st = self._lstat(entry)
                if st is None:
                    continue
                is_dir = stat.S_ISDIR(st.st_mode)
                self._count(st, is_dir)
                rel = prefix + entry.name + ("/" if is_dir else "")
                if self.markers and self._looked_at(entry, st, rel, depth):
                    self.relpaths.append(rel)
                if is_dir and not (self.markers and self._mounted(st, rel)):
                    stack.append((entry.path, rel, depth + 1))

    def _looked_at(self, entry: os.DirEntry[str], st: os.stat_result, rel: str, depth: int) -> bool:
        """Whether markers are looked for at `rel`; when not, `unseen` says why."""
        if self.max_depth is not None and depth > self.max_depth:
            return self._miss(f"not read below depth {self.max_depth}")
        if len(self.relpaths) >= self.max_entries:
            return self._miss(f"not read past {self.max_entries:,} entries")
        if stat.S_ISLNK(st.st_mode) and _escapes(rel, entry.path):
            self._miss(f"symlink {_printable(rel)} points out of it (not followed)")
        return True

    def _mounted(self, st: os.stat_result, rel: str) -> bool:
        """A directory on another filesystem: not walked, so not seen."""
        if st.st_dev == self._device:
            return False
        self._miss(f"another filesystem is mounted at {_printable(rel)}")
        return True

    def _miss(self, why: str) -> bool:
        """Note the first reason the scan missed something; False, for `_looked_at`."""
        if self.unseen is None:
            self.unseen = why
        return False

    def _entries(self, path: str) -> Sequence[os.DirEntry[str]]:
        try:
            with os.scandir(path) as entries:
                return list(entries)
        except FileNotFoundError:
            # Removed while we walked: nothing left to count. The root itself
            # missing is different: we could not see the volume at all.
            if path == self.root:
                self._miss("it is missing")
        except OSError as exc:
            where = _printable(os.path.relpath(path, self.root))
            self._miss(f"directory {where} cannot be read ({exc.strerror or exc})")
        return ()

    def _lstat(self, entry: os.DirEntry[str]) -> os.stat_result | None:
        try:
            return entry.stat(follow_symlinks=False)
        except FileNotFoundError:
            return None
        except OSError as exc:
            self._miss(f"{_printable(entry.name)} cannot be read ({exc.strerror or exc})")
            return None

    def _count(self, st: os.stat_result, is_dir: bool) -> None:
        if not is_dir and st.st_nlink > 1:
            # Another name for a file already counted frees nothing more.
            key = (st.st_dev, st.st_ino)
            if key in self._linked:
                return
            self._linked.add(key)
        self.bytes += st.st_blocks * 512
        self.inodes += 1

    def read_header(self, relpath: str) -> bytes:
        """The first 16 bytes of a regular file; b"" (scan incomplete) on failure."""
        path = os.path.join(self.root, relpath)
        try:
            # Only regular files: opening a device or FIFO could block or act.
            if not stat.S_ISREG(os.lstat(path).st_mode):
                return b""
            fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
            try:
                return os.read(fd, 16)
            finally:
                os.close(fd)
        except OSError as exc:
            self._miss(f"{_printable(relpath)} cannot be read ({exc.strerror or exc})")
            return b""


def _escapes(rel: str, path: str) -> bool:
    """Whether the symlink at `rel` (relative to the scanned root) points out of it:
    an absolute target is a path in the container's view, unknown here."""
    try:
        target = os.readlink(path)
    except OSError:
        return True
    if os.path.isabs(target):
        return True
    joined = os.path.normpath(os.path.join(os.path.dirname(rel), target))
    return joined == ".." or joined.startswith("../")
