"""bilge apply against Docker's own prune, on the same host state, in one run.

Scenario (from the incident): N exited containers, each with an anonymous
volume holding a small file. The scenario is built once on a private engine
whose data-root is a loop-mounted ext4 file; that file is saved, and every
run of every tool starts a fresh engine on an identical copy of it (the
data-root's directories are read once first, so every tool meets the same
warm cache). Then one tool is timed removing it:

  * docker: `docker container prune -f` then `docker volume prune -f`
  * bilge:  `bilge apply --yes` (collect, plan and apply), at several concurrencies

Results: the median of the rounds per tool, and ratios against Docker's prune,
printed and written to benchmarks/results/prune_400.json.

    .venv/bin/python benchmarks/prune_400.py [--containers 400] [--rounds 3]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import docker

ROOT = Path(__file__).resolve().parents[1]
SANDBOX = ROOT / ".sandbox" / "bench"
BASE = "bilge-sandbox/busybox:latest"
DOCKER = "/usr/bin/docker"
POLICY = """
[containers]
exited_after = "0s"
[volumes]
anonymous_after = "0s"
"""


def sandbox(*args: Any, check: bool = True) -> None:
    subprocess.run([ROOT / "scripts/sandbox-engine", *args], check=check, capture_output=True)


def build_state(count: int, image: Path) -> None:
    """Build the scenario once and keep the engine's disk as `image`."""
    sandbox("stop", SANDBOX, check=False)
    sandbox("start", SANDBOX, "--disk", "2G")
    try:
        make_scenario(f"unix://{SANDBOX}/docker.sock", count)
    except BaseException:
        sandbox("stop", SANDBOX, check=False)
        raise
    sandbox("stop", SANDBOX, "--keep-disk", image)


def start_engine(image: Path) -> str:
    """A fresh engine on a copy of the saved state, its data-root read once."""
    sandbox("stop", SANDBOX, check=False)
    sandbox("start", SANDBOX, "--disk-from", image)
    subprocess.run(["du", "-s", SANDBOX / "mnt"], check=True, capture_output=True)
    return f"unix://{SANDBOX}/docker.sock"


def make_scenario(host: str, count: int) -> None:
    """`count` exited containers, each with an anonymous volume holding a file."""
    api = docker.APIClient(base_url=host, version="auto")

    def one(_: int) -> None:
        c = api.create_container(
            BASE,
            ["sh", "-c", "echo result > /data/out"],
            volumes=["/data"],
            host_config=api.create_host_config(network_mode="none"),
        )
        api.start(c["Id"])
        api.wait(c["Id"])

    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(one, range(count)))


def remaining(host: str) -> tuple[int, int]:
    api = docker.APIClient(base_url=host, version="auto")
    return len(api.containers(all=True)), len(api.volumes().get("Volumes") or [])


def timed(argv: list[Any], env: dict[str, str]) -> float:
    start = time.perf_counter()
    subprocess.run(argv, check=True, env=env, capture_output=True)
    return time.perf_counter() - start


def run_docker_prune(host: str) -> float:
    env = {**os.environ, "DOCKER_HOST": host}
    return timed([DOCKER, "container", "prune", "-f"], env) + timed(
        [DOCKER, "volume", "prune", "-f"], env
    )


def run_bilge(host: str, concurrency: int, state: Path, config: Path) -> float:
    argv = [sys.executable, "-m", "bilge", "-H", host, "-c", config, "--state-dir", state]
    argv += ["apply", "--yes", "--json", "--concurrency", str(concurrency)]
    return timed(argv, dict(os.environ))


def main() -> None:
    args = parse_args()
    SANDBOX.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=SANDBOX.parent) as tmp:
        state, config = Path(tmp) / "state", Path(tmp) / "bilge.toml"
        image = Path(tmp) / "scenario.img"
        config.write_text(POLICY)
        tools: dict[str, Any] = {"docker prune": run_docker_prune}
        for n in args.concurrency:
            tools[f"bilge apply -j{n}"] = lambda h, n=n: run_bilge(h, n, state, config)
        times: dict[str, list[float]] = {name: [] for name in tools}
        build_state(args.containers, image)
        try:
            for rnd in range(args.rounds):
                for name, tool in tools.items():
                    host = start_engine(image)
                    shutil.rmtree(state, ignore_errors=True)
                    times[name].append(tool(host))
                    left = remaining(host)
                    assert left == (0, 0), f"{name} left {left}"
                    print(f"round {rnd + 1}: {name}: {times[name][-1]:.2f}s", file=sys.stderr)
        finally:
            sandbox("stop", SANDBOX, check=False)
    report(args, times)


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--containers", type=int, default=400)
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--concurrency", type=int, nargs="+", default=[1, 2, 4, 8, 16])
    p.add_argument("--out", type=Path, default=ROOT / "benchmarks/results/prune_400.json")
    return p.parse_args()


def report(args: argparse.Namespace, times: dict[str, list[float]]) -> None:
    base = statistics.median(times["docker prune"])
    rows = {
        name: {"median_s": round(statistics.median(t), 3), "runs_s": [round(x, 3) for x in t],
               "speedup_vs_docker_prune": round(base / statistics.median(t), 2)}
        for name, t in times.items()
    }  # fmt: skip
    doc = {
        "scenario": f"{args.containers} exited containers, each with an anonymous volume",
        "rounds": args.rounds,
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "kernel": platform.release(),
        },
        "results": rows,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(doc, indent=2) + "\n")
    print(f"{'tool':<20} {'median':>8}  vs docker prune")
    for name, row in rows.items():
        print(f"{name:<20} {row['median_s']:>7.2f}s  {row['speedup_vs_docker_prune']:.2f}x")


if __name__ == "__main__":
    main()
