"""`bilge config`: the effective policy, read back unchanged, the webhook never shown."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from bilge.config.policy import load_policy


def bilge(*args: str) -> subprocess.CompletedProcess[str]:
    argv = [sys.executable, "-m", "bilge", *args]
    return subprocess.run(argv, capture_output=True, text=True, check=False)


def test_the_effective_policy_reads_back_unchanged(tmp_path: Path) -> None:
    config = tmp_path / "bilge.toml"
    config.write_text('[watch]\nhigh = "90%"\n[volumes]\nkeep_names = ["pg-*"]\n')
    done = bilge("-c", str(config), "config")
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(f"# from {config}\n")
    again = tmp_path / "again.toml"
    again.write_text(done.stdout)
    assert load_policy(again) == load_policy(config)


def test_without_a_file_it_says_defaults(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "bilge", "config", "--json"],
        capture_output=True,
        text=True,
        check=False,
        env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "XDG_CONFIG_HOME": str(tmp_path)},
    )
    doc = json.loads(done.stdout)
    assert doc["kind"] == "config" and doc["webhook_url_set"] is False
    assert 'high = "85%"' in doc["toml"]


def test_the_webhook_url_is_never_shown(tmp_path: Path) -> None:
    config = tmp_path / "bilge.toml"
    config.write_text('[watch]\nwebhook_url = "https://hooks.example/T000/SECRET"\n')
    for args in (("config",), ("config", "--json")):
        done = bilge("-c", str(config), *args)
        assert done.returncode == 0, done.stderr
        assert "SECRET" not in done.stdout and "hooks.example" not in done.stdout
        assert "webhook_url is set" in done.stdout or '"webhook_url_set": true' in done.stdout
