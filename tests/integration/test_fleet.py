"""Fleets against real engines: three private engines, one unreachable address,
a Docker context pointing at one engine (and one with TLS files, through a TLS
front that wants a client certificate), a hosts file, and one engine reached
through ssh:// (a private sshd on 127.0.0.1 whose forced command runs Debian's
`docker system dial-stdio` against that engine).

Results are per host and isolated, the exit code is the worst host's, apply
removes each host's garbage and keeps each host's protected objects, an ssh
host that drops in the middle of a run is an error row, and the guard keeps
sampling and evicting the healthy hosts while one is down. The engines are
shared by the whole module (two started here, the session's sandbox the third)
and emptied after each test.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.integration.bilge_cli import exists
from tests.integration.helpers import (
    Sandbox,
    make_volume,
    reset_engine,
    run_container,
    start_sandbox,
    stop_sandbox,
)
from tests.integration.sshd import Sshd, available, private_sshd
from tests.integration.tlsproxy import make_certs, tls_front

PREFIX = "bilge-sandbox-"  # conftest.py sweeps directories of dead sessions by it
POLICY = """
[containers]
exited_after = "0s"
created_after = "0s"
[volumes]
anonymous_after = "0s"
[images]
unused_after = "100d"
[networks]
unused_after = "0s"
[engine]
request_timeout = "20s"
"""
CONTEXT = "fleet-ctx"

pytestmark = pytest.mark.skipif(not available(), reason="openssh-server is not installed")


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])  # closed again when the block ends: refused


@dataclass(frozen=True)
class Fleet:
    a: Sandbox  # named by -H
    b: Sandbox  # reached through ssh://
    c: Sandbox  # named by the Docker context
    sshd: Sshd
    unreachable: str
    home: Path  # DOCKER_CONFIG with the context; the config and the hosts file

    def env(self, ssh_command: str | None = None) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("DOCKER_", "BILGE_"))}
        env["DOCKER_CONFIG"] = str(self.home / "docker")
        env["BILGE_SSH_COMMAND"] = ssh_command or self.sshd.ssh_command
        env["COLUMNS"] = "200"
        return env

    def bilge(self, *args: str, ssh_command: str | None = None) -> subprocess.CompletedProcess[str]:
        argv = [sys.executable, "-m", "bilge", "-c", str(self.home / "bilge.toml"),
                "--state-dir", str(self.home / "state"), *args]  # fmt: skip
        return subprocess.run(argv, capture_output=True, text=True, env=self.env(ssh_command),
                              timeout=300, check=False)  # fmt: skip

    def hosts_file(self) -> Path:
        path = self.home / "hosts"
        path.write_text(
            f"# the rack\n{self.a.host}\n\n{self.sshd.address()}   # through ssh\n"
            f"{CONTEXT}\n{self.unreachable}\n"
        )
        return path

    @property
    def ssh_host(self) -> str:
        return self.sshd.address()


def _make_context(config_dir: Path, name: str, host: str, tls_from: Path | None = None) -> None:
    """A context as `docker context create NAME --docker host=...,ca=,cert=,key=` makes it."""
    digest = hashlib.sha256(name.encode()).hexdigest()
    meta = config_dir / "contexts" / "meta" / digest
    meta.mkdir(parents=True)
    doc = {"Name": name, "Metadata": {}, "Endpoints": {"docker": {"Host": host}}}
    (meta / "meta.json").write_text(json.dumps(doc))
    if tls_from is not None:
        tls = config_dir / "contexts" / "tls" / digest / "docker"
        tls.mkdir(parents=True)
        for file in ("ca.pem", "cert.pem", "key.pem"):
            (tls / file).write_bytes((tls_from / file).read_bytes())


@pytest.fixture(scope="module")
def fleet(sandbox: Sandbox) -> Iterator[Fleet]:
    dirs = [Path(tempfile.mkdtemp(prefix=f"{PREFIX}{os.getpid()}-")) for _ in range(2)]
    home = Path(tempfile.mkdtemp(prefix="bilge-fleet-"))
    try:
        with ThreadPoolExecutor(2) as pool:
            b, c = pool.map(start_sandbox, dirs)
        (home / "bilge.toml").write_text(POLICY)
        _make_context(home / "docker", CONTEXT, c.host)
        with private_sshd(home / "sshd", b.host) as sshd:
            yield Fleet(sandbox, b, c, sshd, f"tcp://127.0.0.1:{_closed_port()}", home)
    finally:
        for d in dirs:
            stop_sandbox(d)
        shutil.rmtree(home, ignore_errors=True)


@pytest.fixture
def engines(fleet: Fleet) -> Iterator[Fleet]:
    yield fleet
    for sb in (fleet.a, fleet.b, fleet.c):
        reset_engine(sb)


def _garbage(sb: Sandbox, prefix: str) -> dict[str, str]:
    """On one host: an exited job with an anonymous volume (garbage), a labelled
    one and a database's named volume (both protected). Returns name -> id."""
    made = {
        f"{prefix}-job": run_container(sb, name=f"{prefix}-job", volumes=["/scratch"]),
        f"{prefix}-keep": run_container(sb, name=f"{prefix}-keep", labels={"bilge.keep": "1"}),
    }
    make_volume(sb, f"{prefix}-pgdata", files={"PG_VERSION": b"15\n"})
    return made


def _results(run: subprocess.CompletedProcess[str]) -> list[dict[str, Any]]:
    doc = json.loads(run.stdout)
    assert doc["schema"] == 1 and doc["kind"] == "hosts", doc
    results: list[dict[str, Any]] = doc["results"]
    return results


def test_every_host_answers_for_itself_and_the_unreachable_one_is_a_row(engines: Fleet) -> None:
    f = engines
    for sb, prefix in ((f.a, "ha"), (f.b, "hb"), (f.c, "hc")):
        _garbage(sb, prefix)
    run = f.bilge("--hosts", str(f.hosts_file()), "plan", "--json")
    assert run.returncode == 1, run.stderr  # one host failed: the worst code
    results = _results(run)
    assert [r["host"] for r in results] == [f.a.host, f.ssh_host, f.c.host, f.unreachable]
    assert "cannot connect" in results[3]["error"] and set(results[3]) == {"host", "error"}
    for doc, prefix in zip(results[:3], ("ha", "hb", "hc"), strict=True):
        names = {a["name"] for a in doc["actions"]} | {k["name"] for k in doc["kept"]}
        assert f"{prefix}-job" in names and f"{prefix}-keep" in names
        # Never one host's objects in another's plan.
        assert not {n for n in names if n[:2] in {"ha", "hb", "hc"} and n[:2] != prefix}


def test_apply_cleans_each_host_and_keeps_each_hosts_protected_objects(engines: Fleet) -> None:
    f = engines
    made = {sb: _garbage(sb, p) for sb, p in ((f.a, "aa"), (f.b, "ab"), (f.c, "ac"))}
    run = f.bilge("-H", f.a.host, "-H", f.ssh_host, "--context", CONTEXT, "apply", "--yes",
                  "--json", "--parallel", "2")  # fmt: skip
    assert run.returncode == 0, run.stderr
    results = _results(run)
    assert [r["kind"] for r in results] == ["outcome"] * 3
    for (sb, ids), doc in zip(made.items(), results, strict=True):
        prefix = next(iter(ids)).split("-")[0]
        assert not exists(sb, "container", ids[f"{prefix}-job"])
        assert exists(sb, "container", ids[f"{prefix}-keep"])
        assert exists(sb, "volume", f"{prefix}-pgdata")
        assert doc["counts"]["failed"] == 0 and doc["counts"]["removed"] >= 2
    history = f.bilge("-H", f.ssh_host, "history", "--json")
    entries = json.loads(history.stdout)["entries"]
    assert entries and {e["host"] for e in entries} == {f.ssh_host}


def test_the_summary_puts_the_failed_host_first_and_adds_up(engines: Fleet) -> None:
    f = engines
    _garbage(f.a, "sa")
    run = f.bilge("-H", f.a.host, "-H", f.unreachable, "--context", CONTEXT, "status",
                  "--summary")  # fmt: skip
    assert run.returncode == 1
    table = run.stdout
    assert "Fleet: 3 hosts" in table and "total (1 failed)" in table
    rows = [line for line in table.splitlines() if line.startswith("│")]
    assert f.unreachable in rows[0]  # worst first
    assert f"{f.unreachable}: cannot connect" in table
    assert "═" not in table  # --summary: no per-host output


def test_an_ssh_host_that_drops_mid_run_is_an_error_row(engines: Fleet) -> None:
    f = engines
    labels = {f"label-{i}": "x" * 60 for i in range(16)}
    for n in range(6):  # a container listing long enough to be cut in its middle
        run_container(f.b, name=f"dropped-{n}", state="created", labels=labels)
    run = f.bilge("-H", f.ssh_host, "-H", f.a.host, "status", "--json",
                  ssh_command=f.sshd.dropping_command)  # fmt: skip
    assert run.returncode == 1
    dropped, healthy = _results(run)
    assert dropped["host"] == f.ssh_host and "error" in dropped
    assert healthy["engine"]["host"] == f.a.host and "error" not in healthy


def test_the_guard_keeps_the_healthy_hosts_while_one_is_down(engines: Fleet) -> None:
    f = engines
    jobs = {sb: run_container(sb, name="guarded-job") for sb in (f.a, f.c)}
    (f.home / "guard.toml").write_text(POLICY + '\n[watch]\nhigh = "2%"\nlow = "1%"\n')
    down = f"unix://{f.home}/stopped-engine.sock"
    argv = [sys.executable, "-m", "bilge", "-c", str(f.home / "guard.toml"), "--state-dir",
            str(f.home / "guard-state"), "-H", f.a.host, "-H", down, "-H", f.c.host,
            "watch", "--once", "--log-format", "json"]  # fmt: skip
    run = subprocess.run(
        argv, capture_output=True, text=True, env=f.env(), timeout=300, check=False
    )
    assert run.returncode == 0, run.stderr
    lines = [json.loads(line) for line in run.stdout.splitlines()]
    by_event: dict[str, set[str]] = {}
    for line in lines:
        by_event.setdefault(line["event"], set()).add(line.get("host", ""))
    assert down in by_event["engine-unreachable"]
    assert {f.a.host, f.c.host} <= by_event["sample"]
    assert {f.a.host, f.c.host} <= by_event["removal"]
    for sb, job in jobs.items():
        assert not exists(sb, "container", job)


def test_a_context_with_tls_files_reaches_its_engine_over_tls(engines: Fleet) -> None:
    f = engines
    make_certs(f.home / "certs")
    with tls_front(f.home / "certs", f.c.host) as address:
        _make_context(f.home / "docker", "fleet-tls", address, tls_from=f.home / "certs")
        _make_context(f.home / "docker", "fleet-no-tls", address)
        run = f.bilge("--context", "fleet-tls", "-H", f.a.host, "status", "--json")
        refused = f.bilge("--context", "fleet-no-tls", "status", "--json", "--summary")
    assert run.returncode == 0, run.stderr
    local, tls = _results(run)  # -H first, then the contexts
    assert tls["engine"]["host"] == address and local["engine"]["host"] == f.a.host
    (plain,) = _results(refused)  # the front wants a client certificate
    assert refused.returncode == 1 and plain["host"] == address and "error" in plain
