"""The Podman scenario: removal on a Podman host, bilge against Podman's own prunes.

    .venv/bin/python -m benchmarks.podman [--containers 400] [--rounds 3]

A private Podman service (scripts/sandbox-podman) on an ext4 disk of its own gets
N exited containers, each with an anonymous volume holding a little output, and the
traps of the crowded scenario: an exited postgres-like container whose anonymous
volume holds PG_VERSION, a named volume with CouchDB files, and a named volume with
plain files, none of them used by any container. The disk is saved once; every run
of every tool, round by round and in turn, starts from an identical copy of it.

Tools:
- bilge apply --yes (grace periods of zero; named volumes kept, as by default);
- podman container prune -f, then podman volume rm of the anonymous volumes those
  containers had (not `podman volume prune`: before Podman 6 it takes named volumes);
- podman system prune -f (which leaves every volume behind).

Each run is timed (wall clock of its commands) and then checked: the bytes the
filesystem got back (statvfs), and what was lost: the database volumes and the named
volume. Results go to benchmarks/results/podman.json and a table to stdout, with each
peer's time as a ratio of bilge's.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "scripts" / "sandbox-engine"
BASE = "bilge-sandbox/busybox:latest"
POLICY = """
[containers]
exited_after = "0s"
created_after = "0s"
[volumes]
anonymous_after = "0s"
[images]
unused_after = "3650d"
dangling_after = "3650d"
"""
TRAPS = ("pg-old", "couch-data", "keep-me")


class Podman:
    """One private Podman service in `dir`, reached with the remote podman client."""

    def __init__(self, directory: Path) -> None:
        self.dir = directory
        self.host = f"unix://{directory}/podman.sock"

    def __call__(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        argv = ["podman", "--remote", "--url", self.host, *args]
        proc = subprocess.run(argv, capture_output=True, text=True, check=False)
        if check and proc.returncode != 0:
            raise RuntimeError(f"{' '.join(argv)}: {proc.stderr[-800:]}")
        return proc

    def start(self, *how: str) -> None:
        subprocess.run(
            [str(SCRIPT), "start", str(self.dir), "--podman", *how],
            check=True,
            stdout=subprocess.DEVNULL,
        )

    def stop(self, keep: Path | None = None) -> None:
        extra = ["--keep-disk", str(keep)] if keep else []
        subprocess.run([str(SCRIPT), "stop", str(self.dir), *extra], check=True)

    def data_root(self) -> str:
        return (self.dir / "data-root").read_text().strip()

    def free(self) -> int:
        st = os.statvfs(self.data_root())
        return st.f_bavail * st.f_frsize

    def anonymous_volumes(self) -> list[str]:
        listed = json.loads(self("volume", "ls", "--format", "json").stdout or "[]")
        return [v["Name"] for v in listed if v.get("Anonymous")]

    def has_volume(self, name: str) -> bool:
        return self("volume", "exists", name, check=False).returncode == 0


def build(pm: Podman, containers: int) -> None:
    """The scenario: N exited jobs with anonymous volumes, and the three traps."""
    run = ["run", "--network", "none", "-v", "/out", BASE, "sh", "-c"]
    job = "dd if=/dev/urandom of=/out/result bs=64k count=1 2>/dev/null"
    with ThreadPoolExecutor(max_workers=4) as pool:
        list(
            pool.map(lambda n: pm(*run[:1], "--name", f"job-{n}", *run[1:], job), range(containers))
        )
    pg = "echo 15 > /var/lib/postgresql/data/PG_VERSION"
    pm(
        "run",
        "--name",
        "pg-old",
        "--network",
        "none",
        "-v",
        "/var/lib/postgresql/data",
        BASE,
        "sh",
        "-c",
        pg,
    )
    for name, script in (("couch-data", "echo db > /v/_dbs.couch"), ("keep-me", "echo x > /v/f")):
        pm("volume", "create", name)
        pm("run", "--rm", "--network", "none", "-v", f"{name}:/v", BASE, "sh", "-c", script)


def pg_volume(pm: Podman) -> str:
    fmt = "{{range .Mounts}}{{.Name}}{{end}}"
    return pm("inspect", "-f", fmt, "pg-old").stdout.strip()


def tools(pm: Podman, config: Path, state: Path) -> dict[str, list[list[str]]]:
    bilge = str(Path(sys.executable).with_name("bilge"))
    remote = ["podman", "--remote", "--url", pm.host]
    return {
        "bilge apply": [
            [bilge, "-H", pm.host, "-c", str(config), "--state-dir", str(state), "apply", "--yes"]
        ],
        "podman container prune + volume rm": [[*remote, "container", "prune", "-f"]],
        "podman system prune": [[*remote, "system", "prune", "-f"]],
    }


def one_run(pm: Podman, disk: Path, name: str, argvs: list[list[str]]) -> dict[str, Any]:
    """A fresh copy of the scenario, one tool's commands timed, then what it did."""
    pm.start("--disk-from", str(disk))
    # The copy of the disk is still being written back: let it finish before the
    # clock starts, or whichever tool runs first pays for it.
    os.sync()
    try:
        pg = pg_volume(pm)
        anonymous = [v for v in pm.anonymous_volumes() if v != pg] + [pg]
        before = pm.free()
        start = time.perf_counter()
        for argv in argvs:
            subprocess.run(argv, check=True, capture_output=True)
        if name.startswith("podman container prune"):
            # Those containers' anonymous volumes, by name: the pg one among them, as a
            # script working from the volume list cannot tell it holds a database.
            subprocess.run(
                ["podman", "--remote", "--url", pm.host, "volume", "rm", *anonymous],
                check=False,
                capture_output=True,
            )
        seconds = time.perf_counter() - start
        left = set(pm.anonymous_volumes())
        return {
            "seconds": round(seconds, 3),
            "freed_bytes": pm.free() - before,
            "anonymous_volumes_left": len(left - {pg}),
            "lost": [
                t
                for t, v in (
                    ("postgres data (anonymous volume)", pg),
                    ("couchdb data (named volume)", "couch-data"),
                    ("named volume keep-me", "keep-me"),
                )
                if not pm.has_volume(v)
            ],
        }
    finally:
        pm.stop()


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    p.add_argument("--containers", type=int, default=400)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--workdir", type=Path, default=ROOT / ".sandbox" / "bench-podman")
    p.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "podman.json")
    args = p.parse_args(argv)
    args.workdir.mkdir(parents=True, exist_ok=True)
    pm, disk = Podman(args.workdir / "engine"), args.workdir / "scenario.img"
    config, state = args.workdir / "bilge.toml", args.workdir / "state"
    config.write_text(POLICY)
    pm.start("--disk", "2G")
    try:
        build(pm, args.containers)
    finally:
        pm.stop(keep=disk)
    runs: dict[str, list[dict[str, Any]]] = {}
    named = tools(pm, config, state)
    for r in range(args.rounds):
        order = list(named)[r % len(named) :] + list(named)[: r % len(named)]
        for name in order:
            subprocess.run(["rm", "-rf", str(state)], check=True)
            runs.setdefault(name, []).append(one_run(pm, disk, name, named[name]))
            print(f"round {r + 1} {name}: {runs[name][-1]}", file=sys.stderr, flush=True)
    return report(runs, args)


def report(runs: dict[str, list[dict[str, Any]]], args: argparse.Namespace) -> int:
    version = subprocess.run(
        ["podman", "--version"], check=False, capture_output=True, text=True
    ).stdout
    bilge_s = statistics.median(r["seconds"] for r in runs["bilge apply"])
    doc: dict[str, Any] = {
        "scenario": "podman",
        "containers": args.containers,
        "rounds": args.rounds,
        "podman": version.strip(),
        "tools": {},
    }
    print(f"{'tool':38} {'median s':>9} {'ratio':>6} {'freed MB':>9} {'vols left':>9}  lost")
    for name, results in runs.items():
        median = statistics.median(r["seconds"] for r in results)
        last = results[-1]
        doc["tools"][name] = {
            "median_seconds": median,
            "ratio_to_bilge": median / bilge_s,
            "runs": results,
        }
        lost = ", ".join(last["lost"]) or "nothing"
        print(
            f"{name:38} {median:9.2f} {median / bilge_s:5.2f}x "
            f"{last['freed_bytes'] / 1e6:9.1f} {last['anonymous_volumes_left']:9d}  {lost}"
        )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(doc, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
