"""Trust, on the real engine: a saved plan never widens a fresh one, a volume that
gained a database at the last moment stays, a lost answer is settled by asking the
engine, and records the state store cannot write are not silently dropped."""

from __future__ import annotations

import contextlib
import json
import socket
import sqlite3
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from bilge.model import Action, Kind
from bilge.state.store import StateStore
from tests.integration.bilge_cli import ZERO_GRACE, exists, make_bilge
from tests.integration.helpers import BASE_IMAGE, Sandbox, make_volume, run_container

NAMED = ZERO_GRACE.replace("named_after", "named = true\nnamed_after")


def outcomes(doc: dict) -> dict[str, tuple[str, str]]:
    return {a["name"]: (a["outcome"], a["detail"]) for a in doc["actions"]}


def test_a_saved_plan_keeps_a_volume_that_gained_database_files(
    engine: Sandbox, tmp_path: Path
) -> None:
    make_volume(engine, "scratch")
    bilge = make_bilge(engine, tmp_path, NAMED)
    plan_file = tmp_path / "plan.json"
    assert bilge("plan", "--out", str(plan_file)).code == 0
    assert "scratch" in plan_file.read_text()
    # Since the plan: PostgreSQL files, five directories down.
    engine.docker(
        "run", "--rm", "--network", "none", "-v", "scratch:/v", BASE_IMAGE,
        "sh", "-c", "mkdir -p /v/a/b/c/d/e && echo 15 > /v/a/b/c/d/e/PG_VERSION",
    )  # fmt: skip
    result = bilge("apply", "--yes", "--json", "--plan", str(plan_file))
    assert result.code == 0, result.err
    assert outcomes(result.json())["scratch"] == (
        "skipped",
        "refused: a fresh plan keeps it: holds database data: postgres: a/b/c/d/e/PG_VERSION",
    )
    assert exists(engine, "volume", "scratch")


def test_a_saved_plan_obeys_the_policy_of_today(engine: Sandbox, tmp_path: Path) -> None:
    run_container(engine, name="exited-job")
    run_container(engine, name="other-job")
    bilge = make_bilge(engine, tmp_path)
    plan_file = tmp_path / "plan.json"
    bilge("plan", "--out", str(plan_file))
    bilge.with_policy(ZERO_GRACE.replace("[containers]", '[containers]\nkeep_names = ["exited-*"]'))
    result = bilge("apply", "--yes", "--json", "--plan", str(plan_file))
    got = outcomes(result.json())
    assert got["exited-job"][0] == "skipped"
    assert "a fresh plan keeps it" in got["exited-job"][1]
    assert "containers.keep_names" in got["exited-job"][1]
    assert got["other-job"] == ("removed", "")
    assert exists(engine, "container", "exited-job")


def test_an_action_written_into_a_plan_by_hand_is_refused(engine: Sandbox, tmp_path: Path) -> None:
    make_volume(engine, "mysql-2019", files={"data/x": 4096})
    run_container(engine, name="job")
    bilge = make_bilge(engine, tmp_path)
    plan_file = tmp_path / "plan.json"
    bilge("plan", "--out", str(plan_file))
    # The volume's action, right fingerprint and all, from a plan under another policy.
    (tmp_path / "other").mkdir()
    other = make_bilge(engine, tmp_path / "other", NAMED)
    named = other("plan", "--json")
    assert named.code == 0, named.err
    named_doc = named.json()
    forged = [a for a in named_doc["actions"] if a["name"] == "mysql-2019"]
    assert forged
    doc = json.loads(plan_file.read_text())
    doc["actions"] += forged
    doc["total_bytes"] = sum(a["bytes"] for a in doc["actions"])
    plan_file.write_text(json.dumps(doc))
    result = bilge("apply", "--yes", "--json", "--plan", str(plan_file))
    assert result.code == 0, result.err
    assert outcomes(result.json())["mysql-2019"] == (
        "skipped",
        "refused: a fresh plan keeps it: named volume (volumes.named = false)",
    )
    assert exists(engine, "volume", "mysql-2019")


class AnswerDropper:
    """A unix-socket relay to the engine that lets DELETE requests through but
    drops their answers and hangs up: the engine did the work, bilge never hears."""

    def __init__(self, engine_socket: str, path: Path) -> None:
        self.engine_socket = engine_socket
        self.path = path
        self.server = socket.socket(socket.AF_UNIX)
        self.server.bind(str(path))
        self.server.listen(16)
        self.dropped = 0
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.server.accept()
            except OSError:
                return
            upstream = socket.socket(socket.AF_UNIX)
            upstream.connect(self.engine_socket)
            drop = threading.Event()
            threading.Thread(target=self._up, args=(client, upstream, drop), daemon=True).start()
            threading.Thread(target=self._down, args=(upstream, client, drop), daemon=True).start()

    def _up(self, client: socket.socket, upstream: socket.socket, drop: threading.Event) -> None:
        while data := _recv(client):
            if data.startswith(b"DELETE "):
                drop.set()
            upstream.sendall(data)
        upstream.close()

    def _down(self, upstream: socket.socket, client: socket.socket, drop: threading.Event) -> None:
        while data := _recv(upstream):
            if drop.is_set():
                self.dropped += 1
                break
            client.sendall(data)
        for sock in (client, upstream):
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()

    def close(self) -> None:
        self.server.close()


def _recv(sock: socket.socket) -> bytes:
    try:
        return sock.recv(65536)
    except OSError:
        return b""


@pytest.fixture
def dropper(engine: Sandbox, tmp_path: Path) -> Iterator[AnswerDropper]:
    relay = AnswerDropper(engine.host.removeprefix("unix://"), tmp_path / "drop.sock")
    yield relay
    relay.close()


def test_a_removal_whose_answer_is_lost_is_recorded_as_it_happened(
    engine: Sandbox, tmp_path: Path, dropper: AnswerDropper
) -> None:
    make_volume(engine, "cache-a")
    bilge = make_bilge(engine, tmp_path, NAMED)
    host = f"unix://{dropper.path}"
    result = bilge("apply", "--yes", "--json", host=host)
    assert dropper.dropped >= 1
    assert not exists(engine, "volume", "cache-a")
    outcome, detail = outcomes(result.json())["cache-a"]
    assert outcome == "removed", detail
    assert result.code == 0, result.err
    history = bilge("history", "--json", host=host).json()
    (entry,) = [e for e in history["entries"] if e["name"] == "cache-a"]
    assert entry["outcome"] == "removed"


@pytest.fixture
def full_state_dir(tmp_path: Path) -> Iterator[Path]:
    """A state dir on a tmpfs with no inode left, unmounted afterwards."""
    mnt = tmp_path / "full"
    mnt.mkdir()
    mount = ["mount", "-t", "tmpfs", "-o", "size=1m,nr_inodes=16", "tmpfs", str(mnt)]
    if subprocess.run(mount, capture_output=True, check=False).returncode:
        pytest.skip("cannot mount a tmpfs here (needs root)")
    try:
        (mnt / "state").mkdir()
        n = 0
        with contextlib.suppress(OSError):
            while True:
                (mnt / f"f{n}").touch()
                n += 1
        yield mnt / "state"
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=True)


def test_records_the_state_store_never_could_write_are_printed_and_exit_3(
    engine: Sandbox, tmp_path: Path, full_state_dir: Path
) -> None:
    run_container(engine, name="exited-job")
    bilge = make_bilge(engine, tmp_path)
    result = bilge("--state-dir", str(full_state_dir), "apply", "--yes")
    assert result.code == 3, result.err
    assert not exists(engine, "container", "exited-job")  # the removal itself went ahead
    lost = [json.loads(line) for line in result.err.splitlines() if line.startswith("{")]
    kinds = [doc["bilge_lost_record"] for doc in lost]
    assert "attempt" in kinds and "outcome" in kinds
    attempts = {d["name"]: d for d in lost if d["bilge_lost_record"] == "attempt"}
    assert attempts["exited-job"]["kind"] == "container"
    assert "internal error" not in result.err


def test_two_applies_at_once_never_both_claim_an_object(engine: Sandbox, tmp_path: Path) -> None:
    for n in range(12):
        run_container(engine, name=f"job-{n}", volumes=["/out"], write={"/out/r": 1024})
    bilge = make_bilge(engine, tmp_path)
    argv = [sys.executable, "-m", "bilge", "-H", engine.host, "-c", str(bilge.config)]
    argv += ["--state-dir", str(bilge.state_dir), "apply", "--yes", "--json"]
    env = engine.environ()
    runs = [subprocess.Popen(argv, stdout=subprocess.PIPE, text=True, env=env) for _ in range(2)]
    docs = [json.loads(run.communicate(timeout=300)[0]) for run in runs]
    claimed: dict[tuple[str, str], int] = {}
    for doc in docs:
        for a in doc["actions"]:
            if a["outcome"] == "removed":
                claimed[(a["kind"], a["id"])] = claimed.get((a["kind"], a["id"]), 0) + 1
    assert claimed and max(claimed.values()) == 1, claimed
    kinds = {kind for kind, _ in claimed}
    assert {"container", "volume"} <= kinds
    # Every container and volume went, each claimed by exactly one of the two.
    assert len([k for k in claimed if k[0] == "container"]) == 12
    assert len([k for k in claimed if k[0] == "volume"]) == 12
    history = bilge("history", "--json", "--limit", "500").json()
    removed = [(e["kind"], e["object_id"]) for e in history["entries"] if e["outcome"] == "removed"]
    assert len(removed) == len(set(removed))


def test_the_next_run_settles_what_a_killed_run_left_open(engine: Sandbox, tmp_path: Path) -> None:
    stays = run_container(engine, name="stays")
    went = run_container(engine, name="went")
    engine.docker("rm", went)
    bilge = make_bilge(engine, tmp_path)
    store = StateStore(bilge.state_dir)
    store.run = "bilge-host-that-died:1:1"  # another machine's run, long dead by now
    store.record_attempts(
        engine.host,
        [
            Action(Kind.CONTAINER, cid, name, "r", 0, "", "fp")
            for cid, name in ((stays, "stays"), (went, "went"))
        ],
    )
    store.close()
    db = sqlite3.connect(bilge.state_dir / "bilge.db")
    db.execute("UPDATE audit SET at = '2020-01-01T00:00:00+00:00'")
    db.commit()
    db.close()
    assert bilge("status").code == 0
    entries = {e["name"]: e for e in bilge("history", "--json").json()["entries"]}
    assert entries["went"]["outcome"] == "removed"
    assert entries["stays"]["outcome"] == "skipped"
    assert entries["stays"]["detail"].startswith("not removed: the run that attempted it stopped")
    assert exists(engine, "container", "stays")
