"""bilge against its peers, side by side, on the same private engine: `make bench`.

    .venv/bin/python -m benchmarks.run [--size tiny|full] [--scenarios crowded,planning,...]

Scenarios (see docs/benchmarks.md): crowded (1), planning (2), prediction (3), scaling
(4) and concurrency (5). Each engine scenario is built once per invocation on a private
engine whose data-root is a loop-mounted ext4 file, and every run of every tool gets a
fresh engine on an identical copy of that file. Results go to benchmarks/results/NAME.json
(the machine description included), the chart to benchmarks/results/benchmarks.svg, and
the tables to stdout. `--size tiny` runs everything once at a tiny size: for the test
suite, not for figures.
"""

from __future__ import annotations

import argparse
import compileall
import dataclasses
import os
import sys
import time
from pathlib import Path
from typing import Any

from benchmarks import chart, measure, peers, report, sandbox, scaling
from benchmarks.peers import DOCKER_CONTAINER_VOLUME_PRUNE, DOCKER_PRUNE, DOCKER_PRUNE_ALL, Tool
from benchmarks.sandbox import ROOT
from benchmarks.scenarios import SIZES

ALL = ("crowded", "planning", "prediction", "scaling", "concurrency")
ALIASES = {str(n): name for n, name in enumerate(ALL, 1)}


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    p.add_argument("--size", choices=sorted(SIZES), default="full")
    p.add_argument(
        "--scenarios", default=",".join(ALL),
        help="comma-separated names or numbers (1-5); default: all",
    )  # fmt: skip
    p.add_argument("--rounds", type=int, help="rounds per tool (default: 3 full, 1 tiny)")
    p.add_argument("--workdir", type=Path, default=ROOT / ".sandbox" / "benchmarks")
    p.add_argument("--out-dir", type=Path, default=ROOT / "benchmarks" / "results")
    p.add_argument("--custodian-venv", type=Path, default=peers.custodian_venv())
    args = p.parse_args(argv)
    args.scenarios = [ALIASES.get(s.strip(), s.strip()) for s in args.scenarios.split(",")]
    unknown = set(args.scenarios) - set(ALL)
    if unknown:
        p.error(f"unknown scenarios: {', '.join(sorted(unknown))}")
    return args


class Bench:
    """One invocation: the workspace, the tools, and what was found out about peers."""

    def __init__(self, args: argparse.Namespace) -> None:
        size = SIZES[args.size]
        if args.rounds:
            size = dataclasses.replace(size, rounds=args.rounds)
        self.args = args
        self.ws = measure.Workspace(args.workdir, size, log)
        self.peers: dict[str, Any] = {"not installable here": peers.NOT_INSTALLABLE}
        self.engine: dict[str, str] = {}
        self.custodian: Tool | None = None

    def setup(self) -> None:
        sandbox.install()
        compile_bilge()
        sandbox.stop(self.ws.engine_dir)  # left by an interrupted run
        self.ws.dir.mkdir(parents=True, exist_ok=True)
        try:
            self.peers["docker-custodian"] = peers.install_custodian(self.args.custodian_venv)
            self.custodian = peers.custodian_tool(self.args.custodian_venv)
        except (RuntimeError, OSError) as exc:
            self.peers["docker-custodian"] = f"cannot run: {exc}"
            log(f"docker-custodian left out: {exc}")

    def crowded_tools(self) -> list[Tool]:
        tools = [DOCKER_PRUNE, DOCKER_PRUNE_ALL]
        tools += [self.custodian] if self.custodian else []
        return [*tools, peers.bilge_tool(self.ws.dir)]

    def run(self, name: str) -> dict[str, Any]:
        ws = self.ws
        if name == "crowded":
            return measure.compare(ws, "crowded", self.crowded_tools(), cache=True)
        if name == "planning":
            return measure.planning(ws, self.bilge_plan_argv)
        if name == "prediction":
            return measure.prediction(ws, peers.bilge_tool(ws.dir))
        if name == "scaling":
            return scaling.run(ws.size.scaling, ws.size.rounds, log)
        tools = [DOCKER_CONTAINER_VOLUME_PRUNE]
        tools += [peers.bilge_tool(ws.dir, n) for n in ws.size.concurrency]
        return measure.compare(ws, "removal", tools, cache=False)

    def bilge_plan_argv(self, host: str) -> list[str]:
        config, state = self.ws.dir / "bilge.toml", self.ws.dir / "bilge-plan-state"
        config.write_text(peers.BILGE_POLICY)
        base = [sys.executable, "-m", "bilge", "-H", host, "-c", str(config)]
        return [*base, "--state-dir", str(state), "plan", "--json"]

    def engine_version(self) -> dict[str, str]:
        if not self.engine and self.ws.states:
            state = next(iter(self.ws.states.values()))
            with sandbox.running(self.ws.engine_dir, state) as engine:
                fmt = "{{.Server.Version}} {{.Server.APIVersion}}"
                version, api = engine.docker("version", "--format", fmt).stdout.split()
                driver = engine.docker("info", "--format", "{{.Driver}}").stdout.strip()
            self.engine = {"dockerd": version, "api": api, "storage_driver": driver}
        return self.engine


def compile_bilge() -> None:
    """Time bilge as users install it: pip writes a package's bytecode at install time,
    while a checkout run under PYTHONDONTWRITEBYTECODE would compile every module at
    every start (the docker CLI, for its part, is a compiled binary)."""
    import bilge

    compileall.compile_dir(str(Path(bilge.__file__).parent), quiet=1)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    bench = Bench(args)
    bench.setup()
    started = time.perf_counter()
    try:
        for name in args.scenarios:
            log(f"scenario {name} ({args.size})")
            load_before = list(os.getloadavg())
            results = bench.run(name)
            info = {"engine": bench.engine_version(), "peers": bench.peers, "load": load_before}
            path = report.write(args.out_dir, name, args.size, results, info)
            log(f"wrote {path}")
    finally:
        sandbox.stop(bench.ws.engine_dir)
    docs = report.load(args.out_dir)
    svg = chart.render(docs, args.out_dir / "benchmarks.svg")
    log(f"wrote {svg}; {time.perf_counter() - started:.0f}s in all")
    print(report.markdown(docs))
    return 0


if __name__ == "__main__":
    sys.exit(main())
