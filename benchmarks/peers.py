"""The tools bilge is measured against, how they are installed, and how they are run.

Every tool runs with the settings closest to bilge's default policy, and with no age
threshold: the scenarios' objects are minutes old, and bilge's grace periods (24 h for
containers and anonymous volumes, 1 h for dangling images, 7 d for unused images and
build cache) are set to 0 s in its policy file. Otherwise each tool keeps its defaults:
none is told about the `bilge.keep` label, as none is by default.

* Docker's own prune: `docker system prune -f --volumes` (stopped containers, unused
  networks, unused volumes, dangling images, dangling build cache) and, closer to
  bilge's image rule, `docker system prune -a -f --volumes` (every unused image and all
  unused build cache). On API 1.41 (Docker 20.10) volume prune takes named volumes too.
* Yelp's docker-custodian: `dcgc --max-container-age 0s --max-image-age 0s
  --dangling-volumes`, from PyPI in a virtual environment of its own.
* bilge: `bilge apply --yes --json` with the zero-grace policy below.

Spotify's docker-gc and docuum cannot be installed here (`NOT_INSTALLABLE`).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from benchmarks.sandbox import DOCKER, ROOT, Engine

CUSTODIAN_VERSION = "0.7.4"
#: docker-custodian 0.7.4 declares `docker` without bounds; 7.x works on Python 3.11.
CUSTODIAN_REQUIREMENTS = (f"docker-custodian=={CUSTODIAN_VERSION}", "docker>=7.1,<8")

#: bilge's default policy with every grace period at zero (the objects are minutes old).
BILGE_POLICY = """\
[containers]
exited_after = "0s"
created_after = "0s"

[volumes]
anonymous_after = "0s"

[images]
dangling_after = "0s"
unused_after = "0s"

[build_cache]
unused_after = "0s"

[networks]
unused_after = "0s"
"""

NOT_INSTALLABLE = {
    "docker-gc (Spotify)": (
        "a shell script published only on GitHub (spotify/docker-gc) and as an image on "
        "Docker Hub; neither is reachable here, and it is in neither Debian nor PyPI"
    ),
    "docuum": (
        "a Rust program published on crates.io and as GitHub release binaries; neither "
        "is reachable here, and it is in neither Debian nor PyPI"
    ),
}


@dataclass(frozen=True)
class ToolRun:
    """One run of a tool: wall time of its commands, its output, and what it said."""

    seconds: float
    stdout: str
    report: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Tool:
    """A tool as the benchmark runs it: one or more commands, timed together."""

    name: str
    settings: str  # the command line, as shown in the results
    commands: Callable[[str], Sequence[Sequence[str]]]  # engine address -> argv's
    parse: Callable[[str], dict[str, Any]] = lambda _: {}
    ok_codes: frozenset[int] = frozenset({0})

    def run(self, engine: Engine, host: str) -> ToolRun:
        """Run against `host` (the engine's socket or a proxy in front of it)."""
        env = engine.environ(host=host)
        out: list[str] = []
        start = time.perf_counter()
        for argv in self.commands(host):
            proc = subprocess.run(list(argv), check=False, env=env, capture_output=True, text=True)
            if proc.returncode not in self.ok_codes:
                raise RuntimeError(
                    f"{self.name}: {argv[0]} exited {proc.returncode}: {proc.stderr[-1500:]}"
                )
            out.append(proc.stdout)
        seconds = time.perf_counter() - start
        stdout = "".join(out)
        return ToolRun(seconds, stdout, self.parse(stdout))


def docker_tool(name: str, *commands: Sequence[str]) -> Tool:
    argvs = [[DOCKER, *c] for c in commands]
    settings = " && ".join("docker " + " ".join(c) for c in commands)
    return Tool(name, settings, lambda _: argvs)


DOCKER_PRUNE = docker_tool("docker system prune", ["system", "prune", "-f", "--volumes"])
DOCKER_PRUNE_ALL = docker_tool(
    "docker system prune -a", ["system", "prune", "-a", "-f", "--volumes"]
)
#: The engine's own prune for the removal scenario (what the old prune_400 measured).
DOCKER_CONTAINER_VOLUME_PRUNE = docker_tool(
    "docker prune", ["container", "prune", "-f"], ["volume", "prune", "-f"]
)


def custodian_tool(venv: Path) -> Tool:
    dcgc = str(venv / "bin" / "dcgc")
    args = ["--max-container-age", "0s", "--max-image-age", "0s", "--dangling-volumes"]
    return Tool("dcgc", "dcgc " + " ".join(args), lambda _: [[dcgc, *args]])


def bilge_name(concurrency: int | None = None) -> str:
    """The tool's name in the results: the concurrency scenario runs one per level."""
    return f"bilge apply -j{concurrency}" if concurrency else "bilge apply"


def bilge_tool(workdir: Path, concurrency: int | None = None) -> Tool:
    """`bilge apply` with the zero-grace policy; a fresh state dir for every run."""
    config = workdir / "bilge.toml"
    state = workdir / "bilge-state"
    config.write_text(BILGE_POLICY)
    jobs = ["--concurrency", str(concurrency)] if concurrency else []

    def commands(host: str) -> list[list[str]]:
        shutil.rmtree(state, ignore_errors=True)
        base = [sys.executable, "-m", "bilge", "-H", host, "-c", str(config)]
        return [[*base, "--state-dir", str(state), "apply", "--yes", "--json", *jobs]]

    name = bilge_name(concurrency)
    settings = f"bilge apply --yes --json{' ' + ' '.join(jobs) if jobs else ''} (policy: 0s graces)"
    # Exit code 3: some removals were skipped or failed; the run still counts.
    return Tool(name, settings, commands, parse_bilge, frozenset({0, 3}))


def parse_bilge(stdout: str) -> dict[str, Any]:
    doc = json.loads(stdout)
    keys = ("predicted_bytes", "removed_bytes_predicted", "freed_bytes_measured", "counts")
    return {k: doc[k] for k in keys}


def install_custodian(venv: Path) -> str:
    """docker-custodian in `venv` (created with the system python3); its version.

    Raises RuntimeError saying why when it cannot be installed or does not run.
    """
    dcgc = venv / "bin" / "dcgc"
    if not dcgc.exists():
        python = shutil.which("python3", path="/usr/bin:/bin") or "python3"
        subprocess.run([python, "-m", "venv", str(venv)], check=True, capture_output=True)
        pip = [str(venv / "bin" / "pip"), "install", "-q", "--disable-pip-version-check"]
        proc = subprocess.run(
            [*pip, *CUSTODIAN_REQUIREMENTS], check=False, capture_output=True, text=True
        )
        if proc.returncode != 0:
            raise RuntimeError(f"pip install docker-custodian failed: {proc.stderr[-800:]}")
    proc = subprocess.run([str(dcgc), "--help"], check=False, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"dcgc does not run: {proc.stderr[-800:]}")
    return versions(venv, ("docker-custodian", "docker"))


def versions(venv: Path, names: Sequence[str]) -> str:
    """'NAME VERSION ...' of the distributions `names` installed in `venv`."""
    code = (
        "import importlib.metadata as m, sys\n"
        "print(' '.join(n + ' ' + m.version(n) for n in sys.argv[1:]))"
    )
    argv = [str(venv / "bin" / "python"), "-c", code, *names]
    proc = subprocess.run(argv, check=False, capture_output=True, text=True)
    return proc.stdout.strip()


def custodian_venv() -> Path:
    """Where `make bench` keeps docker-custodian's virtual environment."""
    return ROOT / ".sandbox" / "bench-venvs" / "custodian"
