"""One HTTP story: bilge with each client for the engine's socket, round by round.

    .venv/bin/python -m benchmarks.run --http lean,httpx,httpclient --rounds 9

bilge runs once per client in every round of the crowded host (scenario 1) and of
the removal scenario (5, at the default concurrency, with the engine's own prune
beside it), each run on a fresh copy of the same engine state: `bilge-lean` (the
hand-written client, unixhttp.py), `bilge-httpx` and `bilge-httpclient`
(BILGE_UNIX_HTTP). The other peers are left out: only bilge's time is compared,
and the rounds are shorter for it. The request counts are those of scenario 1 and
5 (every client sends the same requests), so no counted runs are made.

Ratios here are "the client's time over the hand-written client's" (above 1: the
hand-written one is faster), per round and of the medians. Results go to
benchmarks/results/http.json.
"""

from __future__ import annotations

import json
import statistics
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from benchmarks import measure, peers, report
from benchmarks.peers import DOCKER_CONTAINER_VOLUME_PRUNE
from benchmarks.report import TIMES

VARIANTS = ("lean", "httpx", "httpclient")
BASE = "lean"
SCENARIOS = {"crowded": "1. Crowded host", "removal": "5. Removal, default concurrency"}


def run(ws: measure.Workspace, variants: Sequence[str]) -> dict[str, Any]:
    """Both scenarios, every client in every round (each round starts with another)."""
    bilges = [peers.bilge_tool(ws.dir, http=v) for v in variants]
    return {
        "crowded": measure.compare(ws, "crowded", bilges, cache=True, count=False),
        "removal": measure.compare(
            ws, "removal", [DOCKER_CONTAINER_VOLUME_PRUNE, *bilges], cache=False, count=False
        ),
    }


def summary(results: Mapping[str, Any], variants: Sequence[str]) -> dict[str, Any]:
    """Per scenario: each client's median, and its time over the base client's,
    of the medians and round by round."""
    out: dict[str, Any] = {}
    for scenario, got in results.items():
        tools = got["tools"]
        base = tools[peers.bilge_name(http=BASE)]
        rows: dict[str, Any] = {}
        for variant in variants:
            tool = tools[peers.bilge_name(http=variant)]
            ratios = [
                round(t["seconds"] / b["seconds"], 3)
                for t, b in zip(tool["runs"], base["runs"], strict=True)
            ]
            rows[variant] = {
                "median_s": tool["median_s"],
                "spread": tool["spread"],
                "over_lean_of_medians": round(tool["median_s"] / base["median_s"], 3),
                "over_lean_by_round": ratios,
                "over_lean_median_of_rounds": round(statistics.median(ratios), 3),
                "lean_faster_rounds": sum(r > 1 for r in ratios),
            }
        if "docker prune" in tools:
            rows["docker prune"] = {"median_s": tools["docker prune"]["median_s"]}
        out[scenario] = rows
    return out


def write(
    out_dir: Path, results: Mapping[str, Any], variants: Sequence[str], info: Mapping[str, Any]
) -> Path:
    doc = {
        "scenario": "One HTTP story: bilge with each client for the engine's socket",
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z"),
        "machine": report.machine(info.get("engine"), info.get("load")),
        "summary": summary(results, variants),
        "results": results,
    }
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / "http.json"
    path.write_text(json.dumps(doc, indent=2) + "\n")
    return path


def markdown(doc: Mapping[str, Any]) -> str:
    """The table docs/benchmarks.md shows."""
    lines = []
    for scenario, rows in doc["summary"].items():
        lines += [
            f"{SCENARIOS.get(scenario, scenario)}:",
            "",
            "| client | median | ÷ lean (medians) | ÷ lean, round by round | lean faster |",
            "| --- | ---: | ---: | --- | ---: |",
        ]
        for name, row in rows.items():
            if "over_lean_by_round" not in row:
                lines.append(f"| {name} | {row['median_s']:.2f} s | | | |")
                continue
            by_round = ", ".join(f"{r:.2f}" for r in row["over_lean_by_round"])
            won = f"{row['lean_faster_rounds']} of {len(row['over_lean_by_round'])}"
            lines.append(
                f"| {name} | {row['median_s']:.2f} s | {row['over_lean_of_medians']:.3f}{TIMES} "
                f"| {by_round} | {won} |"
            )
        lines.append("")
    return "\n".join(lines)
