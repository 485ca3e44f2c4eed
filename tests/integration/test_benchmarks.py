"""The benchmark harness runs: every scenario once, at the tiny size.

No timing is asserted here (timings belong to `make bench`); this only keeps the harness
from rotting: it builds each state on a private engine, runs every tool on its copies,
and writes well-formed results and a chart.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCENARIOS = ("crowded", "planning", "prediction", "scaling", "concurrency")


@pytest.fixture(scope="module")
def tiny_run() -> Iterator[tuple[Path, str]]:
    """`python -m benchmarks.run --size tiny` in a directory of its own (not pytest's
    basetemp, which pytest may delete while engines have mounts in it)."""
    work = Path(tempfile.mkdtemp(prefix="bilge-bench-"))
    argv = [sys.executable, "-m", "benchmarks.run", "--size", "tiny"]
    argv += ["--workdir", str(work / "work"), "--out-dir", str(work / "results")]
    try:
        proc = subprocess.run(
            argv, cwd=ROOT, capture_output=True, text=True, timeout=900, check=False
        )
        assert proc.returncode == 0, proc.stderr[-3000:]
        yield work / "results", proc.stdout
    finally:
        # The harness stops its engine itself; this only catches a run that died.
        subprocess.run(
            [str(ROOT / "scripts/sandbox-engine"), "stop", str(work / "work" / "engine")],
            capture_output=True,
            check=False,
        )
        shutil.rmtree(work, ignore_errors=True)


def _doc(results: Path, name: str) -> dict[str, object]:
    doc = json.loads((results / f"{name}.json").read_text())
    assert isinstance(doc, dict)
    return doc


@pytest.mark.parametrize("name", SCENARIOS)
def test_every_scenario_writes_its_results_with_the_machine(
    tiny_run: tuple[Path, str], name: str
) -> None:
    doc = _doc(tiny_run[0], name)
    assert doc["size"] == "tiny"
    assert {"scenario", "measured_at", "machine", "summary", "results"} <= doc.keys()
    machine = doc["machine"]
    assert isinstance(machine, dict)
    assert machine["cpus"] and machine["api"] and machine["dockerd"]


def test_crowded_host_compares_every_installable_tool(tiny_run: tuple[Path, str]) -> None:
    doc = _doc(tiny_run[0], "crowded")
    tools = doc["results"]["tools"]  # type: ignore[index]
    assert {"docker system prune", "docker system prune -a", "bilge apply"} <= tools.keys()
    for tool in tools.values():
        assert tool["median_s"] > 0
        assert tool["requests_total"] > 0
        assert set(tool["removed"]) == {"containers", "volumes", "images", "build cache"}
        assert set(tool["data_lost"]) == {
            "named volumes",
            "database volumes",
            "keep-labelled",
            "in use",
        }
    # What the numbers are about: bilge removed garbage and no data.
    bilge = tools["bilge apply"]
    assert bilge["removed"]["containers"] > 0
    assert bilge["freed_bytes"] > 0
    assert sum(bilge["data_lost"].values()) == 0
    peers = doc["peers"]
    assert set(peers["not installable here"]) == {"docker-gc (Spotify)", "docuum"}  # type: ignore[index]


def test_other_scenarios_have_their_figures(tiny_run: tuple[Path, str]) -> None:
    results = tiny_run[0]
    planning = _doc(results, "planning")["results"]["tools"]  # type: ignore[index]
    assert set(planning) == {"bilge plan", "docker system df -v"}
    assert all(t[c]["median_s"] > 0 for t in planning.values() for c in ("cold", "warm"))
    prediction = _doc(results, "prediction")["results"]
    assert prediction["bilge"]["predicted_bytes"] > 0  # type: ignore[index]
    assert prediction["docker system df"]["reclaimable_bytes"] >= 0  # type: ignore[index]
    scaling = _doc(results, "scaling")["results"]
    assert len(scaling["sizes"]) == len(scaling["growth"]) + 1  # type: ignore[index]
    concurrency = _doc(results, "concurrency")["summary"]
    assert concurrency["best"].startswith("bilge apply -j")  # type: ignore[index]


def test_chart_and_tables(tiny_run: tuple[Path, str]) -> None:
    results, stdout = tiny_run
    svg = ET.parse(results / "benchmarks.svg").getroot()
    assert svg.tag == "{http://www.w3.org/2000/svg}svg"
    assert len(svg.findall("{http://www.w3.org/2000/svg}g")) == 4  # four panels
    for heading in ("1. Crowded host", "2. Planning", "3. Prediction", "4. Scaling", "5. Removal"):
        assert f"### {heading}" in stdout


def test_the_podman_scenario_runs_and_counts_what_each_tool_loses() -> None:
    """Scenario 7 at a tiny size: every tool on an identical copy of a Podman storage;
    the prune that removes anonymous volumes by name loses the database's."""
    work = Path(tempfile.mkdtemp(prefix="bilge-bench-podman-"))
    out = work / "podman.json"
    argv = [sys.executable, "-m", "benchmarks.podman", "--containers", "3", "--rounds", "1"]
    argv += ["--workdir", str(work / "work"), "--out", str(out)]
    try:
        proc = subprocess.run(
            argv, cwd=ROOT, capture_output=True, text=True, timeout=900, check=False
        )
        assert proc.returncode == 0, proc.stderr[-3000:]
        tools = json.loads(out.read_text())["tools"]
        (bilge,) = tools["bilge apply"]["runs"]
        (pruned,) = tools["podman container prune + volume rm"]["runs"]
        (system,) = tools["podman system prune"]["runs"]
        assert bilge["lost"] == [] and bilge["anonymous_volumes_left"] == 0
        assert pruned["lost"] == ["postgres data (anonymous volume)"]
        assert system["anonymous_volumes_left"] == 3
        assert "ratio" in proc.stdout
    finally:
        subprocess.run(
            [str(ROOT / "scripts" / "sandbox-engine"), "stop", str(work / "work" / "engine")],
            check=False,
            capture_output=True,
        )
        shutil.rmtree(work, ignore_errors=True)
