"""Running the tools on copies of a built state and measuring what they did.

A run: a fresh engine on a copy of the state, the running containers started again,
an inventory of the objects, the data-root read once (a warm cache for every tool), the
free bytes of the data-root's own filesystem; then the tool, timed; then free bytes and
inventory again. From those: seconds, objects removed by kind, bytes freed, and data
lost (named, database, keep-labelled or in-use objects removed). Request counts come
from a run through the counting proxy, separate from the timed runs (the proxy adds a
little to every request, so it would penalise the chattiest tool), except at the tiny
size, where the one run goes through the proxy.
"""

from __future__ import annotations

import re
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from benchmarks import sandbox, scenarios
from benchmarks.peers import DOCKER_PRUNE, DOCKER_PRUNE_ALL, Tool
from benchmarks.proxy import CountingProxy
from benchmarks.sandbox import DOCKER, Engine
from benchmarks.scenarios import Size

Log = Callable[[str], None]


@dataclass
class Workspace:
    """Where the engines, saved states and proxy socket live for one benchmark run."""

    dir: Path
    size: Size
    log: Log
    states: dict[str, Path] = field(default_factory=dict)
    #: The runs of each compared state, by tool: scenario 3 reuses scenario 1's.
    runs: dict[str, dict[str, list[Run]]] = field(default_factory=dict)

    @property
    def engine_dir(self) -> Path:
        return self.dir / "engine"

    def state(self, name: str) -> Path:
        """The disk image of state `name`, built (once per benchmark run) if needed."""
        if name not in self.states:
            started = time.perf_counter()
            self.states[name] = self._build(name)
            self.log(f"built state {name} in {time.perf_counter() - started:.0f}s")
        return self.states[name]

    def _build(self, name: str) -> Path:
        image = self.dir / f"{name}.img"
        image.unlink(missing_ok=True)
        base = self.state("crowded") if name == "planning" else None
        if base is None:
            engine = sandbox.start(self.engine_dir, disk=self.size.disk)
        else:
            engine = sandbox.start(self.engine_dir, disk_from=base)
        try:
            BUILDERS[name](engine, self.size)
        except BaseException:
            sandbox.stop(self.engine_dir)
            raise
        sandbox.stop(self.engine_dir, keep_disk=image)
        return image


BUILDERS: dict[str, Callable[[Engine, Size], None]] = {
    "crowded": scenarios.build_crowded,
    "planning": scenarios.add_planning_volumes,
    "removal": scenarios.build_removal,
}


@dataclass(frozen=True)
class Run:
    """What one run of one tool did."""

    seconds: float
    removed: dict[str, int]
    freed_bytes: int
    data_lost: dict[str, int]
    report: dict[str, Any]
    requests: dict[str, int] | None = None

    def doc(self) -> dict[str, Any]:
        doc: dict[str, Any] = {
            "seconds": round(self.seconds, 3),
            "removed": self.removed,
            "freed_bytes": self.freed_bytes,
            "data_lost": self.data_lost,
        }
        if self.report:
            doc["tool_report"] = self.report
        return doc


def one_run(ws: Workspace, state: Path, tool: Tool, *, counted: bool, cache: bool) -> Run:
    """`tool` on a fresh copy of `state`; through the counting proxy when `counted`."""
    with sandbox.running(ws.engine_dir, state) as engine:
        scenarios.prepare(engine)
        before = scenarios.inventory(engine, build_cache=cache)
        sandbox.warm(engine.mount)
        free_before = sandbox.free_bytes(engine.mount)
        requests: dict[str, int] | None = None
        if counted:
            with CountingProxy(engine.dir / "docker.sock", ws.dir / "proxy.sock") as proxy:
                result = tool.run(engine, f"unix://{proxy.path}")
            requests = dict(sorted(proxy.counts.items(), key=lambda kv: (-kv[1], kv[0])))
        else:
            result = tool.run(engine, engine.host)
        freed = sandbox.free_bytes(engine.mount) - free_before
        gone = scenarios.removed(before, scenarios.inventory(engine, build_cache=cache))
    return Run(
        seconds=result.seconds,
        removed={kind: len(keys) for kind, keys in gone.items() if cache or kind != "build cache"},
        freed_bytes=freed,
        data_lost=scenarios.data_lost(before, gone),
        report=result.report,
        requests=requests,
    )


def rotated(items: Sequence[Tool], by: int) -> list[Tool]:
    """Each round starts with another tool, so that drift in the machine's load does
    not always fall on the same one."""
    by %= max(len(items), 1)
    return [*items[by:], *items[:by]]


def compare(
    ws: Workspace, state_name: str, tools: Sequence[Tool], *, cache: bool
) -> dict[str, Any]:
    """Every tool on its own copy of the state, `rounds` times, and once counted."""
    state = ws.state(state_name)
    counted_apart = ws.size.rounds > 1
    runs: dict[str, list[Run]] = {t.name: [] for t in tools}
    for rnd in range(ws.size.rounds):
        for tool in rotated(tools, rnd):
            run = one_run(ws, state, tool, counted=not counted_apart, cache=cache)
            runs[tool.name].append(run)
            ws.log(f"{state_name} round {rnd + 1}: {tool.name}: {run.seconds:.2f}s")
    ws.runs[state_name] = runs
    counts: dict[str, dict[str, int] | None] = {}
    for tool in tools:
        counts[tool.name] = (
            one_run(ws, state, tool, counted=True, cache=cache).requests
            if counted_apart
            else runs[tool.name][0].requests
        )
    return {
        "timed_through_proxy": not counted_apart,
        "tools": {t.name: _tool_doc(t, runs[t.name], counts[t.name]) for t in tools},
    }


def _tool_doc(tool: Tool, runs: list[Run], requests: dict[str, int] | None) -> dict[str, Any]:
    times = [r.seconds for r in runs]
    last = runs[-1]
    return {
        "settings": tool.settings,
        "median_s": round(statistics.median(times), 3),
        "spread": round((max(times) - min(times)) / statistics.median(times), 3),
        "removed": last.removed,
        "freed_bytes": int(statistics.median(r.freed_bytes for r in runs)),
        "data_lost": last.data_lost,
        "requests_total": sum(requests.values()) if requests is not None else None,
        "requests": requests,
        "runs": [r.doc() for r in runs],
    }


# --- scenario 2: planning -------------------------------------------------------------


def timed(argv: Sequence[str], env: Mapping[str, str]) -> float:
    start = time.perf_counter()
    subprocess.run(list(argv), env=dict(env), check=True, capture_output=True)
    return time.perf_counter() - start


def planning(ws: Workspace, bilge_argv: Callable[[str], list[str]]) -> dict[str, Any]:
    """`bilge plan` against `docker system df -v`, cold and warm page cache: each
    round drops the caches, runs one command (cold), then runs it again (warm)."""
    state = ws.state("planning")
    commands: dict[str, Callable[[str], list[str]]] = {
        "bilge plan": bilge_argv,
        "docker system df -v": lambda host: [DOCKER, "system", "df", "-v"],
    }
    times: dict[str, dict[str, list[float]]] = {n: {"cold": [], "warm": []} for n in commands}
    with sandbox.running(ws.engine_dir, state) as engine:
        scenarios.prepare(engine)
        env = engine.environ()
        for rnd in range(ws.size.rounds):
            names = list(commands)[rnd % 2 :] + list(commands)[: rnd % 2]
            for name in names:
                sandbox.drop_caches()
                times[name]["cold"].append(timed(commands[name](engine.host), env))
                times[name]["warm"].append(timed(commands[name](engine.host), env))
                ws.log(f"planning round {rnd + 1}: {name}: {_cold_warm(times[name])}")
    return {
        "tools": {
            name: {
                "command": _shown(commands[name]("unix://ENGINE")),
                **{
                    cache: {"median_s": round(statistics.median(t), 3), "runs_s": _rounded(t)}
                    for cache, t in by_cache.items()
                },
            }
            for name, by_cache in times.items()
        }
    }


def _shown(argv: Sequence[str]) -> str:
    """A command line as the results show it: no interpreter, no local paths."""
    words = [Path(w).name if w.startswith("/") else w for w in argv]
    if words[:3] == [Path(sys.executable).name, "-m", "bilge"]:
        words = ["bilge", *words[3:]]
    return " ".join(words)


def _cold_warm(t: Mapping[str, list[float]]) -> str:
    return f"cold {t['cold'][-1]:.2f}s, warm {t['warm'][-1]:.2f}s"


def _rounded(values: Sequence[float]) -> list[float]:
    return [round(v, 3) for v in values]


# --- scenario 3: prediction -----------------------------------------------------------

_UNITS = {"B": 1, "kB": 10**3, "MB": 10**6, "GB": 10**9, "TB": 10**12, "PB": 10**15}


def human_bytes(text: str) -> int:
    """docker's sizes ("1.234GB", "0B", "12.3kB (45%)") in bytes (decimal units)."""
    match = re.match(r"\s*([\d.]+)\s*([kMGTP]?B)", text)
    if match is None:
        raise ValueError(f"not a docker size: {text!r}")
    return round(float(match.group(1)) * _UNITS[match.group(2)])


def docker_reclaimable(engine: Engine) -> dict[str, int]:
    """`docker system df`'s RECLAIMABLE column, by type, in bytes."""
    lines = engine.docker("system", "df", "--format", "{{.Type}}\t{{.Reclaimable}}").stdout
    return {
        kind: human_bytes(value)
        for kind, value in (line.split("\t") for line in lines.splitlines() if line)
    }


def prediction(ws: Workspace, bilge: Tool) -> dict[str, Any]:
    """bilge's predicted bytes and docker's RECLAIMABLE against the statvfs difference.

    The runs of scenario 1 are used when it ran in this invocation (on the same state);
    otherwise each tool runs once here.
    """
    state = ws.state("crowded")
    tools = (bilge, DOCKER_PRUNE, DOCKER_PRUNE_ALL)
    runs = ws.runs.get("crowded") or {
        t.name: [one_run(ws, state, t, counted=False, cache=True)] for t in tools
    }
    with sandbox.running(ws.engine_dir, state) as engine:
        scenarios.prepare(engine)
        reclaimable = docker_reclaimable(engine)
    total = sum(reclaimable.values())
    predicted = [int(r.report["removed_bytes_predicted"]) for r in runs[bilge.name]]
    measured = [r.freed_bytes for r in runs[bilge.name]]
    errors = [_error(p, m) or 0.0 for p, m in zip(predicted, measured, strict=True)]
    prunes = {t.name: _median_int(r.freed_bytes for r in runs[t.name]) for t in tools[1:]}
    return {
        "bilge": {
            "predicted_bytes": _median_int(predicted),
            "measured_bytes": _median_int(measured),
            "error": statistics.median(errors),
            "runs": [
                {"predicted_bytes": p, "measured_bytes": m, "error": e}
                for p, m, e in zip(predicted, measured, errors, strict=True)
            ],
        },
        "docker system df": {
            "reclaimable_bytes": total,
            "reclaimable_by_type": reclaimable,
            "measured_bytes": prunes,
            "error": {name: _error(total, measured) for name, measured in prunes.items()},
        },
    }


def _median_int(values: Iterable[int]) -> int:
    return int(statistics.median(values))


def _error(predicted: int, measured: int) -> float | None:
    return round((predicted - measured) / measured, 4) if measured else None
