"""Reading Podman's own database: a bbolt file written by Podman 4.3.1 (a private
service with a created, a running, a paused and two exited containers, and 60
created ones so that the container bucket needs a branch page), read as bilge
reads it; then the same file damaged, and overtaken by commits during a read.
The live engine is tested in tests/integration/test_podman_state.py."""

from __future__ import annotations

import gzip
import os
import struct
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bilge.engine import libpodstate
from bilge.engine.boltdb import BoltFile, _fnv1a64
from bilge.engine.libpodstate import container_state, container_volumes

FIXTURE = Path(__file__).parent / "data" / "podman-4.3.1-bolt_state.db.gz"
#: The graph root the database records (the service's --root when it was made).
ROOT = "/tmp/pmx/root"
EXITED = "222ae36dab2f38a15ecb2009846a97770c4c610cf3a1a9f83de0c540d9eb7d39"
CREATED = "2a55de4116d11ac67b89c59b4095c942511dab60d1baf79eca72d1416397c8ba"
EXITED_ANON = "788a4c64ccb26e603563999330560a71b4f82870fec4286b5de8fed3db47f42b"
PAUSED = "9d4b0ffcf2c971bc850a0515d0f3dd8d3a3d5935ee6082dc301e729312c6ee46"
RUNNING = "eb581b7ffe7a310c65073977d4270e2120edd58bbf1f3b2ab9d3a2b51d87d091"
ANON = "4b80f68e59bf28d7860039186e88fc3aebb8eb80360f0129d6db7bce7e97f578"
PAGE = 4096
META = struct.Struct("<IIIIQQQQQQ")


@pytest.fixture
def database(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """The fixture's database, where bilge looks for the storage at ROOT."""
    path = tmp_path / "bolt_state.db"
    path.write_bytes(gzip.decompress(FIXTURE.read_bytes()))
    monkeypatch.setattr(libpodstate, "database_path", lambda root: path)
    yield path


def test_every_containers_volumes_with_their_mount_points(database: Path) -> None:
    got = container_volumes(ROOT)
    assert got is not None and len(got) == 65
    assert got[CREATED] == got[EXITED] == (("named1", "/n"),)
    assert got[EXITED_ANON] == ((ANON, "/anon"),)
    assert got[PAUSED] == got[RUNNING] == ()
    bulk = [v for k, v in got.items() if k not in {CREATED, EXITED, EXITED_ANON, PAUSED, RUNNING}]
    assert sorted(dest for ((_, dest),) in bulk) == sorted(f"/data{n}" for n in range(1, 61))
    assert all(len(name) == 64 for ((name, _),) in bulk)


def test_each_state_in_the_words_of_dockers_inspect(database: Path) -> None:
    statuses = {
        cid: (container_state(ROOT, cid) or {}).get("Status")
        for cid in (CREATED, RUNNING, PAUSED, EXITED, EXITED_ANON)
    }
    assert statuses == {
        CREATED: "created",
        RUNNING: "running",
        PAUSED: "paused",
        EXITED: "exited",
        EXITED_ANON: "exited",
    }
    exited = container_state(ROOT, EXITED)
    assert exited is not None and exited["StartedAt"] == "2026-12-03T15:50:14.383808435Z"
    assert container_state(ROOT, "0" * 64) is None  # not there: the engine is asked


def test_another_storages_database_is_not_used(database: Path) -> None:
    assert container_volumes("/var/lib/containers/storage") is None
    assert container_state("/var/lib/containers/storage", RUNNING) is None


@pytest.mark.parametrize("content", [b"", b"not a database" * 1000, b"\0" * PAGE * 4])
def test_what_is_not_a_bolt_file_is_not_read(database: Path, content: bytes) -> None:
    database.write_bytes(content)
    assert container_volumes(ROOT) is None and container_state(ROOT, RUNNING) is None


def test_no_file_is_no_answer(database: Path) -> None:
    database.unlink()
    assert container_volumes(ROOT) is None


def test_a_fifo_in_its_place_is_no_answer_and_no_hang(database: Path) -> None:
    database.unlink()
    os.mkfifo(database)
    assert container_volumes(ROOT) is None and container_state(ROOT, RUNNING) is None


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    damage=st.lists(
        st.tuples(st.integers(0, 2 * 1024 * 1024 - 1), st.integers(0, 255)), min_size=1, max_size=40
    ),
    cut=st.one_of(st.none(), st.integers(0, 2 * 1024 * 1024)),
)
def test_a_damaged_file_is_an_answer_or_none_never_a_crash(
    database: Path, damage: list[tuple[int, int]], cut: int | None
) -> None:
    data = bytearray(gzip.decompress(FIXTURE.read_bytes()))
    for offset, value in damage:
        data[offset] = value
    database.write_bytes(bytes(data[:cut] if cut is not None else data))
    volumes = container_volumes(ROOT)
    assert volumes is None or isinstance(volumes, dict)
    state = container_state(ROOT, RUNNING)
    assert state is None or set(state) == {"Status", "StartedAt", "FinishedAt"}


def test_a_loop_in_the_tree_ends(database: Path) -> None:
    data = bytearray(database.read_bytes())
    db = BoltFile(bytes(data))
    ctr = db.root.bucket(b"ctr")
    assert ctr is not None
    root = ctr._root
    assert struct.unpack_from("<QHHI", data, root * PAGE)[1] == 0x01  # a branch page
    struct.pack_into("<Q", data, root * PAGE + 16 + 8, root)  # its first child: itself
    database.write_bytes(bytes(data))
    assert container_volumes(ROOT) is None


def _commit(path: Path, txid: int) -> None:
    """What a bbolt commit leaves in the meta pages: meta `txid` in slot txid % 2,
    the same tree as now (enough for the reader, which only compares txids)."""
    data = bytearray(path.read_bytes())
    current = BoltFile(bytes(data)).txid
    body = (current % 2) * PAGE + 16
    fields = list(META.unpack_from(data, body))
    fields[8] = txid
    fields[9] = 0
    META.pack_into(data, (txid % 2) * PAGE + 16, *fields)
    checksum = _fnv1a64(bytes(data[(txid % 2) * PAGE + 16 : (txid % 2) * PAGE + 16 + 56]))
    struct.pack_into("<Q", data, (txid % 2) * PAGE + 16 + 56, checksum)
    with path.open("r+b") as f:  # in place: the reader's map sees it, as it sees Podman's
        f.write(data)


@pytest.mark.parametrize(
    ("ahead", "reads_wanted"),
    [
        (2, 2),  # pages this read used may have been reused: read again
        (1, 2),  # the next one may be writing over them already, unseen: read again
        (0, 1),  # nothing committed meanwhile: the read stands
    ],
)
def test_a_read_is_done_again_when_a_commit_overtook_it(
    database: Path, monkeypatch: pytest.MonkeyPatch, ahead: int, reads_wanted: int
) -> None:
    reads: list[int] = []
    real = libpodstate._belongs_to

    def belongs_then_commit(db: BoltFile, graph_root: str) -> bool:
        reads.append(db.txid)
        if len(reads) == 1 and ahead:
            _commit(database, db.txid + ahead)
        return real(db, graph_root)

    monkeypatch.setattr(libpodstate, "_belongs_to", belongs_then_commit)
    assert container_volumes(ROOT) is not None
    assert container_state(ROOT, RUNNING) is not None
    assert reads[:reads_wanted] == [reads[0], reads[0] + ahead][:reads_wanted]
    assert len(reads) == reads_wanted + 1  # and the state read after it, once


def test_a_database_that_keeps_changing_is_given_up(
    database: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = libpodstate._belongs_to

    def belongs_then_commit(db: BoltFile, graph_root: str) -> bool:
        _commit(database, BoltFile(database.read_bytes()).txid + 2)
        return real(db, graph_root)

    monkeypatch.setattr(libpodstate, "_belongs_to", belongs_then_commit)
    assert container_volumes(ROOT) is None
