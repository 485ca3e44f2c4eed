"""Results: the machine they were measured on, the JSON files, the ratios as tables.

Ratios are always "how many times faster bilge is": the peer's median time over
bilge's (above 1: bilge is faster; below 1: slower).
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
from collections.abc import Mapping
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

from benchmarks.peers import bilge_name
from benchmarks.sandbox import DOCKER
from bilge.engine.base import DEFAULT_CONCURRENCY

TIMES, DASH = "\u00d7", "\u2013"  # the signs the tables use

SCENARIOS = {
    "crowded": "1. Crowded host: every tool on an identical copy",
    "planning": "2. Planning: bilge plan against docker system df -v",
    "prediction": "3. Prediction: predicted bytes against the statvfs difference",
    "scaling": "4. Scaling: the planner alone on synthetic snapshots",
    "concurrency": "5. Removal concurrency: bilge at 1-16 parallel requests against prune",
}


def machine(
    engine_version: Mapping[str, str] | None = None, load_before: list[float] | None = None
) -> dict[str, Any]:
    """What the figures were measured on; the load averages (1, 5, 15 min) before and
    after say how busy the shared machine was meanwhile."""
    return {
        "cpus": os.cpu_count(),
        "cpu_model": _cpuinfo("model name"),
        "memory_bytes": _meminfo("MemTotal") * 1024,
        "kernel": platform.release(),
        "python": platform.python_version(),
        "bilge": metadata.version("bilge"),
        "docker_client": _output([DOCKER, "--version"]),
        **(engine_version or {}),
        "load_average_before": load_before,
        "load_average_after": list(os.getloadavg()),
    }


def _cpuinfo(key: str) -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith(key):
            return line.split(":", 1)[1].strip()
    return ""


def _meminfo(key: str) -> int:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    return 0


def _output(argv: list[str]) -> str:
    return subprocess.run(argv, check=False, capture_output=True, text=True).stdout.strip()


def write(
    out_dir: Path, name: str, size: str, results: Mapping[str, Any], info: Mapping[str, Any]
) -> Path:
    """benchmarks/results/NAME.json: the scenario's results, summary and machine."""
    doc = {
        "scenario": SCENARIOS[name],
        "size": size,
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z"),
        "machine": machine(info.get("engine"), info.get("load")),
        "peers": info.get("peers", {}),
        "summary": summary(name, results),
        "results": results,
    }
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"{name}.json"
    path.write_text(json.dumps(doc, indent=2) + "\n")
    return path


def load(out_dir: Path) -> dict[str, dict[str, Any]]:
    """Every scenario's document found in `out_dir`."""
    docs = {}
    for name in SCENARIOS:
        path = out_dir / f"{name}.json"
        if path.exists():
            docs[name] = json.loads(path.read_text())
    return docs


# --- summaries ------------------------------------------------------------------------


def summary(name: str, results: Mapping[str, Any]) -> dict[str, Any]:
    return SUMMARIES[name](results)


def _speedup(peer_s: float, bilge_s: float) -> float:
    return round(peer_s / bilge_s, 2) if bilge_s else 0.0


def paired(peer: Mapping[str, Any], bilge: Mapping[str, Any]) -> dict[str, Any]:
    """Round by round, the peer's time over bilge's. Both ran in the same round, a few
    runs apart at most, so a slow spell of the shared machine mostly falls on both:
    the count of rounds bilge won says more than two medians taken apart."""
    ratios = [
        _speedup(p["seconds"], b["seconds"])
        for p, b in zip(peer["runs"], bilge["runs"], strict=True)
    ]
    return {"ratios": ratios, "bilge_faster": sum(r > 1 for r in ratios), "rounds": len(ratios)}


def _crowded(results: Mapping[str, Any]) -> dict[str, Any]:
    tools = results["tools"]
    bilge = tools["bilge apply"]
    peers = {name: t for name, t in tools.items() if name != "bilge apply"}
    return {
        "bilge_speedup": {
            name: _speedup(t["median_s"], bilge["median_s"]) for name, t in peers.items()
        },
        "paired": {name: paired(t, bilge) for name, t in peers.items()},
        "data_lost": {name: sum(t["data_lost"].values()) for name, t in tools.items()},
    }


def _planning(results: Mapping[str, Any]) -> dict[str, Any]:
    tools = results["tools"]
    bilge, df = tools["bilge plan"], tools["docker system df -v"]
    return {
        f"bilge_speedup_{cache}": _speedup(df[cache]["median_s"], bilge[cache]["median_s"])
        for cache in ("cold", "warm")
    }


def _prediction(results: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "bilge_error": results["bilge"]["error"],
        "docker_system_df_error": results["docker system df"]["error"],
    }


def _scaling(results: Mapping[str, Any]) -> dict[str, Any]:
    return {"growth": results["growth"]}


def throughput(tool: Mapping[str, Any]) -> float:
    """Objects (containers and volumes) removed per second, by the median time."""
    removed = tool["removed"].get("containers", 0) + tool["removed"].get("volumes", 0)
    return round(removed / tool["median_s"], 1) if tool["median_s"] else 0.0


def _concurrency(results: Mapping[str, Any]) -> dict[str, Any]:
    tools = results["tools"]
    prune = tools["docker prune"]["median_s"]
    bilge = {name: t for name, t in tools.items() if name.startswith("bilge")}
    best = min(bilge, key=lambda name: bilge[name]["median_s"])
    # None when the default was not among the levels measured (the tiny size).
    default_name = bilge_name(DEFAULT_CONCURRENCY)
    default = bilge.get(default_name)
    return {
        "throughput_per_s": {name: throughput(t) for name, t in tools.items()},
        "bilge_speedup": {name: _speedup(prune, t["median_s"]) for name, t in bilge.items()},
        "paired": {name: paired(tools["docker prune"], t) for name, t in bilge.items()},
        "best": best,
        "default": default_name,
        "default_over_best": (
            round(default["median_s"] / bilge[best]["median_s"], 3) if default else None
        ),
    }


SUMMARIES = {
    "crowded": _crowded,
    "planning": _planning,
    "prediction": _prediction,
    "scaling": _scaling,
    "concurrency": _concurrency,
}


# --- tables ---------------------------------------------------------------------------


def markdown(docs: Mapping[str, Mapping[str, Any]]) -> str:
    """The tables docs/benchmarks.md shows, from the results documents."""
    parts = []
    for name, render in TABLES.items():
        if name in docs:
            parts.append(f"### {docs[name]['scenario']}\n\n{render(docs[name])}")
    return "\n\n".join(parts) + "\n"


def _row(cells: list[str]) -> str:
    return "| " + " | ".join(cells) + " |"


def _table(head: list[str], rows: list[list[str]]) -> str:
    align = ["---"] + ["---:"] * (len(head) - 1)
    return "\n".join([_row(head), _row(align), *(_row(r) for r in rows)])


def _mb(n: int | None) -> str:
    return DASH if n is None else f"{n / 1e6:,.1f} MB"


def _mem(n: int) -> str:
    """Memory growth below a megabyte is lost in the allocator's granularity."""
    return "< 1 MB" if n < 1 << 20 else _mb(n)


def _crowded_table(doc: Mapping[str, Any]) -> str:
    tools = doc["results"]["tools"]
    speed = doc["summary"]["bilge_speedup"]
    rows = []
    for name, t in tools.items():
        r = t["removed"]
        removed = f"{r['containers']} / {r['volumes']} / {r['images']} / {r.get('build cache', 0)}"
        lost = ", ".join(f"{v} {k}" for k, v in t["data_lost"].items() if v) or "none"
        ratio = f"1.00{TIMES}" if name == "bilge apply" else f"{speed[name]:.2f}{TIMES}"
        rows.append(
            [name, f"{t['median_s']:.2f} s", ratio, str(t["requests_total"]), removed,
             _mb(t["freed_bytes"]), lost]
        )  # fmt: skip
    head = ["tool", "median", "tool time ÷ bilge time", "API requests",
            "removed (ctr / vol / img / cache)", "freed", "data lost"]  # fmt: skip
    rounds = "; ".join(
        f"{name} {_rounds(p)}" for name, p in doc["summary"].get("paired", {}).items()
    )
    return _table(head, rows) + (
        f"\n\nRound by round, tool time ÷ bilge time: {rounds}." if rounds else ""
    )


def _rounds(p: Mapping[str, Any]) -> str:
    ratios = ", ".join(f"{r:.2f}{TIMES}" for r in p["ratios"])
    return f"{ratios} (bilge faster in {p['bilge_faster']} of {p['rounds']})"


def _planning_table(doc: Mapping[str, Any]) -> str:
    tools = doc["results"]["tools"]
    rows = [
        [name, f"{t['cold']['median_s']:.2f} s", f"{t['warm']['median_s']:.2f} s"]
        for name, t in tools.items()
    ]
    s = doc["summary"]
    rows.append(
        [
            "docker time ÷ bilge time",
            f"{s['bilge_speedup_cold']:.2f}{TIMES}",
            f"{s['bilge_speedup_warm']:.2f}{TIMES}",
        ]
    )
    return _table(["command", "cold cache", "warm cache"], rows)


def _prediction_table(doc: Mapping[str, Any]) -> str:
    r = doc["results"]
    b, d = r["bilge"], r["docker system df"]
    rows = [
        [
            "bilge apply (predicted)",
            _mb(b["predicted_bytes"]),
            "bilge apply",
            _mb(b["measured_bytes"]),
            _pct(b["error"]),
        ]
    ]
    for name, measured in d["measured_bytes"].items():
        rows.append(
            [
                "docker system df RECLAIMABLE",
                _mb(d["reclaimable_bytes"]),
                name,
                _mb(measured),
                _pct(d["error"][name]),
            ]
        )
    return _table(["prediction", "bytes", "measured after", "freed (statvfs)", "error"], rows)


def _pct(x: float | None) -> str:
    return DASH if x is None else f"{x * 100:+.2f} %"


def _scaling_table(doc: Mapping[str, Any]) -> str:
    r = doc["results"]
    rows = [
        [
            f"{s['objects']:,}",
            f"{s['median_s']:.3f} s",
            f"{s['median_s'] / s['objects'] * 1e6:.1f} µs",
            _mem(s["planner_peak_bytes"]),
            _mb(s["process_peak_rss_bytes"]),
        ]
        for s in r["sizes"]
    ]
    head = ["objects", "plan()", "per object", "planner peak memory", "process peak RSS"]
    growth = "; ".join(
        f"{g['from']:,} to {g['to']:,}: time n^{g['time_exponent']}, "
        f"memory n^{g['memory_exponent'] or '?'}"
        for g in r["growth"]
    )
    return f"{_table(head, rows)}\n\nGrowth exponents (1.0 is linear): {growth}."


def _concurrency_table(doc: Mapping[str, Any]) -> str:
    tools = doc["results"]["tools"]
    s = doc["summary"]
    rows = []
    for name, t in tools.items():
        ratio = DASH if name == "docker prune" else f"{s['bilge_speedup'][name]:.2f}{TIMES}"
        per_round = _rounds(s["paired"][name]) if name in s.get("paired", {}) else DASH
        throughput = f"{s['throughput_per_s'][name]:.0f}/s"
        rows.append([name, f"{t['median_s']:.2f} s", throughput, ratio, per_round])
    head = ["tool", "median", "objects removed per second", "prune time ÷ bilge time",
            "round by round"]  # fmt: skip
    return _table(head, rows)


TABLES = {
    "crowded": _crowded_table,
    "planning": _planning_table,
    "prediction": _prediction_table,
    "scaling": _scaling_table,
    "concurrency": _concurrency_table,
}
