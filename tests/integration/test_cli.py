"""The command line against the real engine: output, JSON schema, bad input."""

from __future__ import annotations

import contextlib
import os
import pty
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.integration.bilge_cli import ZERO_GRACE, exists, inventory, make_bilge
from tests.integration.helpers import Sandbox, build_image, make_volume, run_container


def clutter(sb: Sandbox) -> None:
    run_container(sb, name="exited-job", volumes=["/out"], write={"/out/r": 65536})
    run_container(sb, name="never-ran", state="created")
    make_volume(sb, "old-cache", files={"c": 4096})
    build_image(sb, "app:1", size=4096)
    build_image(sb, "app:2", size=4096)
    build_image(sb, "tool:1", size=4096, buildkit=True)
    sb.docker("network", "create", "--internal", "unused-net")


def test_status_plan_apply_history_tour(engine: Sandbox, tmp_path: Path) -> None:
    clutter(engine)
    bilge = make_bilge(engine, tmp_path)

    status = bilge("status")
    assert status.code == 0, status.err
    assert "What fills the disk" in status.out and "Reclaimable under the policy" in status.out

    plan = bilge("plan", "--explain")
    assert plan.code == 0 and "exited-job" in plan.out and "named volume" in plan.out

    applied = bilge("apply", "--yes", "--json")
    assert applied.code == 0, applied.err
    doc = applied.json()
    assert doc["schema"] == 1 and doc["counts"]["failed"] == 0
    assert doc["freed_bytes_measured"] is not None  # the data-root is local here
    kinds = {a["kind"] for a in doc["actions"] if a["outcome"] == "removed"}
    assert kinds == {"container", "volume", "image", "network", "build-cache"}

    again = bilge("plan", "--json").json()
    assert again["actions"] == []
    assert bilge("history").code == 0


def test_plan_json_has_the_documented_fields(engine: Sandbox, tmp_path: Path) -> None:
    clutter(engine)
    doc = make_bilge(engine, tmp_path)("plan", "--json").json()
    assert doc["schema"] == 1
    assert doc["total_bytes"] == sum(a["bytes"] for a in doc["actions"]) > 0
    for action in doc["actions"]:
        assert {"kind", "id", "name", "reason", "bytes"} <= set(action)


def test_apply_without_yes_and_without_a_terminal_refuses(engine: Sandbox, tmp_path: Path) -> None:
    clutter(engine)
    before = inventory(engine)
    result = make_bilge(engine, tmp_path)("apply", stdin="y\n")
    assert result.code == 2 and "--yes" in result.err
    assert inventory(engine) == before


BAD_POLICIES = [
    ("[containers\nexited_after = '1h'", "invalid TOML"),
    ("[volumes]\nnamd = true", "volumes.namd"),
    ("[images]\nunused_after = '7 days'", "images.unused_after"),
    ("[build_cache]\nkeep_storage = 'lots'", "build_cache.keep_storage"),
    ("[watch]\nhigh = '70%'\nlow = '80%'", "watch.low"),
    ("[images]\nkeep_recent = -1", "images.keep_recent"),
]


@pytest.mark.parametrize(("policy", "key"), BAD_POLICIES)
def test_bad_config_is_one_line_exit_2_and_nothing_removed(
    engine: Sandbox, tmp_path: Path, policy: str, key: str
) -> None:
    clutter(engine)
    before = inventory(engine)
    bilge = make_bilge(engine, tmp_path, policy)
    result = bilge("apply", "--yes")
    assert result.code == 2
    assert key in result.err and str(bilge.config) in result.err
    assert len(result.err.strip().splitlines()) == 1
    assert inventory(engine) == before


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{not json", "not JSON"),
        ('{"schema": 1, "kind": "status"}', "plan"),
        ('{"schema": 99, "kind": "plan"}', "schema"),
        ("[]", "plan"),
    ],
)
def test_a_corrupt_plan_file_is_refused_and_nothing_removed(
    engine: Sandbox, tmp_path: Path, content: str, message: str
) -> None:
    clutter(engine)
    before = inventory(engine)
    plan_file = tmp_path / "plan.json"
    plan_file.write_text(content)
    result = make_bilge(engine, tmp_path)("apply", "--yes", "--plan", str(plan_file))
    assert result.code == 2 and message in result.err
    assert len(result.err.strip().splitlines()) == 1
    assert inventory(engine) == before


def test_a_plan_file_for_another_engine_is_refused(engine: Sandbox, tmp_path: Path) -> None:
    clutter(engine)
    bilge = make_bilge(engine, tmp_path)
    plan_file = tmp_path / "plan.json"
    bilge("plan", "--out", str(plan_file))
    plan_file.write_text(plan_file.read_text().replace(engine.host, "unix:///elsewhere.sock"))
    before = inventory(engine)
    result = bilge("apply", "--yes", "--plan", str(plan_file))
    assert result.code == 2 and "unix:///elsewhere.sock" in result.err
    assert inventory(engine) == before


def test_an_unreachable_engine_is_one_clear_line(engine: Sandbox, tmp_path: Path) -> None:
    result = make_bilge(engine, tmp_path)("status", host=f"unix://{tmp_path}/nothing.sock")
    assert result.code == 1
    assert result.err.startswith("bilge: error:") and "connect" in result.err
    assert len(result.err.strip().splitlines()) == 1


def test_verbose_shows_the_traceback(engine: Sandbox, tmp_path: Path) -> None:
    result = make_bilge(engine, tmp_path)("-v", "status", host=f"unix://{tmp_path}/no.sock")
    assert result.code == 1 and "Traceback" in result.err


def test_several_hosts_are_each_reported(engine: Sandbox, tmp_path: Path) -> None:
    """Each host once, in the order given: the same engine named twice is one host (two
    applies racing on one engine would only get in each other's way)."""
    clutter(engine)
    bilge = make_bilge(engine, tmp_path)
    missing = f"unix://{tmp_path}/missing.sock"
    doc = bilge("-H", engine.host, "-H", missing, "status", "--json").json()
    assert doc["kind"] == "hosts"
    assert [r["host"] for r in doc["results"]] == [engine.host, missing]
    assert doc["results"][0]["engine"]["host"] == engine.host
    assert "error" in doc["results"][1]


def test_a_plan_file_with_several_hosts_is_bad_usage(engine: Sandbox, tmp_path: Path) -> None:
    result = make_bilge(engine, tmp_path)("-H", engine.host, "plan", "--out", "p.json")
    assert result.code == 2 and "single -H" in result.err


def _on_a_terminal(bilge: Any, answer: str) -> tuple[int, str]:
    """Run `bilge apply` with a pseudo-terminal as its terminal, answer its question."""
    primary, secondary = pty.openpty()
    argv = [sys.executable, "-m", "bilge", "-H", bilge.sb.host, "-c", str(bilge.config)]
    argv += ["--state-dir", str(bilge.state_dir), "apply"]
    proc = subprocess.Popen(argv, stdin=secondary, stdout=secondary, stderr=secondary,
                            env=bilge.sb.environ({"COLUMNS": "120"}))  # fmt: skip
    os.close(secondary)
    seen = b""
    while b"[y/N]" not in seen:
        seen += os.read(primary, 4096)
    os.write(primary, answer.encode() + b"\n")
    code = proc.wait(timeout=120)
    with contextlib.suppress(OSError):
        while chunk := os.read(primary, 4096):
            seen += chunk
    os.close(primary)
    return code, seen.decode(errors="replace")


def test_apply_asks_on_a_terminal(engine: Sandbox, tmp_path: Path) -> None:
    cid = run_container(engine, name="ask-me")
    bilge = make_bilge(engine, tmp_path)
    code, screen = _on_a_terminal(bilge, "n")
    assert code == 2 and "[y/N]" in screen and "not confirmed" in screen
    assert engine.docker("inspect", cid, check=False).returncode == 0
    code, screen = _on_a_terminal(bilge, "y")
    assert code == 0, screen
    assert engine.docker("inspect", cid, check=False).returncode != 0


def test_a_plan_reads_named_volumes_only_when_the_policy_may_remove_them(
    engine: Sandbox, tmp_path: Path
) -> None:
    """Under `named = false` a plan leaves named volumes unread (a database's files can
    be millions) and says so; --explain, status and `named = true` read them."""
    make_volume(engine, "couch-named", files={"_dbs.couch": 5000, "shards/a.couch": 70_000})
    run_container(engine, name="job", volumes=["/out"], write={"/out/r": 65536})
    bilge = make_bilge(engine, tmp_path)  # named = false
    plan = bilge("plan", "--json").json()
    kept = {k["name"]: k for k in plan["kept"]}
    unread = "named volume (volumes.named = false); size not measured"
    assert kept["couch-named"]["reason"] == unread
    assert kept["couch-named"]["bytes"] == 0
    assert {a["kind"] for a in plan["actions"]} >= {"container", "volume"}  # the job's
    assert all(a["bytes"] > 0 for a in plan["actions"] if a["kind"] == "volume")

    explained = {k["name"]: k for k in bilge("plan", "--json", "--explain").json()["kept"]}
    assert explained["couch-named"]["reason"] == "named volume (volumes.named = false)"
    assert explained["couch-named"]["bytes"] > 75_000
    usage = {row["kind"]: row for row in bilge("status", "--json").json()["usage"]}
    assert usage["volumes"]["bytes"] > 75_000 + 65_536  # the named one and the job's

    removing = bilge.with_policy(ZERO_GRACE.replace("[volumes]", "[volumes]\nnamed = true"))
    kept = {k["name"]: k for k in removing("plan", "--json").json()["kept"]}
    assert kept["couch-named"]["reason"].startswith("holds database data: couchdb")
    assert removing("apply", "--yes").code == 0
    assert exists(engine, "volume", "couch-named")
