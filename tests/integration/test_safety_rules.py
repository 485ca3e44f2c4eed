"""Each safety rule of docs/architecture.md against the real engines, Docker and Podman:
break the rule, a test fails.

Every test builds the situation with the Docker CLI, runs the real `bilge` command
(policy with zero grace periods, so only the safety rules stand between an object
and its removal), and checks the engine afterwards, with a positive control
showing that the same kind of object is removed when no rule protects it.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from bilge.applier import core as apply_module
from bilge.config.policy import parse_policy
from bilge.model import Result
from bilge.session import Session
from tests.integration.bilge_cli import exists, make_bilge
from tests.integration.helpers import BASE_IMAGE, Sandbox, build_image, make_volume, run_container


@pytest.fixture
def engine(either_engine: Sandbox) -> Iterator[Sandbox]:
    """Every rule holds on Docker and on Podman alike."""
    yield either_engine


def volumes_of(sb: Sandbox, container: str) -> list[str]:
    fmt = "{{range .Mounts}}{{.Name}} {{end}}"
    return sb.docker("inspect", "-f", fmt, container).stdout.split()


def test_rule4_database_in_an_anonymous_volume_keeps_volume_and_container(
    engine: Sandbox, tmp_path: Path
) -> None:
    pg = run_container(
        engine,
        name="old-postgres",
        volumes=["/var/lib/postgresql/data"],
        write={"/var/lib/postgresql/data/PG_VERSION": b"15\n"},
    )
    job = run_container(engine, name="job", volumes=["/scratch"], write={"/scratch/x": 4096})
    (pg_volume,) = volumes_of(engine, pg)
    (job_volume,) = volumes_of(engine, job)
    bilge = make_bilge(engine, tmp_path)

    plan = bilge("plan", "--json").json()
    assert plan["engine"] == engine.kind  # the document names the engine it was made on
    kept = {k["name"]: k["reason"] for k in plan["kept"]}
    assert "database" in kept["old-postgres"]
    assert pg_volume in kept

    assert bilge("apply", "--yes").code == 0
    assert exists(engine, "container", pg) and exists(engine, "volume", pg_volume)
    assert not exists(engine, "container", job) and not exists(engine, "volume", job_volume)


def test_rule3_named_volume_with_couchdb_files_survives_named_true(
    engine: Sandbox, tmp_path: Path
) -> None:
    make_volume(engine, "couchdb-data", files={"_dbs.couch": 8192, "shards/a.couch": 4096})
    make_volume(engine, "scratch", files={"tmp.bin": 8192})
    make_volume(engine, "mystery")  # empty: the engine and bilge agree it holds nothing
    bilge = make_bilge(engine, tmp_path)
    bilge.config.write_text(
        bilge.config.read_text().replace("[volumes]", "[volumes]\nnamed = true")
    )

    assert bilge("apply", "--yes").code == 0
    assert exists(engine, "volume", "couchdb-data")
    assert not exists(engine, "volume", "scratch")
    assert not exists(engine, "volume", "mystery")


def test_rule3_named_volumes_are_kept_unless_the_policy_opts_in(
    engine: Sandbox, tmp_path: Path
) -> None:
    make_volume(engine, "scratch", files={"tmp.bin": 8192})
    assert make_bilge(engine, tmp_path)("apply", "--yes").code == 0
    assert exists(engine, "volume", "scratch")


def test_rule1_nothing_in_use_is_removed(engine: Sandbox, tmp_path: Path) -> None:
    used_by_created = build_image(engine, "only-created:1", size=1024)
    unused = build_image(engine, "unused:1", size=1024)
    created = run_container(engine, name="created", image="only-created:1", command="true",
                            state="created")  # fmt: skip
    running = run_container(engine, name="svc", state="running", volumes=["/data"],
                            write={"/data/x": 1024})  # fmt: skip
    (running_volume,) = volumes_of(engine, running)
    engine.docker("network", "create", "--internal", "busy-net")
    engine.docker("network", "create", "--internal", "idle-net")
    # a created container on busy-net: kept by created_after below, and so is its network
    engine.docker("create", "--network", "busy-net", "--name", "net-user", BASE_IMAGE, "true")
    bilge = make_bilge(engine, tmp_path)
    # keep the created container (and so its image) out of the age rule's reach
    bilge.config.write_text(bilge.config.read_text().replace('created_after = "0s"',
                                                             'created_after = "30d"'))  # fmt: skip

    assert bilge("apply", "--yes").code == 0
    assert exists(engine, "container", running) and exists(engine, "volume", running_volume)
    assert exists(engine, "container", created) and exists(engine, "image", used_by_created)
    assert exists(engine, "network", "busy-net")
    assert exists(engine, "image", BASE_IMAGE)  # the running container's image
    assert not exists(engine, "image", unused)
    assert not exists(engine, "network", "idle-net")


def test_keep_label_protects_every_kind(engine: Sandbox, tmp_path: Path) -> None:
    keep = {"bilge.keep": "true"}
    c = run_container(engine, name="kept", labels=keep)
    make_volume(engine, "kept-vol", labels=keep)
    img = build_image(engine, "kept-img:1", labels=keep)
    engine.docker("network", "create", "--internal", "--label", "bilge.keep=1", "kept-net")
    bilge = make_bilge(engine, tmp_path)
    bilge.config.write_text(
        bilge.config.read_text().replace("[volumes]", "[volumes]\nnamed = true")
    )

    assert bilge("apply", "--yes").code == 0
    assert exists(engine, "container", c) and exists(engine, "volume", "kept-vol")
    assert exists(engine, "image", img) and exists(engine, "network", "kept-net")


def test_a_container_started_between_plan_and_apply_is_not_removed(
    engine: Sandbox, tmp_path: Path
) -> None:
    cid = run_container(engine, name="late", command="sleep 3600", state="created")
    bilge = make_bilge(engine, tmp_path)
    ctx = Session(bilge.sb.host, parse_policy(bilge.config.read_text(), "t"),
                  state_dir=bilge.state_dir)  # fmt: skip
    status = ctx.status()
    assert [a.id for a in status.plan.actions if a.id == cid] == [cid]

    engine.docker("start", cid)
    outcome = ctx.apply(status.plan, status.snapshot)
    (result,) = [r for r in outcome.results if r.action.id == cid]
    assert result.result is Result.SKIPPED and "running" in result.detail
    assert exists(engine, "container", cid)


def test_rule2_without_force_the_engine_refuses_and_bilge_skips(
    engine: Sandbox, tmp_path: Path, monkeypatch: object
) -> None:
    """With bilge's own re-check switched off (a race lost), the engine's 409 stops the
    removal: bilge never forces, and records a skip rather than an error."""
    cid = run_container(engine, name="racer", command="sleep 3600", state="created")
    bilge = make_bilge(engine, tmp_path)
    ctx = Session(bilge.sb.host, parse_policy(bilge.config.read_text(), "t"),
                  state_dir=bilge.state_dir)  # fmt: skip
    status = ctx.status()
    engine.docker("start", cid)

    original = apply_module._Remover._container

    def no_recheck(self: apply_module._Remover, action: object) -> None:
        self.engine.remove_container(action.id)  # type: ignore[attr-defined]

    apply_module._Remover._container = no_recheck  # type: ignore[method-assign]
    try:
        outcome = ctx.apply(status.plan, status.snapshot)
    finally:
        apply_module._Remover._container = original  # type: ignore[method-assign]
    (result,) = [r for r in outcome.results if r.action.id == cid]
    assert result.result is Result.SKIPPED and "engine refused" in result.detail
    assert exists(engine, "container", cid)


def test_rule5_every_removal_is_in_the_audit_log(engine: Sandbox, tmp_path: Path) -> None:
    cid = run_container(engine, name="gone-soon", volumes=["/v"])
    bilge = make_bilge(engine, tmp_path)
    applied = bilge("apply", "--yes", "--json").json()
    assert applied["engine"] == engine.kind
    removed = {(a["kind"], a["id"]) for a in applied["actions"] if a["outcome"] == "removed"}
    assert ("container", cid) in removed

    history = bilge("history", "--json").json()
    audited = {(e["kind"], e["object_id"]): e["outcome"] for e in history["entries"]}
    for key in removed:
        assert audited[key] == "removed"


def test_rule6_a_stale_saved_plan_is_refused_for_changed_objects(
    engine: Sandbox, tmp_path: Path
) -> None:
    changed = build_image(engine, "changes:1", size=1024)
    steady = build_image(engine, "steady:1", size=1024)
    bilge = make_bilge(engine, tmp_path)
    plan_file = tmp_path / "plan.json"
    assert bilge("plan", "--out", str(plan_file)).code == 0

    engine.docker("tag", "changes:1", "changes:pinned-by-a-colleague")
    result = bilge("apply", "--plan", str(plan_file), "--yes", "--json")
    assert result.code == 0, result.err
    outcomes = {a["id"]: (a["outcome"], a["detail"]) for a in result.json()["actions"]}
    assert outcomes[changed][0] == "skipped" and "changed since" in outcomes[changed][1]
    assert outcomes[steady][0] == "removed"
    assert exists(engine, "image", changed) and not exists(engine, "image", steady)
