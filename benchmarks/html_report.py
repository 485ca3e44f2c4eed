"""What the HTML report costs beside `bilge plan`, on a generated crowded host.

    .venv/bin/python -m benchmarks.html_report [--objects 10000] [--rounds 5] [--engine]

A snapshot of N objects (containers with logs and volumes, images sharing
layers, networks, build cache, orphans; a tenth labelled) stands for a
crowded host. Timed, in one process and without an engine: the plan alone
(what `bilge plan` computes once the engine is read), then the plan and the
report built and rendered from it (what `bilge report --html` adds), and the
page's size. Reading the engine, which both commands do alike, is left out.

`--engine` times the whole commands instead, `bilge plan --json` against
`bilge report --html FILE`, on a private engine (scripts/sandbox-engine, its
data-root on a loop-mounted ext4 file) crowded like benchmark 1 at a middle
size, warm page cache, the two commands taking turns. docs/benchmarks.md has
the figures. The unit tests use `crowded_snapshot` for the size limit.
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

from benchmarks import sandbox, scenarios
from benchmarks.measure import timed
from bilge.config.policy import DEFAULT_POLICY
from bilge.model import (
    BuildCacheRecord,
    Container,
    EngineInfo,
    Filesystem,
    Image,
    Mount,
    Network,
    OrphanDir,
    Snapshot,
    Volume,
    VolumeContents,
)
from bilge.planner.core import plan
from bilge.planner.doctor import diagnose
from bilge.report.html import render
from bilge.report.html.build import HostData, section

NOW = datetime(2026, 1, 1, tzinfo=UTC)
ENGINE = EngineInfo("unix:///run/bench/docker.sock", "1.41", "20.10.24", "/var/lib/docker",
                    "overlay2", True)  # fmt: skip
KINDS_SHARE = {"containers": 0.45, "volumes": 0.3, "images": 0.1, "networks": 0.05,
               "build_cache": 0.07, "orphans": 0.03}  # fmt: skip


def _labels(n: int) -> dict[str, str]:
    if n % 10:
        return {}
    return {"com.docker.compose.project": f"shop-{n % 40}", "com.example.team": f"team-{n % 7}"}


def crowded_snapshot(objects: int = 10_000) -> Snapshot:
    """A snapshot of about `objects` objects, deterministic, with every kind."""
    count = {kind: max(1, int(objects * share)) for kind, share in KINDS_SHARE.items()}
    layers = {f"sha256:l{n}": 1_000_000 + n * 997 for n in range(count["images"] + 10)}
    images = tuple(
        Image(f"sha256:i{n}", (f"app{n % 60}:{n}",) if n % 5 else (), (),
              NOW - timedelta(days=n % 30), _labels(n), (f"sha256:l{n % 10}", f"sha256:l{n + 10}"))
        for n in range(count["images"])
    )  # fmt: skip
    volumes = tuple(
        Volume(f"vol-{n:05d}", "local", n % 3 == 0, NOW - timedelta(days=n % 50), "",
               VolumeContents(True, 50_000 + n * 131, 10, ("postgres: PG_VERSION",) if n % 97 == 0
                              else ()), _labels(n))
        for n in range(count["volumes"])
    )  # fmt: skip
    containers = tuple(_container(n, images, volumes) for n in range(count["containers"]))
    networks = tuple(
        Network(f"n{n}", f"net-{n}", "bridge", "local", NOW - timedelta(days=n % 9), _labels(n))
        for n in range(count["networks"])
    )
    cache = tuple(
        BuildCacheRecord(f"c{n}", "regular", f"RUN step {n}", False, False, 20_000 + n,
                         NOW - timedelta(days=20), NOW - timedelta(days=n % 20))
        for n in range(count["build_cache"])
    )  # fmt: skip
    orphans = tuple(
        OrphanDir(f"{n:064x}", 30_000 + n, NOW - timedelta(days=3)) for n in range(count["orphans"])
    )
    fs = Filesystem("/var/lib/docker", 500 * 10**9, 120 * 10**9, 30_000_000, 25_000_000)
    return Snapshot(NOW, ENGINE, containers, images, layers, volumes, cache, networks, fs, orphans)


def _container(n: int, images: tuple[Image, ...], volumes: tuple[Volume, ...]) -> Container:
    state = "running" if n % 4 == 0 else "exited"
    finished = None if state == "running" else NOW - timedelta(days=n % 20)
    volume = volumes[n % len(volumes)]
    return Container(
        f"{n:064x}", f"job-{n:05d}", images[n % len(images)].id, "app", state,
        NOW - timedelta(days=n % 20 + 1), finished,
        _labels(n), (Mount("volume", volume.name, "", "/data"),), (), 10_000 + n * 17,
        4_000 + n, log_driver="json-file", log_file_bytes=3_000 + n,
    )  # fmt: skip


def page(snap: Snapshot) -> str:
    """The report of one host made from `snap`, as `bilge report --html` makes it."""
    the_plan = plan(snap, DEFAULT_POLICY, NOW)
    findings = diagnose(snap, the_plan, DEFAULT_POLICY, (), NOW)
    data = HostData(snap, the_plan, findings, (), (), DEFAULT_POLICY.watch)
    return render([section("host-1", snap.engine.host, data)], NOW)


def _best(rounds: int, work: Callable[[], object]) -> float:
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        work()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def on_engine(rounds: int) -> None:
    """The two whole commands on a crowded private engine (see the module docstring)."""
    size = dataclasses.replace(
        scenarios.SIZES["tiny"], containers=300, orphan_volumes=100, named_volumes=20,
        db_volumes=4, repositories=6, cache_builds=3, disk="2G",
    )  # fmt: skip
    directory = sandbox.ROOT / ".sandbox" / "html-report"
    engine = sandbox.start(directory, disk=size.disk)
    try:
        scenarios.build_crowded(engine, size)
        with tempfile.TemporaryDirectory(prefix="bilge-bench-") as tmp:
            base = [sys.executable, "-m", "bilge", "-H", engine.host, "--state-dir", tmp]
            page_file = Path(tmp) / "report.html"
            commands = {
                "bilge plan --json": [*base, "plan", "--json"],
                "bilge report --html": [*base, "report", "--html", str(page_file)],
            }
            times: dict[str, list[float]] = {name: [] for name in commands}
            for argv in commands.values():  # once each, untimed: the page cache
                timed(argv, engine.environ())
            for rnd in range(rounds):
                for name in list(commands)[rnd % 2 :] + list(commands)[: rnd % 2]:
                    times[name].append(timed(commands[name], engine.environ()))
            pages = page_file.stat().st_size
    finally:
        sandbox.stop(directory)
    plan_s, report_s = (statistics.median(times[name]) for name in commands)
    print(f"engine: {size.containers} exited containers with volumes, crowded; page {pages:,} B")
    print(f"bilge plan --json: {plan_s:.2f} s; bilge report --html: {report_s:.2f} s "
          f"({report_s / plan_s:.2f}x; medians of {rounds})")  # fmt: skip


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    p.add_argument("--objects", type=int, default=10_000)
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--engine", action="store_true", help="the whole commands, on a real engine")
    args = p.parse_args(argv)
    if args.engine:
        on_engine(args.rounds)
        return
    snap = crowded_snapshot(args.objects)
    planned = _best(args.rounds, lambda: plan(snap, DEFAULT_POLICY, NOW))
    reported = _best(args.rounds, lambda: page(snap))
    size = len(page(snap).encode())
    print(f"objects: {args.objects}; page: {size:,} bytes ({size / 2**20:.2f} MiB)")
    print(f"plan alone: {planned * 1000:.0f} ms (median of {args.rounds})")
    print(f"plan + report: {reported * 1000:.0f} ms, {reported / planned:.2f}x the plan")


if __name__ == "__main__":
    main()
