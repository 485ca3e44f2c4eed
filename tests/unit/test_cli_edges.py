"""The command line at its edges: a reader that goes away, a bad --metrics-addr."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from bilge.model import Action, Kind
from bilge.state import StateStore


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
