"""The command line at its edges: a reader that goes away, a bad --metrics-addr."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from bilge.model import Action, Kind
from bilge.state.store import StateStore


def test_a_closed_pipe_is_a_quiet_end(tmp_path: Path) -> None:
    store = StateStore(tmp_path / "state")
    actions = [Action(Kind.VOLUME, f"v{n}", f"v{n}", "r" * 200, 1, "", "fp") for n in range(3000)]
    store.record_attempts("unix:///h.sock", actions)
    store.close()
    argv = [sys.executable, "-m", "bilge", "--state-dir", str(tmp_path / "state")]
    bilge = subprocess.Popen(
        [*argv, "history", "--json", "--limit", "3000"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert bilge.stdout is not None and bilge.stderr is not None
    bilge.stdout.read(100)
    bilge.stdout.close()  # like `| head -c 100`
    err = bilge.stderr.read().decode()
    assert bilge.wait(timeout=60) == 0
    assert err == ""


def test_a_metrics_address_out_of_range_is_bad_usage(tmp_path: Path) -> None:
    for addr in ("127.0.0.1:70000", "nohost", "1.2.3.4:"):
        done = subprocess.run(
            [sys.executable, "-m", "bilge", "watch", "--once", "--metrics-addr", addr],
            capture_output=True,
            text=True,
            check=False,
        )
        assert done.returncode == 2, done.stderr
        assert "--metrics-addr" in done.stderr


def test_an_error_line_shows_control_characters_escaped(tmp_path: Path) -> None:
    # An engine that refuses with a message meant for the terminal, not for bilge.
    from tests.unit.deadline_peers import Peer, head

    def refuse(conn: object, stop: object) -> None:
        body = b'{"message": "no\\u001b]0;pwned\\u0007\\u001b[2J\\rway"}'
        conn.sendall(head("500 Internal Server Error", f"Content-Length: {len(body)}") + body)  # type: ignore[attr-defined]

    peer = Peer({"/version": refuse}, str(tmp_path / "engine.sock"))
    try:
        done = subprocess.run(
            [
                sys.executable,
                "-m",
                "bilge",
                "-H",
                peer.host,
                "--state-dir",
                str(tmp_path / "s"),
                "status",
            ],
            capture_output=True,
            check=False,
        )
    finally:
        peer.close()
    assert done.returncode == 1
    err = done.stderr.decode()
    assert err.startswith("bilge: error:") and err.count("\n") == 1
    assert not any(c in err for c in "\x1b\x07\r")
    assert "\\x1b]0;pwned\\x07" in err


def test_the_policy_sets_the_engine_deadline(tmp_path: Path) -> None:
    from datetime import timedelta

    from bilge.config.policy import EnginePolicy, Policy
    from bilge.engine.docker import DockerEngine
    from bilge.session import Session
    from tests.unit.deadline_peers import Peer, answer

    peer = Peer({"/version": answer(b'{"ApiVersion": "1.41"}')}, str(tmp_path / "engine.sock"))
    try:
        policy = Policy(engine=EnginePolicy(request_timeout=timedelta(seconds=7)))
        ctx = Session(peer.host, policy, state_dir=tmp_path / "state")
        engine = ctx.engine
        assert isinstance(engine, DockerEngine) and engine.timeout == 7
    finally:
        peer.close()
