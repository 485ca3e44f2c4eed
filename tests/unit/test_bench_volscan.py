"""benchmarks.volscan runs and reports each tool against bilge's scan."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_volscan_reports_ratios(tmp_path: Path) -> None:
    out = tmp_path / "volscan.json"
    argv = [sys.executable, "-m", "benchmarks.volscan", "--files", "300", "--rounds", "1"]
    done = subprocess.run(
        [*argv, "--out", str(out)], cwd=ROOT, capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
    doc = json.loads(out.read_text())
    assert doc["files"] == 300 and doc["inodes"] > 300
    assert doc["ratio_to_bilge"]["bilge scan (every depth)"] == 1.0
    assert {"du -s", "find -name PG_VERSION"} <= set(doc["median"])
    assert "| du -s |" in done.stdout
