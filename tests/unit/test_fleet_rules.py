"""The fleet's Prometheus rules (deploy/prometheus/bilge-fleet-rules.yml) really
add the fleet up: promtool checks them, and evaluates them on a made-up fleet
(`promtool test rules`): four guards, one above high, one above high on inodes
only, one that never sampled, and what the policy could reclaim on each.

promtool comes with Debian's `prometheus` package, which `scripts/sandbox-engine
install` installs; without it these tests are skipped.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.unit.test_deploy import METRICS

RULES = Path(__file__).resolve().parents[2] / "deploy" / "prometheus" / "bilge-fleet-rules.yml"

#: A made-up fleet: (instance, host, used bytes of 100, used inodes of 1000, above high).
HOSTS = [
    ("n1:9808", "unix:///var/run/docker.sock", 90, 100, 1),
    ("n2:9808", "unix:///var/run/docker.sock", 40, 950, 1),
    ("n3:9808", "unix:///var/run/docker.sock", 30, 100, 0),
]


def _rules() -> list[dict[str, Any]]:
    doc = yaml.safe_load(RULES.read_text())
    return [rule for group in doc["groups"] for rule in group["rules"]]


def _promtool() -> str:
    tool = shutil.which("promtool")
    if tool is None:
        pytest.skip("promtool is not installed (Debian's prometheus package)")
    return tool


def test_the_rules_use_only_bilge_metrics_and_name_records_by_convention() -> None:
    text = RULES.read_text()
    assert set(re.findall(r"\bbilge_[a-z0-9_]+", text)) <= METRICS
    for rule in _rules():
        if "record" in rule:
            assert re.fullmatch(r"bilge:[a-z_]+:[a-z0-9_]+", rule["record"]), rule["record"]
        else:
            assert rule["labels"]["severity"] in ("warning", "critical"), rule["alert"]


def test_promtool_checks_the_fleet_rules() -> None:
    result = subprocess.run(
        [_promtool(), "check", "rules", str(RULES)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr


def _series() -> list[dict[str, str]]:
    series = []
    for instance, host, used, inodes, above in HOSTS:
        labels = f'instance="{instance}", job="bilge", host="{host}"'
        values = {
            "bilge_filesystem_size_bytes": 100,
            "bilge_filesystem_used_bytes": used,
            "bilge_filesystem_inodes": 1000,
            "bilge_filesystem_used_inodes": inodes,
            "bilge_above_high_watermark": above,
            "bilge_last_sample_timestamp_seconds": 1,
        }
        series += [{"series": f"{m}{{{labels}}}", "values": f"{v}x30"} for m, v in values.items()]
        series.append({"series": f'up{{instance="{instance}", job="bilge"}}', "values": "1x30"})
        for kind, size in (("volumes", 1000), ("images", 500)):
            reclaim = f'bilge_reclaimable_bytes{{{labels}, kind="{kind}"}}'
            series.append({"series": reclaim, "values": f"{size}x30"})
    series.append({"series": 'up{instance="n4:9808", job="bilge"}', "values": "1x30"})
    return series


def _expect(expr: str, value: float, labels: str = "") -> dict[str, Any]:
    """`expr` evaluated at 20 minutes is one sample: a record keeps its own name."""
    return {"expr": expr, "eval_time": "20m",
            "exp_samples": [{"labels": labels or expr, "value": value}]}  # fmt: skip


def _expectations() -> list[dict[str, Any]]:
    n2 = 'bilge:filesystem_used:ratio{instance="n2:9808", host="unix:///var/run/docker.sock"}'
    n1 = n2.replace("n2", "n1")
    return [
        _expect("bilge:hosts:count", 3),
        _expect("bilge:hosts_above_high:count", 2),
        _expect("bilge:hosts_never_sampled:count", 1),
        _expect("bilge:reclaimable_bytes:sum", 4500),
        _expect(
            'bilge:reclaimable_bytes:sum_by_kind{kind="volumes"}',
            3000,
            'bilge:reclaimable_bytes:sum_by_kind{kind="volumes"}',
        ),
        _expect('bilge:filesystem_used:ratio{instance="n2:9808"}', 0.95, n2),  # inodes: fuller
        _expect('bilge:filesystem_used:ratio{instance="n1:9808"}', 0.9, n1),  # bytes: fuller
    ]


def _alert(name: str) -> dict[str, Any]:
    return next(rule for rule in _rules() if rule.get("alert") == name)


def _fired(rule: dict[str, Any], value: int) -> dict[str, Any]:
    """The alert as it fires with `value`: its templates filled in, as Prometheus does."""
    filled = {
        key: " ".join(text.replace('{{ $value | printf \\"%.0f\\" }}', str(value))
                      .replace('{{ $value | printf "%.0f" }}', str(value)).split())
        for key, text in rule["annotations"].items()
    }  # fmt: skip
    return {"exp_labels": dict(rule["labels"]), "exp_annotations": filled}


def test_promtool_evaluates_the_fleet_rules_on_a_made_up_fleet(tmp_path: Path) -> None:
    tool = _promtool()
    many = _alert("BilgeFleetManyHostsAboveHigh")
    blind = _alert("BilgeFleetHostsNeverSampled")
    alerts = [
        {"eval_time": "20m", "alertname": many["alert"], "exp_alerts": [_fired(many, 2)]},
        {"eval_time": "20m", "alertname": blind["alert"], "exp_alerts": [_fired(blind, 1)]},
        {"eval_time": "10m", "alertname": many["alert"], "exp_alerts": []},  # not yet: for 15m
    ]
    test = {
        "rule_files": [str(RULES)],
        "evaluation_interval": "1m",
        "tests": [
            {
                "interval": "1m",
                "input_series": _series(),
                "promql_expr_test": _expectations(),
                "alert_rule_test": alerts,
            }
        ],
    }
    path = tmp_path / "fleet_test.yml"
    path.write_text(yaml.safe_dump(test, sort_keys=False))
    result = subprocess.run(
        [tool, "test", "rules", str(path)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr
