"""A fleet against its slowest host: `bilge plan` and `bilge apply` on six private
engines at once, each with 200 exited containers and their anonymous volumes.

Figures, in one run on the same engines: each host alone (the slowest is the
yardstick), the fleet in parallel (the default, 8 at a time), the fleet one host
after the other (`--parallel 1`, what `bilge -H a -H b ...` did before fleets),
and `docker -H X system prune -f --volumes` over the hosts in a shell loop. The
removal is destructive, so each apply figure gets freshly populated engines.
On a 2-core machine the six engines compete for the CPUs with each other and
with bilge: the parallel figure is what such a machine gives, not what six
separate hosts would.

    python -m benchmarks.fleet [--hosts 6] [--containers 200] [--out FILE]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from benchmarks.sandbox import DOCKER, Engine, start, stop
from benchmarks.scenarios import exited_with_volume

RESULTS = Path(__file__).resolve().parent / "results" / "fleet.json"
SETTLE_SECONDS = 3.0
POLICY = '[containers]\nexited_after = "0s"\n[volumes]\nanonymous_after = "0s"\n'


def populate(engines: Sequence[Engine], containers: int) -> None:
    """Every engine gets `containers` exited containers, each with a 4 kB volume."""

    def one(engine: Engine) -> None:
        with engine.api() as api:
            exited_with_volume(api, containers, 4096, {}, keep_container=True)

    with ThreadPoolExecutor(len(engines)) as pool:
        list(pool.map(one, engines))


def bilge(work: Path, hosts: Sequence[str], *args: str) -> float:
    """Seconds one bilge command takes on `hosts` (a fleet when several)."""
    argv = [sys.executable, "-m", "bilge", "-c", str(work / "bilge.toml"), "--state-dir",
            str(work / "state")] + [a for h in hosts for a in ("-H", h)] + list(args)  # fmt: skip
    return _timed(argv)


def prune_loop(engines: Sequence[Engine]) -> float:
    """`docker -H X system prune -f --volumes` for each host, one after the other."""
    loop = "; ".join(f"{DOCKER} -H {e.host} system prune -f --volumes >/dev/null" for e in engines)
    return _timed(["sh", "-c", loop])


def _timed(argv: Sequence[str]) -> float:
    started = time.perf_counter()
    proc = subprocess.run(argv, capture_output=True, text=True, check=False)
    took = time.perf_counter() - started
    if proc.returncode != 0:
        raise RuntimeError(f"{argv[:6]} failed ({proc.returncode}): {proc.stderr[-800:]}")
    return took


def measure(engines: Sequence[Engine], work: Path, containers: int) -> dict[str, Any]:
    """Plan (it changes nothing: the same garbage for every figure), then apply,
    each apply figure on freshly populated engines."""
    hosts = [e.host for e in engines]
    settle(engines, containers)
    plan_alone = [bilge(work, [h], "plan", "--json") for h in hosts]
    plan_parallel = bilge(work, hosts, "plan", "--json")
    plan_serial = bilge(work, hosts, "plan", "--json", "--parallel", "1")
    apply_alone = [bilge(work, [h], "apply", "--yes", "--json") for h in hosts]
    applied: dict[str, float] = {}
    for mode, run in _apply_modes(work, hosts, engines).items():
        settle(engines, containers)
        applied[mode] = run()
    return {
        "plan": _figures(plan_alone, plan_parallel, plan_serial),
        "apply": _figures(apply_alone, applied["parallel"], applied["serial"])
        | {"prune_loop_s": round(applied["prune"], 2),
           "prune_loop_over_parallel": round(applied["prune"] / applied["parallel"], 2)},
    }  # fmt: skip


def settle(engines: Sequence[Engine], containers: int) -> None:
    """Populate, then let the engines finish with the containers' exits (their
    containerd shims) and the disk write back, so no figure pays for that."""
    populate(engines, containers)
    subprocess.run(["sync"], check=False)
    time.sleep(SETTLE_SECONDS)


def _apply_modes(
    work: Path, hosts: Sequence[str], engines: Sequence[Engine]
) -> dict[str, Callable[[], float]]:
    return {
        "parallel": lambda: bilge(work, hosts, "apply", "--yes", "--json"),
        "serial": lambda: bilge(work, hosts, "apply", "--yes", "--json", "--parallel", "1"),
        "prune": lambda: prune_loop(engines),
    }


def _figures(alone: Sequence[float], parallel: float, serial: float) -> dict[str, Any]:
    slowest = max(alone)
    return {
        "alone_s": [round(t, 2) for t in alone],
        "slowest_alone_s": round(slowest, 2),
        "fleet_parallel_s": round(parallel, 2),
        "fleet_serial_s": round(serial, 2),
        "parallel_over_slowest": round(parallel / slowest, 2),
        "serial_over_slowest": round(serial / slowest, 2),
    }


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    p.add_argument("--hosts", type=int, default=6)
    p.add_argument("--containers", type=int, default=200)
    p.add_argument("--out", type=Path, default=RESULTS)
    args = p.parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="bilge-bench-fleet-"))
    (work / "bilge.toml").write_text(POLICY)
    dirs = [work / f"engine-{n}" for n in range(args.hosts)]
    try:
        with ThreadPoolExecutor(args.hosts) as pool:
            engines = list(pool.map(lambda d: start(d, disk="1G"), dirs))
        result = {"hosts": args.hosts, "containers_per_host": args.containers}
        result |= measure(engines, work, args.containers)
    finally:
        for d in dirs:
            stop(d)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
