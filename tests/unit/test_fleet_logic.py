"""Fleets without engines: naming the hosts (hosts files, contexts, TLS files,
ssh:// commands), running them in parallel and isolated, the worst exit code,
the summary's order, and the JSON document of a fleet."""

from __future__ import annotations

import hashlib
import io
import json
import threading
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from bilge.cli.common import Global
from bilge.cli.entry import build_parser
from bilge.cli.fleet import Request, _document
from bilge.config.policy import load_policy
from bilge.engine.contexts import (
    Endpoint,
    context_endpoint,
    fleet_endpoints,
    parse_hosts,
    read_hosts_file,
)
from bilge.engine.sshhttp import ssh_argv
from bilge.errors import EXIT_ERROR, EXIT_OK, EXIT_SOME_FAILED, EXIT_USAGE, EngineError, UsageError
from bilge.fleet import HostReport, HostResult, run_parallel, worst_exit
from bilge.model import Filesystem, Plan
from bilge.report.fleet import SummaryRow, summary_row, worst_first
from tests.unit.snapshots import NOW, snapshot


def _context(
    config: Path, name: str, host: str, *, tls: tuple[str, ...] = (), skip: bool = False
) -> None:
    digest = hashlib.sha256(name.encode()).hexdigest()
    meta = config / "contexts" / "meta" / digest
    meta.mkdir(parents=True)
    docker = {"Host": host, "SkipTLSVerify": skip}
    (meta / "meta.json").write_text(json.dumps({"Name": name, "Endpoints": {"docker": docker}}))
    if tls:
        folder = config / "contexts" / "tls" / digest / "docker"
        folder.mkdir(parents=True)
        for file in tls:
            (folder / file).write_text("PEM")


# --- naming the hosts -----------------------------------------------------------


def test_a_hosts_file_has_one_host_a_line_with_comments_and_blanks() -> None:
    text = "# rack 3\nunix:///a.sock\n\n  tcp://10.0.0.2:2376   # runner\nprod\n#gone\n"
    assert parse_hosts(text) == ["unix:///a.sock", "tcp://10.0.0.2:2376", "prod"]


def test_a_hosts_file_of_dash_is_stdin_and_a_missing_one_is_bad_usage(tmp_path: Path) -> None:
    assert read_hosts_file("-", io.StringIO("ssh://ci@r1\n")) == ["ssh://ci@r1"]
    with pytest.raises(UsageError, match="cannot read hosts file"):
        read_hosts_file(str(tmp_path / "missing"))


def test_a_context_gives_its_host_and_tls_files(tmp_path: Path) -> None:
    _context(tmp_path, "prod", "tcp://10.0.0.9:2376", tls=("ca.pem", "cert.pem", "key.pem"))
    endpoint = context_endpoint("prod", {"DOCKER_CONFIG": str(tmp_path)})
    assert endpoint.address == "tcp://10.0.0.9:2376" and endpoint.name == "prod"
    assert endpoint.tls is not None and endpoint.tls.verify
    assert endpoint.tls.ca is not None and endpoint.tls.ca.name == "ca.pem"
    assert endpoint.tls.key is not None and endpoint.tls.key.parent.name == "docker"


def test_a_context_without_tls_files_and_one_that_skips_verification(tmp_path: Path) -> None:
    _context(tmp_path, "plain", "ssh://ci@runner")
    _context(tmp_path, "lax", "tcp://h:2376", tls=("ca.pem",), skip=True)
    env = {"DOCKER_CONFIG": str(tmp_path)}
    assert context_endpoint("plain", env).tls is None
    lax = context_endpoint("lax", env).tls
    assert lax is not None and not lax.verify and lax.cert is None


def test_an_unknown_context_is_an_endpoint_with_its_error(tmp_path: Path) -> None:
    endpoint = context_endpoint("nope", {"DOCKER_CONFIG": str(tmp_path)})
    assert endpoint.address == "" and endpoint.label == "nope"
    assert endpoint.error is not None and "'nope' not found" in endpoint.error


def test_hosts_come_in_order_and_a_host_named_twice_runs_once(tmp_path: Path) -> None:
    _context(tmp_path, "ctx", "unix:///c.sock")
    hosts = tmp_path / "hosts"
    hosts.write_text("unix:///b.sock\nunix:///a.sock\nctx\n")
    env = {"DOCKER_CONFIG": str(tmp_path)}
    endpoints = fleet_endpoints(["unix:///a.sock"], [str(hosts)], ["ctx"], env)
    assert [e.address for e in endpoints] == ["unix:///a.sock", "unix:///b.sock", "unix:///c.sock"]


def test_without_hosts_the_current_context_with_its_tls_files(tmp_path: Path) -> None:
    _context(tmp_path, "work", "tcp://w:2376", tls=("ca.pem",))
    (tmp_path / "config.json").write_text(json.dumps({"currentContext": "work"}))
    env = {"DOCKER_CONFIG": str(tmp_path), "HOME": str(tmp_path)}
    (only,) = fleet_endpoints([], [], [], env)
    assert only.address == "tcp://w:2376" and only.tls is not None
    (over,) = fleet_endpoints([], [], [], {**env, "DOCKER_HOST": "unix:///x.sock"})
    assert over.address == "unix:///x.sock" and over.tls is None


def test_an_empty_hosts_file_is_bad_usage(tmp_path: Path) -> None:
    (tmp_path / "hosts").write_text("# nothing yet\n")
    with pytest.raises(UsageError, match="no hosts"):
        fleet_endpoints([], [str(tmp_path / "hosts")], [], {})


def test_ssh_addresses_become_an_ssh_command_for_dial_stdio() -> None:
    env = {"BILGE_SSH_COMMAND": "ssh -F /dev/null -i key"}
    argv = ssh_argv("ssh://ci@runner-3:2222?socket=/run/user/1000/docker.sock", env, 30)
    assert argv[:4] == ["ssh", "-F", "/dev/null", "-i"]
    assert argv[argv.index("-l") + 1] == "ci" and argv[argv.index("-p") + 1] == "2222"
    assert argv[-2:] == [
        "runner-3",
        "docker -H unix:///run/user/1000/docker.sock system dial-stdio",
    ]
    assert "BatchMode=yes" in argv
    plain = ssh_argv("ssh://runner", {}, 30)
    assert plain[0] == "ssh" and "-l" not in plain and plain[-1] == "docker system dial-stdio"
    with pytest.raises(EngineError):
        ssh_argv("ssh://", {}, 30)


def test_the_fleet_options_parse() -> None:
    argv = ["--hosts", "-", "status", "--context", "a", "--context", "b", "--parallel", "3"]
    args = build_parser().parse_args([*argv, "--host-timeout", "2m", "--summary"])
    g = Global.from_args(args)
    assert g.hosts_files == ("-",) and g.contexts == ("a", "b") and g.parallel == 3
    assert g.host_timeout == 120.0 and g.summary and g.fleet
    assert not Global.from_args(build_parser().parse_args(["-H", "x://", "status"])).fleet
    for bad in (["--parallel", "0"], ["--host-timeout", "0s"], ["--host-timeout", "30"]):
        with pytest.raises(SystemExit):
            build_parser().parse_args(["status", *bad])


# --- running them ------------------------------------------------------------------


def _hosts(n: int) -> list[Endpoint]:
    return [Endpoint(f"unix:///h{i}.sock", f"h{i}") for i in range(n)]


def test_results_come_in_the_order_given_whatever_order_they_finish() -> None:
    gates = [threading.Event() for _ in range(4)]

    def work(index: int, endpoint: Endpoint) -> tuple[int, str]:
        if index < 3:
            gates[index].wait()
        if index > 0:
            gates[index - 1].set()  # each lets the one before it go: they end last first
        return EXIT_OK, endpoint.name

    results = run_parallel(_hosts(4), work, parallel=4)
    assert [r.value for r in results] == ["h0", "h1", "h2", "h3"]


def test_each_host_is_isolated_an_error_or_a_bug_is_its_row() -> None:
    def work(index: int, endpoint: Endpoint) -> tuple[int, str]:
        if index == 1:
            raise EngineError("cannot connect to the engine at h1")
        if index == 2:
            raise KeyError("oops")
        return EXIT_OK, "fine"

    hosts = [*_hosts(3), Endpoint("", "ghost", error="Docker context 'ghost' not found")]
    results = run_parallel(hosts, work)
    assert [r.value for r in results] == ["fine", None, None, None]
    assert results[1].error == "cannot connect to the engine at h1" and results[1].code == 1
    assert results[2].error is not None and results[2].error.startswith("internal error: KeyError")
    assert results[3].error == "Docker context 'ghost' not found"


def test_no_more_hosts_run_at_once_than_parallel_allows() -> None:
    lock, running, most = threading.Lock(), [0], [0]

    def work(index: int, endpoint: Endpoint) -> tuple[int, None]:
        with lock:
            running[0] += 1
            most[0] = max(most[0], running[0])
        time.sleep(0.01)  # a while in flight, as a host's requests are
        with lock:
            running[0] -= 1
        return EXIT_OK, None

    assert len(run_parallel(_hosts(7), work, parallel=2)) == 7
    assert most[0] <= 2


def test_a_host_past_its_timeout_is_an_error_and_the_others_finish() -> None:
    never = threading.Event()
    abandoned: list[int] = []

    def work(index: int, endpoint: Endpoint) -> tuple[int, str]:
        if index == 0:
            never.wait()
        return EXIT_OK, "done"

    results = run_parallel(_hosts(3), work, host_timeout=0.2, on_timeout=abandoned.append)
    never.set()
    assert results[0].error is not None and "host timeout (0.2s)" in results[0].error
    assert [r.value for r in results[1:]] == ["done", "done"] and abandoned == [0]


@pytest.mark.parametrize(
    ("codes", "worst"),
    [
        ([], EXIT_OK),
        ([EXIT_OK, EXIT_OK], EXIT_OK),
        ([EXIT_OK, EXIT_SOME_FAILED], EXIT_SOME_FAILED),
        ([EXIT_SOME_FAILED, EXIT_USAGE], EXIT_USAGE),
        ([EXIT_SOME_FAILED, EXIT_ERROR, EXIT_OK], EXIT_ERROR),
        ([EXIT_USAGE, EXIT_ERROR], EXIT_ERROR),
        ([EXIT_OK, 130, EXIT_SOME_FAILED], 130),  # unknown: ranked as an error, kept
    ],
)
def test_the_exit_code_is_the_worst_hosts(codes: list[int], worst: int) -> None:
    assert worst_exit(codes) == worst


# --- showing them ----------------------------------------------------------------


def test_the_summary_puts_failures_first_then_critical_then_fullest() -> None:
    rows = [
        SummaryRow("calm", used=0.2),
        SummaryRow("full", used=0.5, inodes=0.97),
        SummaryRow("critical", used=0.3, critical=1),
        SummaryRow("failed-removals", used=0.1, failed=2),
        SummaryRow("down", error="cannot connect"),
        SummaryRow("fuller", used=0.9),
    ]
    order = [r.host for r in worst_first(rows)]
    assert order == ["down", "failed-removals", "critical", "full", "fuller", "calm"]


def _report() -> HostReport:
    fs = Filesystem("/var/lib/docker", 100, 25, 1000, 900)
    snap = snapshot(filesystem=fs)
    return HostReport(snap, Plan(NOW, snap.engine.host, ()))


def test_a_summary_row_has_the_usage_or_the_error() -> None:
    ok = summary_row(HostResult(Endpoint("unix:///a.sock", "a"), _report(), EXIT_OK))
    assert ok.used == 0.75 and ok.inodes == pytest.approx(0.1) and ok.error is None
    assert ok.engine.startswith("Docker ")
    down = summary_row(HostResult(Endpoint("tcp://b:2375", "b"), None, 1, "refused"))
    assert down.error == "refused" and down.host == "tcp://b:2375"


def test_the_json_of_a_fleet_is_each_hosts_document_or_its_error() -> None:
    request = Request("status", None, _hosts(2), json=True, summary_only=False)
    report = _report()
    good = _document(request, HostResult(Endpoint("unix:///h0.sock", "h0"), report, EXIT_OK))
    assert good["kind"] == "status" and good["host"] == "unix:///h0.sock"
    bad = _document(request, HostResult(Endpoint("", "ghost"), None, 1, "not found"))
    assert bad == {"host": "ghost", "error": "not found"}
    planned = _document(replace(request, command="plan"), HostResult(_hosts(1)[0], report, 0))
    assert planned["kind"] == "plan" and planned["host"] == report.plan.host


def test_a_plan_file_is_refused_for_a_fleet(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from bilge.cli.entry import main

    hosts = tmp_path / "hosts"
    hosts.write_text("unix:///a.sock\n")
    saved = str(tmp_path / "p.json")
    for argv in (
        ["--hosts", str(hosts), "plan", "--out", saved],
        ["--summary", "plan", "--out", saved],
    ):
        assert main(argv) == 2
        assert "a plan file belongs to one engine" in capsys.readouterr().err


def test_the_audit_log_and_samples_of_one_host_of_a_fleet(tmp_path: Path) -> None:
    from bilge.session import Session
    from bilge.state.store import StateStore
    from tests.unit.test_state import action

    store = StateStore(tmp_path)
    for n, host in enumerate(("unix:///a.sock", "ssh://ci@b", "unix:///a.sock")):
        store.record_attempt(host, action(n))
        store.record_sample(host, Filesystem("/d", 100, 50 - n, 10, 5), NOW)
    session = Session("unix:///a.sock", load_policy(None), store)
    only_b = session.history(10, ["ssh://ci@b"])
    assert [e.host for e in only_b.entries] == ["ssh://ci@b"]
    assert [s.host for s in only_b.samples] == ["ssh://ci@b"]
    assert len(session.history(10).entries) == 3
    store.close()


def test_a_contexts_tls_files_become_docker_py_settings(tmp_path: Path) -> None:
    from bilge.engine.contexts import TLSFiles
    from bilge.fleet import tls_config

    for name in ("ca.pem", "cert.pem", "key.pem"):
        (tmp_path / name).write_text("PEM")
    files = TLSFiles(tmp_path / "ca.pem", tmp_path / "cert.pem", tmp_path / "key.pem", True)
    tls: Any = tls_config(files)
    assert tls.ca_cert == str(tmp_path / "ca.pem") and tls.verify is True
    assert tls.cert == (str(tmp_path / "cert.pem"), str(tmp_path / "key.pem"))
    lax: Any = tls_config(TLSFiles(None, None, None, False))
    assert lax.verify is False and lax.cert is None
