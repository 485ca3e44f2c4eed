"""Scenario 6: reading a volume for database files, against `du` and `find`.

    .venv/bin/python -m benchmarks.volscan [--files 300000] [--rounds 5]

A volume's directory of N small files (100 to a directory, directories three deep,
like a cache or a node_modules tree, and no database) is built once under
`.sandbox/volscan`; then, round by round and in turn, bilge's scan (`scan_dir`: disk
usage, inodes and database markers at every depth), the same scan limited to four
levels (as bilge read volumes before it read them whole), GNU `du -s` (usage only)
and `find -name PG_VERSION` (one marker, no usage) read it, each timed with a warm
page cache. Results go to benchmarks/results/volscan.json and a table to stdout,
with each peer's time as a ratio of bilge's.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

from bilge.collect.datafiles import scan_dir

ROOT = Path(__file__).resolve().parents[1]


def build(root: Path, files: int) -> None:
    marker = root / ".complete"
    if marker.exists() and marker.read_text() == str(files):
        return
    shutil.rmtree(root, ignore_errors=True)
    for n in range(files):
        d = root / f"a{n // 10000}" / f"b{n // 1000 % 10}" / f"c{n // 100 % 10}"
        if n % 100 == 0:
            d.mkdir(parents=True, exist_ok=True)
        (d / f"f{n}.js").write_bytes(b"x" * (n % 700))
    marker.write_text(str(files))


def timed(run: Callable[[], object]) -> float:
    started = time.perf_counter()
    run()
    return time.perf_counter() - started


def main() -> int:
    p = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    p.add_argument("--files", type=int, default=300_000)
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "volscan.json")
    args = p.parse_args()
    root = ROOT / ".sandbox" / "volscan" / str(args.files)
    build(root, args.files)
    full = scan_dir(root)
    assert full.complete and full.markers == ()
    tools: dict[str, Callable[[], object]] = {
        "bilge scan (every depth)": lambda: scan_dir(root),
        "bilge scan (4 levels, as before)": lambda: scan_dir(root, max_depth=4),
        "du -s": lambda: subprocess.run(["du", "-s", str(root)], capture_output=True, check=True),
        "find -name PG_VERSION": lambda: subprocess.run(
            ["find", str(root), "-name", "PG_VERSION"], capture_output=True, check=True
        ),
    }
    for run in tools.values():  # warm the page cache and the dentry cache
        run()
    times: dict[str, list[float]] = {name: [] for name in tools}
    for _ in range(args.rounds):
        for name, run in tools.items():
            times[name].append(timed(run))
    medians = {name: statistics.median(t) for name, t in times.items()}
    ours = medians["bilge scan (every depth)"]
    doc = {
        "files": args.files,
        "inodes": full.inodes,
        "rounds": args.rounds,
        "cpus": os.cpu_count(),
        "load": list(os.getloadavg()),
        "seconds": times,
        "median": medians,
        "ratio_to_bilge": {name: m / ours for name, m in medians.items()},
    }
    args.out.write_text(json.dumps(doc, indent=2) + "\n")
    print(f"| {args.files:,} files, median of {args.rounds} | seconds | / bilge |")
    print("|---|---:|---:|")
    for name, m in medians.items():
        print(f"| {name} | {m:.2f} | {m / ours:.2f}x |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
