"""Run the real `bilge` command against a sandbox engine, as a user would."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.integration.helpers import Sandbox

#: Grace periods of zero: the tests' objects are seconds old.
ZERO_GRACE = """
[containers]
exited_after = "0s"
created_after = "0s"
[volumes]
anonymous_after = "0s"
named_after = "0s"
[images]
dangling_after = "0s"
unused_after = "0s"
keep_recent = 0
[build_cache]
keep_storage = "0B"
unused_after = "0s"
[networks]
unused_after = "0s"
"""


@dataclass(frozen=True)
class Run:
    code: int
    out: str
    err: str

    def json(self) -> Any:
        return json.loads(self.out)


@dataclass(frozen=True)
class Bilge:
    """`bilge` bound to one sandbox, one state dir and one policy file."""

    sb: Sandbox
    state_dir: Path
    config: Path

    def __call__(self, *args: str, host: str | None = None, stdin: str | None = None) -> Run:
        argv = [sys.executable, "-m", "bilge", "-H", host or self.sb.host]
        argv += ["-c", str(self.config), "--state-dir", str(self.state_dir), *args]
        proc = subprocess.run(
            argv,
            capture_output=True,
            text=True,
            input=stdin,
            env=self.sb.environ({"COLUMNS": "200"}),
            timeout=600,
            check=False,
        )
        return Run(proc.returncode, proc.stdout, proc.stderr)

    def with_policy(self, text: str) -> Bilge:
        self.config.write_text(text)
        return self


def make_bilge(sb: Sandbox, tmp_path: Path, policy: str = ZERO_GRACE) -> Bilge:
    config = tmp_path / "bilge.toml"
    config.write_text(policy)
    return Bilge(sb, tmp_path / "state", config)


def exists(sb: Sandbox, kind: str, ident: str) -> bool:
    """Whether the engine still has the container/volume/image/network `ident`."""
    return sb.docker(kind, "inspect", ident, check=False).returncode == 0


def inventory(sb: Sandbox) -> dict[str, set[str]]:
    """Every object's id, by kind, to prove that nothing was removed."""

    def ids(*args: str) -> set[str]:
        return set(sb.docker(*args).stdout.split())

    return {
        "containers": ids("ps", "-aq", "--no-trunc"),
        "volumes": ids("volume", "ls", "-q"),
        "images": ids("images", "-aq", "--no-trunc"),
        "networks": ids("network", "ls", "-q"),
    }
