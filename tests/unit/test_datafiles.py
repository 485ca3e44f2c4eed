from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from bilge.collect.datafiles import RULES, DirScan, match_markers, scan_dir

SQLITE_HEADER = b"SQLite format 3\x00" + bytes(84)


def make_tree(root: Path, entries: list[str], content: bytes = b"x") -> None:
    """Create `entries` under root: "a/b/" a directory, "a/f" a file, "f=BYTES" a file."""
    for entry in entries:
        name, _, data = entry.partition("=")
        path = root / name
        if name.endswith("/"):
            path.mkdir(parents=True, exist_ok=True)
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data.encode("latin-1") if data else content)


SQLITE = f"app.db={SQLITE_HEADER.decode('latin-1')}"

# (engine, a tree that holds its data, a near miss that must not match it)
ENGINES: list[tuple[str, list[str], list[str]]] = [
    ("postgres", ["PG_VERSION", "base/1/"], ["PG_VERSION.txt", "pg_version", "PG_VERSION/"]),
    ("mysql", ["ibdata1"], ["ibdata1.bak", "ibdata/"]),
    ("mysql", ["mysql/user.frm"], ["mysql", "mysql.conf"]),
    ("mysql", ["aria_log_control"], ["aria_log_control.old"]),
    ("mysql", ["shop/orders.ibd"], ["shop/orders.ibd.gz", "x.ibd/"]),
    ("couchdb", ["_dbs.couch"], ["_dbs.couch.bak"]),
    ("couchdb", ["shards/00-7f/avatars.1600000000.couch"], ["notes.couchy"]),
    ("mongodb", ["WiredTiger", "collection-0.wt"], ["WiredTiger.bak"]),
    ("mongodb", ["WiredTiger.wt"], ["wiredtiger.txt"]),
    ("mongodb", ["mongod.lock"], ["mongod.lock.old", "mongos.lock"]),
    ("redis", ["dump.rdb"], ["dump.rdb.tmp", "dump.rdbx"]),
    ("redis", ["appendonly.aof"], ["appendonly.aof.old"]),
    ("redis", ["appendonlydir/appendonly.aof.1.base.rdb"], ["appendonlydir"]),
    ("sqlite", ["data/app.sqlite"], ["app.sqlite.bak"]),
    ("sqlite", ["app.sqlite3"], ["app.sqlite3.txt"]),
    ("sqlite", [SQLITE], ["app.db=not a database at all"]),
    ("sqlite", ["app.db-wal"], ["app.db-walrus"]),
    ("sqlite", ["app.sqlite-wal"], ["app.sqlite-wal.old"]),
    ("elasticsearch", ["nodes/0/"], ["nodes/", "nodes/1", "0/"]),
    ("elasticsearch", ["nodes/_state/"], ["_state/", "nodes/_state"]),
    ("elasticsearch", ["_state/", "indices/"], ["indices/", "_state"]),
    ("etcd", ["member/snap/db"], ["member/", "snap/"]),
    ("etcd", ["member/wal/"], ["member/wal"]),
    ("influxdb", ["influxd.bolt"], ["influxd.bolt.bak"]),
    ("influxdb", ["data/db/autogen/000000001-000000001.tsm"], ["x.tsm.tmp"]),
    ("influxdb", ["meta/meta.db"], ["meta.db", "meta/meta.db.bak"]),
    ("cassandra", ["commitlog/", "data/"], ["commitlog/", "sub/data/"]),
    ("cassandra", ["ks/t/nb-1-big-Data.db"], ["nb-1-big-Index.db", "Data.db"]),
    ("rabbitmq", ["mnesia/rabbit@host/"], ["mnesia"]),
    ("zookeeper", ["version-2/snapshot.0"], ["version-2", "version-3/"]),
    ("neo4j", ["databases/neo4j/neostore"], ["neo/store"]),
    ("neo4j", ["neostore.nodestore.db"], ["myneostore"]),
    ("clickhouse", ["metadata/", "store/"], ["metadata/", "a/store/"]),
    ("clickhouse", ["metadata/", "data/"], ["metadata"]),
    ("mssql", ["data/master.mdf"], ["master.mdf.bak", "x.mdf/"]),
    ("prometheus", ["wal/", "chunks_head/"], ["wal/", "chunks/"]),
]


def engines_in(markers: tuple[str, ...]) -> set[str]:
    return {m.partition(":")[0] for m in markers}


@pytest.mark.parametrize(("engine", "tree", "near_miss"), ENGINES)
def test_each_engine_is_found(
    engine: str, tree: list[str], near_miss: list[str], tmp_path: Path
) -> None:
    make_tree(tmp_path, ["unrelated.txt", "etc/", *tree])
    scan = scan_dir(tmp_path)
    assert engine in engines_in(scan.markers)
    assert scan.complete


@pytest.mark.parametrize(("engine", "tree", "near_miss"), ENGINES)
def test_near_misses_are_not(
    engine: str, tree: list[str], near_miss: list[str], tmp_path: Path
) -> None:
    make_tree(tmp_path, ["unrelated.txt", *near_miss])
    assert scan_dir(tmp_path).markers == ()


def test_every_rule_is_exercised() -> None:
    assert {rule.engine for rule in RULES} == {engine for engine, _, _ in ENGINES}


def test_marker_names_engine_and_path(tmp_path: Path) -> None:
    make_tree(tmp_path, ["pgdata/PG_VERSION", "pgdata/base/1/PG_VERSION", "x/cache.sqlite"])
    assert scan_dir(tmp_path).markers == ("postgres: pgdata/PG_VERSION", "sqlite: x/cache.sqlite")


def test_together_reports_both_dirs(tmp_path: Path) -> None:
    make_tree(tmp_path, ["cass/commitlog/", "cass/data/"])
    assert scan_dir(tmp_path).markers == ("cassandra: cass/commitlog/ + cass/data/",)


def test_markers_are_found_at_any_depth(tmp_path: Path) -> None:
    make_tree(tmp_path, ["a/b/c/PG_VERSION", "d/e/f/g/h/ibdata1", "x/" * 40 + "dump.rdb"])
    scan = scan_dir(tmp_path)
    assert scan.markers == (
        "postgres: a/b/c/PG_VERSION",
        "mysql: d/e/f/g/h/ibdata1",
        "redis: " + "x/" * 40 + "dump.rdb",
    )
    assert scan.complete


def test_a_depth_limit_makes_the_scan_incomplete(tmp_path: Path) -> None:
    # What a limited scan did not look at may be a database: it cannot say "none".
    make_tree(tmp_path, ["d/e/f/g/h/ibdata1"])
    limited = scan_dir(tmp_path, max_depth=3)
    assert limited.markers == ()
    assert not limited.complete
    assert limited.unseen == "not read below depth 3"
    assert scan_dir(tmp_path, max_depth=0).markers == ()


def test_an_entry_budget_makes_the_scan_incomplete(tmp_path: Path) -> None:
    make_tree(tmp_path, [f"f{n}" for n in range(20)] + ["z/PG_VERSION"])
    assert scan_dir(tmp_path, max_entries=100).complete
    scan = scan_dir(tmp_path, max_entries=10)
    assert not scan.complete
    assert scan.unseen == "not read past 10 entries"
    assert scan.inodes == 22  # still counted whole


def test_a_symlink_out_of_the_tree_makes_the_scan_incomplete(tmp_path: Path) -> None:
    make_tree(tmp_path, ["a/data"])
    (tmp_path / "a" / "inside").symlink_to("data")
    (tmp_path / "up").symlink_to("a/../a/data")
    assert scan_dir(tmp_path).complete
    (tmp_path / "a" / "pgdata").symlink_to("/var/lib/postgresql/data")
    scan = scan_dir(tmp_path)
    assert not scan.complete
    assert scan.unseen == "symlink a/pgdata points out of it (not followed)"
    (tmp_path / "a" / "pgdata").unlink()
    (tmp_path / "a" / "escape").symlink_to("../../elsewhere")
    assert not scan_dir(tmp_path).complete


def test_another_filesystem_inside_makes_the_scan_incomplete(tmp_path: Path) -> None:
    make_tree(tmp_path, ["mnt/", "plain"])
    mnt = tmp_path / "mnt"
    try:
        subprocess.run(
            ["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mnt)],
            check=True,
            capture_output=True,
        )
    except (OSError, subprocess.CalledProcessError):
        pytest.skip("cannot mount a tmpfs here (needs root)")
    try:
        (mnt / "PG_VERSION").write_text("15")
        scan = scan_dir(tmp_path)
        assert not scan.complete
        assert scan.unseen == "another filesystem is mounted at mnt/"
        assert scan.markers == ()
    finally:
        subprocess.run(["umount", str(mnt)], check=True)


def test_deep_trees_are_still_counted(tmp_path: Path) -> None:
    deep = tmp_path.joinpath(*["d"] * 50)
    deep.mkdir(parents=True)
    (deep / "f").write_bytes(b"x" * 10_000)
    scan = scan_dir(tmp_path, max_depth=2)
    assert scan.inodes == 51
    assert scan.bytes == independent_usage(tmp_path)


# --- match_markers, pure -------------------------------------------------------------


def test_match_markers_one_per_engine_shallowest_first() -> None:
    # The first rule that matches wins (ibdata1 before mysql/), at its shallowest.
    paths = ["z/ibdata1", "mysql/", "a/b/PG_VERSION", "b/PG_VERSION", "x.ibd", "ibdata1/"]
    assert match_markers(paths) == ("postgres: b/PG_VERSION", "mysql: z/ibdata1")


def test_match_markers_directories_need_a_slash() -> None:
    assert match_markers(["mysql"]) == ()
    assert match_markers(["mysql/"]) == ("mysql: mysql/",)
    assert match_markers(["PG_VERSION/"]) == ()


def test_match_markers_header_rules_need_a_reader() -> None:
    assert match_markers(["app.db"]) == ()
    reads: list[str] = []

    def reader(path: str) -> bytes:
        reads.append(path)
        return SQLITE_HEADER[:16] if path == "b/app.db" else b"\x00" * 16

    assert match_markers(["a.db", "b/app.db", "c.txt"], read_header=reader) == ("sqlite: b/app.db",)
    assert reads == ["a.db", "b/app.db"]


def test_markers_are_printable() -> None:
    name = "bad\udcff\nname.sqlite"  # an undecodable byte and a newline
    assert match_markers([name]) == ("sqlite: bad\ufffd?name.sqlite",)


# --- bytes and inodes ----------------------------------------------------------------


def independent_usage(root: Path) -> int:
    """Disk usage under root (root excluded), hard links once, symlinks not followed."""
    seen: set[tuple[int, int]] = set()
    total = 0
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            st = os.lstat(os.path.join(dirpath, name))
            if (st.st_dev, st.st_ino) not in seen:
                seen.add((st.st_dev, st.st_ino))
                total += st.st_blocks * 512
    return total


def du(*args: str) -> int:
    out = subprocess.run(["du", *args], capture_output=True, text=True, check=True).stdout
    return int(out.split()[0])


@pytest.fixture
def tree(tmp_path: Path) -> Iterator[Path]:
    root = tmp_path / "vol"
    make_tree(root, ["a/b/c/", "a/small=hi", "empty/"])
    (root / "a" / "big").write_bytes(os.urandom(300_000))
    (root / "a" / "b" / "sparse").open("wb").truncate(50_000_000)  # holes take no blocks
    os.link(root / "a" / "big", root / "a" / "b" / "big-again")
    outside = tmp_path / "outside"
    make_tree(outside, ["PG_VERSION"])
    (outside / "huge").write_bytes(os.urandom(200_000))
    (root / "to-outside").symlink_to(outside)
    (root / "to-file").symlink_to(outside / "huge")
    yield root


needs_du = pytest.mark.skipif(shutil.which("du") is None, reason="needs du")


@needs_du
def test_bytes_match_du(tree: Path) -> None:
    scan = scan_dir(tree)
    own = tree.lstat().st_blocks * 512
    assert scan.bytes == independent_usage(tree)
    assert scan.bytes == du("-sB1", str(tree)) - own


@needs_du
def test_inodes_match_du(tree: Path) -> None:
    # a, a/b, a/b/c, empty, small, big (and its second name), sparse, 2 symlinks
    scan = scan_dir(tree)
    assert scan.inodes == 9
    assert scan.inodes == du("-s", "--inodes", str(tree)) - 1


def test_symlinks_are_not_followed(tree: Path) -> None:
    scan = scan_dir(tree)
    assert scan.markers == ()
    assert scan.bytes < 300_000 + 200_000


def test_hard_links_count_once(tmp_path: Path) -> None:
    (tmp_path / "f").write_bytes(os.urandom(100_000))
    once = scan_dir(tmp_path)
    os.link(tmp_path / "f", tmp_path / "g")
    assert scan_dir(tmp_path) == DirScan(once.bytes, once.inodes, (), True)


def test_empty_dir(tmp_path: Path) -> None:
    assert scan_dir(tmp_path) == DirScan(0, 0, (), True)


# --- what cannot be read -------------------------------------------------------------


def test_unreadable_subdirectory_makes_the_scan_incomplete(
    tree: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Tests run as root, for whom chmod 000 changes nothing: refuse one path instead.
    real_scandir = os.scandir
    locked = str(tree / "a" / "b")

    def scandir(path: str) -> object:
        if os.fspath(path) == locked:
            raise PermissionError(13, "Permission denied", path)
        return real_scandir(path)

    monkeypatch.setattr(os, "scandir", scandir)
    scan = scan_dir(tree)
    assert not scan.complete
    assert scan.inodes == 7  # a/b itself is counted, nothing under it


def test_missing_root_is_incomplete(tmp_path: Path) -> None:
    assert scan_dir(tmp_path / "gone") == DirScan(0, 0, (), False)


def test_unreadable_header_makes_the_scan_incomplete(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    make_tree(tmp_path, [SQLITE])

    def refuse(*args: object) -> int:
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(os, "open", refuse)
    scan = scan_dir(tmp_path)
    assert scan.markers == ()
    assert not scan.complete


def test_special_files_are_not_opened(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "pipe.db")  # opening it for reading could block
    assert scan_dir(tmp_path) == DirScan(0, 1, (), True)
