"""Scenario 4: the planner alone on synthetic snapshots, no engine.

A snapshot of N objects has the crowded host's mix: per 100 objects, 55 containers
(45 exited, 5 created, 5 running), 30 volumes (15 anonymous volumes of those
containers, 8 unreferenced anonymous ones, 5 named, 2 holding a database's files),
10 images (4 to a repository, one dangling in each, three layers each of which the
first is shared by all), 4 build-cache records and a network; ages spread over 30 days,
planned under bilge's default policy.

Each size runs in a child process of its own (`python -m benchmarks.scaling --objects
N`), so that its peak memory is its own: it builds the snapshot, times `plan()`
`--rounds` times, and reports the planner's own peak
memory (the growth of the peak resident memory during the first plan, the snapshot
already built), and prints one JSON line.
"""

from __future__ import annotations

import argparse
import gc
import itertools
import json
import math
import resource
import statistics
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from bilge.config.policy import DEFAULT_POLICY
from bilge.model import (
    BuildCacheRecord,
    Container,
    EngineInfo,
    Image,
    Mount,
    Network,
    Snapshot,
    Volume,
    VolumeContents,
)
from bilge.planner.core import plan

NOW = datetime(2026, 1, 1, tzinfo=UTC)
_ENGINE = EngineInfo("unix:///synthetic.sock", "1.41", "20.10", "/var/lib/docker", "overlay2", True)


def _hex(kind: int, n: int) -> str:
    return f"{kind:02x}{n:062x}"


def _age(n: int) -> datetime:
    """Ages spread over 30 days, the same for the same n."""
    return NOW - timedelta(seconds=(n * 7919) % (30 * 86400))


def synthetic(objects: int) -> Snapshot:
    """A snapshot of about `objects` objects with the crowded host's mix."""
    blocks = max(objects // 100, 1)
    containers: list[Container] = []
    volumes: list[Volume] = []
    for n in range(blocks * 55):
        kind = n % 11  # 9 exited, 1 created, 1 running of every 11
        state = "exited" if kind < 9 else ("created" if kind == 9 else "running")
        mounts: tuple[Mount, ...] = ()
        if n % 11 < 3 or (n % 11 == 10 and n % 2 == 0):  # 15 of 55 own an anonymous volume
            name = _hex(1, n)
            mounts = (Mount("volume", name, f"/v/{name}/_data", "/data"),)
            volumes.append(_volume(name, anonymous=True, n=n, marker=()))
        containers.append(
            Container(
                id=_hex(2, n), name=f"c{n}", image_id=_hex(3, (n % (blocks * 10))),
                image=f"app{n % max(blocks * 10 // 4, 1)}:1", state=state, created=_age(n),
                finished=_age(n) if state == "exited" else None, mounts=mounts,
                size_rw=4096, log_bytes=8192,
            )
        )  # fmt: skip
    for n in range(blocks * 15):
        if n % 15 < 8:
            volumes.append(_volume(_hex(4, n), anonymous=True, n=n, marker=()))
        else:
            marker = ("postgres: PG_VERSION",) if n % 15 >= 13 else ()
            volumes.append(_volume(f"named-{n}", anonymous=False, n=n, marker=marker))
    images, layers = _images(blocks * 10)
    return Snapshot(
        taken_at=NOW,
        engine=_ENGINE,
        containers=tuple(containers),
        images=images,
        layers=layers,
        volumes=tuple(volumes),
        build_cache=tuple(_cache(n) for n in range(blocks * 4)),
        networks=tuple(
            Network(_hex(6, n), f"net{n}", "bridge", "local", _age(n)) for n in range(blocks)
        ),
    )


def _volume(name: str, *, anonymous: bool, n: int, marker: tuple[str, ...]) -> Volume:
    contents = VolumeContents(visible=True, bytes=8192, inodes=2, data_markers=marker)
    return Volume(name, "local", anonymous, _age(n), f"/v/{name}/_data", contents)


def _images(count: int) -> tuple[tuple[Image, ...], dict[str, int]]:
    layers = {_hex(7, 0): 5 << 20}
    images = []
    for n in range(count):
        own = (_hex(8, n), _hex(9, n))
        layers |= {own[0]: 1 << 20, own[1]: 64 << 10}
        tags = () if n % 4 == 3 else (f"app{n // 4}:{n % 4}",)
        images.append(
            Image(_hex(3, n), tags, (), _age(n), layers=(_hex(7, 0), *own), size=(6 << 20))
        )
    return tuple(images), layers


def _cache(n: int) -> BuildCacheRecord:
    return BuildCacheRecord(
        id=_hex(5, n), type="regular", description=f"RUN step {n}", in_use=False,
        shared=n % 5 == 0, size=1 << 20, created=_age(n), last_used=_age(n + 1),
        usage_count=1, parent=_hex(5, n - 1) if n % 4 else "",
    )  # fmt: skip


def _rss() -> int:
    """The process's resident memory now, in bytes."""
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * resource.getpagesize()


def measure(objects: int, rounds: int) -> dict[str, Any]:
    """Time `plan()` on a synthetic snapshot; the first plan's growth of the peak
    resident memory is the planner's own peak (the snapshot is built by then)."""
    started = time.perf_counter()
    snap = synthetic(objects)
    build_s = time.perf_counter() - started
    size = (
        len(snap.containers) + len(snap.volumes) + len(snap.images)
        + len(snap.build_cache) + len(snap.networks)
    )  # fmt: skip
    gc.collect()
    before = max(_rss(), _peak_rss())
    times = []
    for n in range(rounds):
        gc.collect()
        started = time.perf_counter()
        result = plan(snap, DEFAULT_POLICY, NOW)
        times.append(time.perf_counter() - started)
        if n == 0:
            planner_peak = _peak_rss() - before
        del result
    return {
        "objects": size,
        "snapshot_build_s": round(build_s, 3),
        "median_s": round(statistics.median(times), 4),
        "runs_s": [round(t, 4) for t in times],
        "planner_peak_bytes": max(planner_peak, 0),
        "process_peak_rss_bytes": _peak_rss(),
    }


def _peak_rss() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def run(sizes: tuple[int, ...], rounds: int, log: Any = print) -> dict[str, Any]:
    """Every size in a child process; growth exponents between consecutive sizes
    (1.0 is linear: ten times the objects, ten times the time)."""
    rows = []
    for objects in sizes:
        argv = [sys.executable, "-m", "benchmarks.scaling", "--objects", str(objects)]
        proc = subprocess.run(
            [*argv, "--rounds", str(rounds)], check=True, capture_output=True, text=True
        )
        row = json.loads(proc.stdout)
        rows.append(row)
        log(f"scaling {objects}: {row['median_s']:.3f}s, {row['planner_peak_bytes'] >> 20} MiB")
    return {"sizes": rows, "growth": _growth(rows)}


def _growth(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out = []
    for a, b in itertools.pairwise(rows):
        ratio = math.log(b["objects"] / a["objects"])
        out.append(
            {
                "from": a["objects"],
                "to": b["objects"],
                "time_exponent": round(math.log(b["median_s"] / a["median_s"]) / ratio, 3),
                "memory_exponent": _exponent(
                    a["planner_peak_bytes"], b["planner_peak_bytes"], ratio
                ),
            }
        )
    return out


def _exponent(a: int, b: int, log_ratio: float) -> float | None:
    """None when either figure is too small to tell from the allocator's granularity."""
    if min(a, b) < 1 << 20:
        return None
    return round(math.log(b / a) / log_ratio, 3)


def main() -> None:
    p = argparse.ArgumentParser(description="Time bilge's planner on a synthetic snapshot.")
    p.add_argument("--objects", type=int, required=True)
    p.add_argument("--rounds", type=int, default=3)
    args = p.parse_args()
    print(json.dumps(measure(args.objects, args.rounds)))


if __name__ == "__main__":
    main()
