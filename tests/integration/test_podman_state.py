"""What bilge reads from Podman's own database (engine/libpodstate.py) against what
the live engine answers: every container's volumes and state, on a private Podman
service, including while Podman commits to that database all the time; and a pod,
whose infra container Podman will not remove alone."""

from __future__ import annotations

import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from bilge.engine.connect import open_engine
from bilge.engine.docker import DockerEngine
from bilge.engine.libpodstate import container_state, container_volumes
from bilge.engine.podman import PodmanEngine
from bilge.timeparse import parse_time
from tests.integration.bilge_cli import exists, make_bilge
from tests.integration.helpers import BASE_IMAGE, Sandbox, reset_engine
from tests.integration.helpers import container_state as container_state_of

NONE = ("--network", "none")
#: Containers that stay, and containers made and removed while their database is read.
STABLE, CHURNED = 12, 20


@pytest.fixture
def podman(podman_sandbox: Sandbox) -> Iterator[Sandbox]:
    yield podman_sandbox
    reset_engine(podman_sandbox)


def _volumes(container: dict[str, object]) -> list[tuple[str, str]]:
    mounts = container.get("Mounts") or []
    assert isinstance(mounts, list)
    return sorted((m["Name"], m["Destination"]) for m in mounts if m.get("Type") == "volume")


def test_the_database_says_what_the_engine_says(podman: Sandbox, tmp_path: Path) -> None:
    sb = podman
    sb.docker("volume", "create", "st-named")
    sb.docker("create", "--name", "st-created", *NONE, "-v", "st-named:/n", BASE_IMAGE, "true")
    sb.docker("run", "--name", "st-exited", *NONE, "-v", "/anon", "-v", "st-named:/n",
              "-v", f"{tmp_path}:/host", BASE_IMAGE, "true")  # fmt: skip
    sb.docker("run", "-d", "--name", "st-running", *NONE, "-v", "/r", BASE_IMAGE, "sleep", "600")
    sb.docker("run", "-d", "--name", "st-paused", *NONE, BASE_IMAGE, "sleep", "600")
    sb.docker("pause", "st-paused")
    sb.docker(
        "create", "--name", "st-from", *NONE, "--volumes-from", "st-exited", BASE_IMAGE, "true"
    )
    engine = open_engine(sb.host)
    try:
        assert isinstance(engine, PodmanEngine)
        graph_root = str(engine.info()["DockerRootDir"])
        assert container_volumes(graph_root) is not None  # the fast path is the one tested
        ours = engine.containers(size=False)
        theirs = DockerEngine.containers(engine, size=False)
        assert len(ours) == 5
        assert {c["Id"]: _volumes(c) for c in ours} == {c["Id"]: _volumes(c) for c in theirs}
        for c in theirs:
            mine = container_state(graph_root, str(c["Id"]))
            inspected = DockerEngine.container_state(engine, str(c["Id"]))
            assert mine is not None
            assert mine["Status"] == inspected["Status"], c["Names"]
            assert parse_time(mine["StartedAt"]) == parse_time(inspected["StartedAt"])
            assert engine.container_state(str(c["Id"])) == mine
        by_name = {str(c["Names"][0]).lstrip("/"): c for c in ours}
        assert by_name["st-exited"]["FinishedAt"] and by_name["st-running"]["State"] == "running"
    finally:
        engine.close()


def test_reads_during_commits_are_whole_or_none(podman: Sandbox) -> None:
    """Podman commits to its database for every container made and removed; a read
    overtaken by two commits is read again, so what is read is always true."""
    sb = podman
    sb.docker("volume", "create", "st-keep")
    for n in range(STABLE):
        sb.docker(
            "create", "--name", f"st-stable-{n}", *NONE, "-v", "st-keep:/k", BASE_IMAGE, "true"
        )
    engine = open_engine(sb.host)
    graph_root = str(engine.info()["DockerRootDir"])
    stable = {c["Id"]: _volumes(c) for c in engine.containers(size=False)}
    engine.close()
    stop = threading.Event()
    churned: list[int] = []

    def churn() -> None:
        while not stop.is_set() and len(churned) < CHURNED:
            n = len(churned)
            sb.docker("create", "--name", f"st-churn-{n}", *NONE, "-v", "/c", BASE_IMAGE, "true")
            sb.docker("rm", "-v", f"st-churn-{n}")
            churned.append(n)

    writer = threading.Thread(target=churn)
    writer.start()
    reads = answered = 0
    try:
        while writer.is_alive():
            reads += 1
            got = container_volumes(graph_root)
            if got is None:
                continue
            answered += 1
            for cid, volumes in stable.items():
                assert sorted(got[cid]) == volumes
            for cid, volumes in got.items():
                if cid not in stable:
                    assert len(volumes) == 1 and volumes[0][1] == "/c"
    finally:
        stop.set()
        writer.join()
    assert len(churned) == CHURNED and answered > 0.9 * reads


def test_a_pods_infra_container_stays_and_its_pod_is_left_whole(
    podman: Sandbox, tmp_path: Path
) -> None:
    """Podman refuses to remove a pod's infra container alone; bilge keeps it, says
    why, and removes the pod's exited containers around it without a failure."""
    sb = podman
    pm = ["podman", "--remote", "--url", sb.host]
    subprocess.run(
        [*pm, "pod", "create", "--name", "st-pod", *NONE], check=True, capture_output=True
    )
    try:
        app = [*pm, "run", "--pod", "st-pod", "--name", "st-pod-app", BASE_IMAGE, "true"]
        subprocess.run(app, check=True, capture_output=True)
        infra = subprocess.run(
            [*pm, "pod", "inspect", "st-pod", "--format", "{{.InfraContainerID}}"],
            check=True, capture_output=True, text=True,
        ).stdout.strip()  # fmt: skip
        sb.docker("stop", "-t", "0", infra)
        assert container_state_of(sb, infra) == "exited"
        bilge = make_bilge(sb, tmp_path)
        plan = bilge("plan", "--json").json()
        removed = {a["name"] for a in plan["actions"] if a["kind"] == "container"}
        kept = {k["name"]: k["reason"] for k in plan["kept"] if k["kind"] == "container"}
        assert removed == {"st-pod-app"}
        assert any("infra container of pod st-pod" in why for why in kept.values())
        applied = bilge("apply", "--yes")
        assert applied.code == 0, applied.out + applied.err
        assert not exists(sb, "container", "st-pod-app") and exists(sb, "container", infra)
    finally:
        subprocess.run([*pm, "pod", "rm", "-f", "st-pod"], check=False, capture_output=True)
