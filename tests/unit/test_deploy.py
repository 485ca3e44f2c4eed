"""The deployment files in deploy/ agree with `bilge watch` and with each other.

What can be checked without a host, a cluster or a Prometheus: every file
parses; every deployment mounts the engine's socket and data-root at the same
path as on the host, keeps its state in /var/lib/bilge and passes the webhook
URL as a secret; every command line uses only `bilge watch`'s options; the
alert rules and the dashboard use only the metrics bilge exports (METRICS, the
contract with src/bilge/metrics.py). Where systemd-analyze and promtool are
installed, they check the unit and the queries too.
"""

from __future__ import annotations

import argparse
import http.server
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import threading
import tomllib
from collections.abc import Iterator
from fnmatch import fnmatch
from pathlib import Path
from typing import Any

import pytest
import yaml

from bilge.cli.entry import build_parser
from bilge.config.policy import parse_policy

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
UNIT = DEPLOY / "systemd" / "bilge-watch.service"
DOCKERFILE = DEPLOY / "docker" / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"
COMPOSE = DEPLOY / "compose" / "compose.yaml"
STACK = DEPLOY / "swarm" / "stack.yaml"
KUBERNETES = DEPLOY / "kubernetes" / "daemonset.yaml"
ALERTS = DEPLOY / "prometheus" / "bilge-alerts.yml"
DASHBOARD = DEPLOY / "grafana" / "bilge-dashboard.json"
DOCS = ROOT / "docs" / "deploy.md"

#: The guard's metrics: the one list the alert rules and the dashboard may use.
METRICS = frozenset(
    {
        "bilge_filesystem_used_bytes",
        "bilge_filesystem_size_bytes",
        "bilge_filesystem_used_inodes",
        "bilge_filesystem_inodes",
        "bilge_above_high_watermark",
        "bilge_reclaimable_bytes",
        "bilge_removals_total",
        "bilge_freed_bytes_total",
        "bilge_evictions_total",
        "bilge_eviction_shortfall",
        "bilge_last_sample_timestamp_seconds",
        "bilge_last_eviction_timestamp_seconds",
        "bilge_errors_total",
    }
)
#: Their labels, and the two Prometheus adds to every scraped series.
LABELS = frozenset({"host", "kind", "reason", "job", "instance"})

SOCKET = "/var/run/docker.sock"
DATA_ROOT = "/var/lib/docker"
STATE_DIR = "/var/lib/bilge"
CONFIG = "/etc/bilge/bilge.toml"
WEBHOOK_ENV = "BILGE_WEBHOOK_URL"
PORT = 9808

#: The alerts the rule file must have: a fragment of each expression, and `for`.
REQUIRED_ALERTS = {
    "BilgeDiskAboveHighWatermark": ("bilge_above_high_watermark == 1", "10m"),
    "BilgeDiskAlmostFull": (
        "bilge_filesystem_used_bytes / bilge_filesystem_size_bytes > 0.95",
        None,
    ),
    "BilgeInodesAlmostFull": (
        "bilge_filesystem_used_inodes / bilge_filesystem_inodes > 0.95",
        None,
    ),
    "BilgeEvictionShortfall": ("bilge_eviction_shortfall == 1", None),
    "BilgeNotSampling": ("time() - bilge_last_sample_timestamp_seconds > 300", None),
    "BilgeErrors": ("increase(bilge_errors_total[15m]) > 0", None),
    "BilgeDown": ('absent(up{job="bilge"})', None),
}


def load_yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text())


def kubernetes_docs() -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(KUBERNETES.read_text()) if d is not None]


def kubernetes_doc(kind: str) -> dict[str, Any]:
    return next(d for d in kubernetes_docs() if d["kind"] == kind)


def pod_spec() -> dict[str, Any]:
    spec: dict[str, Any] = kubernetes_doc("DaemonSet")["spec"]["template"]["spec"]
    return spec


def guard_container() -> dict[str, Any]:
    container: dict[str, Any] = pod_spec()["containers"][0]
    return container


def service(path: Path) -> dict[str, Any]:
    svc: dict[str, Any] = load_yaml(path)["services"]["bilge"]
    return svc


# --- bilge watch's command line, as the contract states it ---------------------


def _global_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-H", "--host", action="append")
    parser.add_argument("-c", "--config")
    parser.add_argument("--state-dir")
    parser.add_argument("-v", "--verbose", action="store_true")


def contract_parse(argv: list[str]) -> argparse.Namespace:
    """`bilge [global options] watch [watch and global options]`, or AssertionError."""
    assert "watch" in argv, f"not a `bilge watch` command: {argv}"
    at = argv.index("watch")
    before = argparse.ArgumentParser(add_help=False, exit_on_error=False)
    _global_options(before)
    after = argparse.ArgumentParser(add_help=False, exit_on_error=False)
    _global_options(after)
    after.add_argument("--metrics-addr")
    after.add_argument("--log-format", choices=("text", "json"))
    after.add_argument("--once", action="store_true")
    args, unknown = before.parse_known_args(argv[:at])
    assert not unknown, f"not global options of bilge: {unknown}"
    args, unknown = after.parse_known_args(argv[at + 1 :], namespace=args)
    assert not unknown, f"not options of bilge watch: {unknown}"
    return args


def _dockerfile() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments), continuation lines joined, comments dropped."""
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    out = []
    for raw in text.splitlines():
        line = raw.strip()
        if line and not line.startswith("#"):
            keyword, _, rest = line.partition(" ")
            out.append((keyword.upper(), rest.strip()))
    return out


def _instruction(name: str) -> str:
    found = [rest for keyword, rest in _dockerfile() if keyword == name]
    assert found, f"the Dockerfile has no {name}"
    return found[-1]  # the last one is the one that counts


def _unit() -> dict[str, list[tuple[str, str]]]:
    return _sections(UNIT)


def _sections(path: Path) -> dict[str, list[tuple[str, str]]]:
    """A systemd unit's (or drop-in's) sections, each a list of (key, value): keys
    may repeat."""
    sections: dict[str, list[tuple[str, str]]] = {}
    current: list[tuple[str, str]] = []
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("[") and line.endswith("]"):
            current = sections.setdefault(line[1:-1], [])
        else:
            key, _, value = line.partition("=")
            current.append((key.strip(), value.strip()))
    return sections


def unit_values(section: str, key: str) -> list[str]:
    return [v for k, v in _unit().get(section, []) if k == key]


def unit_value(section: str, key: str) -> str | None:
    values = unit_values(section, key)
    return values[-1] if values else None


def image_argv() -> list[str]:
    entrypoint = json.loads(_instruction("ENTRYPOINT"))
    cmd = json.loads(_instruction("CMD"))
    assert entrypoint == ["bilge"], "the image's ENTRYPOINT must be bilge alone"
    return [*entrypoint[1:], *cmd]


def _systemd_argv() -> list[str]:
    exec_start = shlex.split(unit_value("Service", "ExecStart") or "")
    assert exec_start and exec_start[0].endswith("/bilge"), exec_start
    return exec_start[1:]


def _compose_argv() -> list[str]:
    svc = service(COMPOSE)
    assert "entrypoint" not in svc, "compose keeps the image's ENTRYPOINT (bilge)"
    return list(svc["command"])


def _kubernetes_argv() -> list[str]:
    container = guard_container()
    assert "command" not in container, "the DaemonSet keeps the image's ENTRYPOINT (bilge)"
    return list(container["args"])


def command_line(where: str) -> list[str]:
    """What a deployment passes to bilge: its arguments, without `bilge`.
    (The swarm entrypoint's `exec bilge "$@"` is tested on its own below.)"""
    sources = {
        "Dockerfile": image_argv,
        "systemd": _systemd_argv,
        "compose": _compose_argv,
        "swarm": lambda: list(service(STACK)["command"]),
        "kubernetes": _kubernetes_argv,
    }
    return sources[where]()


DEPLOYMENTS = ("Dockerfile", "compose", "kubernetes", "swarm", "systemd")
CONTAINERS = ("Dockerfile", "compose", "kubernetes", "swarm")


@pytest.mark.parametrize("where", DEPLOYMENTS)
def test_each_command_line_uses_only_bilge_watch_options(where: str) -> None:
    args = contract_parse(command_line(where))
    host, _, port = (args.metrics_addr or "").rpartition(":")
    assert port == str(PORT), f"{where}: metrics on {args.metrics_addr}, not port {PORT}"
    # In a container 127.0.0.1 cannot be scraped from outside; on a host the
    # metrics stay on loopback unless someone decides otherwise.
    assert host == ("0.0.0.0" if where in CONTAINERS else "127.0.0.1"), where
    assert args.state_dir in (None, STATE_DIR), f"{where}: state outside {STATE_DIR}"
    assert args.config in (None, CONFIG), f"{where}: config outside {CONFIG}"
    assert not args.once, f"{where}: a guard that runs --once does not guard"


@pytest.mark.parametrize("where", DEPLOYMENTS)
def test_each_command_line_parses_with_bilge_itself(where: str) -> None:
    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    if "watch" not in sub.choices:
        pytest.skip("this bilge has no `watch` command yet; checked against the contract only")
    try:
        args = parser.parse_args(command_line(where))
    except SystemExit:
        pytest.fail(f"{where}: bilge rejects {command_line(where)}")
    assert args.command == "watch"


# --- systemd -------------------------------------------------------------------


def test_the_unit_has_the_hardening_and_ordering_asked_for() -> None:
    expected = {
        "Type": "simple",
        "Restart": "on-failure",
        "StateDirectory": "bilge",
        "ProtectSystem": "strict",
        "NoNewPrivileges": "yes",
        "ProtectHome": "yes",
        "PrivateTmp": "yes",
        "EnvironmentFile": "-/etc/bilge/bilge.env",
    }
    for key, value in expected.items():
        assert unit_value("Service", key) == value, f"[Service] {key}={value}"
    for key in ("After", "Wants"):
        assert "docker.service" in " ".join(unit_values("Unit", key)).split(), key
    assert unit_value("Install", "WantedBy") == "multi-user.target"
    # StateDirectory=bilge is /var/lib/bilge for a system unit.
    state_directory = unit_value("Service", "StateDirectory") or ""
    assert f"/var/lib/{state_directory}" == STATE_DIR


def test_the_unit_can_still_reach_the_socket_and_read_the_data_root() -> None:
    assert unit_value("Service", "User") in (None, "root"), "the socket and data-root are root's"
    assert unit_value("Service", "PrivateNetwork") in (None, "no"), "metrics and webhooks"
    assert unit_value("Service", "RootDirectory") is None
    families = (unit_value("Service", "RestrictAddressFamilies") or "AF_UNIX").split()
    assert "AF_UNIX" in families, "the engine's socket is a unix socket"
    caps = (unit_value("Service", "CapabilityBoundingSet") or "CAP_DAC_OVERRIDE").split()
    assert "CAP_DAC_OVERRIDE" in caps, "reading every container user's files in the data-root"
    for key in ("InaccessiblePaths", "TemporaryFileSystem"):
        hidden = " ".join(unit_values("Service", key)).split()
        for path in hidden:
            target = path.lstrip("-+").split(":")[0]
            for needed in (SOCKET, "/run/docker.sock", DATA_ROOT):
                assert not needed.startswith(target), f"{key}={path} hides {needed}"
    for path in " ".join(unit_values("Service", "ReadWritePaths")).split():
        assert path.lstrip("-") in (DATA_ROOT, STATE_DIR), f"ReadWritePaths={path}"


def test_systemd_analyze_verifies_the_unit(tmp_path: Path) -> None:
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze is not installed (Debian package `systemd`)")
    # verify insists that ExecStart's program exists: point it at one that does.
    exe = shutil.which("bilge") or sys.executable
    unit = tmp_path / UNIT.name
    unit.write_text(re.sub(r"^(ExecStart=)\S+", rf"\g<1>{exe}", UNIT.read_text(), flags=re.M))
    result = subprocess.run(
        [analyze, "verify", "--man=no", str(unit)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    output = result.stdout + result.stderr
    # Unknown keys and bad values are only warnings (exit 0): any line about
    # our unit is a failure. Lines about other units (docker.service) are not ours.
    ours = [line for line in output.splitlines() if UNIT.name in line]
    assert result.returncode == 0 and not ours, output


# --- the image -----------------------------------------------------------------


def test_the_dockerfile_is_multi_stage_on_python_3_11_slim() -> None:
    args = dict(
        rest.split("=", 1) for keyword, rest in _dockerfile() if keyword == "ARG" and "=" in rest
    )
    froms = [rest.split()[0] for keyword, rest in _dockerfile() if keyword == "FROM"]
    assert len(froms) >= 2, "multi-stage: build tools stay out of the final image"
    for image in froms:
        resolved = re.sub(r"\$\{(\w+)\}", lambda m: args.get(m.group(1), ""), image)
        assert resolved == "python:3.11-slim", image
    runs = " ".join(rest for keyword, rest in _dockerfile() if keyword == "RUN")
    assert re.search(r"pip .*install .*--no-cache-dir", runs), "pip leaves no cache in layers"
    assert _instruction("USER") == "root", "the socket is root's (say so, run as root)"


def test_the_healthcheck_fetches_metrics_on_the_cmd_port() -> None:
    args = contract_parse(image_argv())
    port = args.metrics_addr.rpartition(":")[2]
    assert _instruction("EXPOSE") == port
    check = _instruction("HEALTHCHECK")
    assert f"127.0.0.1:{port}/metrics" in check and "urllib.request" in check, check


class _Metrics(http.server.BaseHTTPRequestHandler):
    status = 200

    def do_GET(self) -> None:
        self.send_response(self.status if self.path == "/metrics" else 404)
        self.end_headers()
        self.wfile.write(b"bilge_evictions_total 0\n")

    def log_message(self, format: str, *args: object) -> None:
        pass


class _Broken(_Metrics):
    status = 500


@pytest.mark.parametrize(("handler", "healthy"), [(_Metrics, True), (_Broken, False)])
def test_the_healthcheck_command_tells_up_from_down(handler: type[_Metrics], healthy: bool) -> None:
    check = _instruction("HEALTHCHECK")
    argv = json.loads(check[check.index("CMD") + 3 :])
    assert argv[0] == "python", "the slim image has no curl; its Python does it"
    with http.server.HTTPServer(("127.0.0.1", 0), handler) as server:
        threading.Thread(target=server.serve_forever, args=(0.02,), daemon=True).start()
        code = argv[-1].replace(f":{PORT}/", f":{server.server_address[1]}/")
        result = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, timeout=30, check=False
        )
        server.shutdown()
    assert (result.returncode == 0) is healthy, result.stderr


def _ignored(path: str, patterns: list[str]) -> bool:
    return any(fnmatch(path, p) or path.startswith(p.rstrip("/") + "/") for p in patterns)


def test_the_dockerignore_keeps_local_state_out_but_not_the_sources() -> None:
    patterns = [
        line.strip()
        for line in DOCKERIGNORE.read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    for local in (".venv", ".sandbox", ".git", ".pytest_cache", ".mypy_cache", ".ruff_cache"):
        assert _ignored(local, patterns), f".dockerignore lets {local} into the context"
    assert _ignored("src/bilge/__pycache__", patterns)
    copied = [
        src
        for keyword, rest in _dockerfile()
        if keyword == "COPY" and "--from" not in rest
        for src in rest.split()[:-1]
    ]
    assert copied, "the Dockerfile copies nothing from the context"
    for src in copied:
        assert (ROOT / src).exists(), f"COPY {src}: no such file in the repository"
        assert not _ignored(src, patterns), f"COPY {src}, which .dockerignore excludes"
    readme = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["readme"]
    assert readme in copied, f"pyproject.toml's readme ({readme}) is needed to build"


# --- compose and swarm -----------------------------------------------------------


def mounts(svc: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Volumes by target. Long syntax only: a missing bind source is then an
    error, where the short syntax silently creates an empty directory."""
    out = {}
    for volume in svc["volumes"]:
        assert isinstance(volume, dict), f"use the long syntax: {volume}"
        out[volume["target"]] = volume
    return out


@pytest.mark.parametrize("path", [COMPOSE, STACK], ids=["compose", "swarm"])
def test_compose_and_swarm_mount_the_engine_at_the_same_paths(path: Path) -> None:
    by_target = mounts(service(path))
    sock, root = by_target[SOCKET], by_target[DATA_ROOT]
    assert (sock["type"], sock["source"]) == ("bind", SOCKET)
    assert not sock.get("read_only", False), "bilge removes objects through the socket"
    assert (root["type"], root["source"]) == ("bind", DATA_ROOT), "same path as on the host"
    assert root.get("read_only") is True, "read-only unless logs or orphans are enabled"
    assert root.get("bind", {}).get("propagation") == "rslave"
    assert by_target[STATE_DIR]["type"] == "volume"


def test_compose_publishes_metrics_on_loopback_and_restarts() -> None:
    svc = service(COMPOSE)
    assert svc["restart"] == "unless-stopped"
    assert svc["ports"] == [f"127.0.0.1:{PORT}:{PORT}"]
    config = mounts(svc)[CONFIG]
    assert (config["type"], config["source"], config.get("read_only")) == ("bind", CONFIG, True)
    assert svc["stop_grace_period"], "time to finish the removal in flight"


def test_the_swarm_service_is_global_with_limits_and_no_routing_mesh() -> None:
    doc = load_yaml(STACK)
    assert str(doc["version"]).startswith("3."), "docker stack deploy before Docker 22"
    svc = doc["services"]["bilge"]
    deploy = svc["deploy"]
    assert deploy["mode"] == "global"
    assert {"cpus", "memory"} <= set(deploy["resources"]["limits"])
    assert {"cpus", "memory"} <= set(deploy["resources"]["reservations"])
    assert "ports" not in svc, "the ingress mesh would send scrapes to any node's guard"
    assert [c["target"] for c in svc["configs"]] == [CONFIG]


def test_the_swarm_entrypoint_exports_the_secret_and_execs_bilge(tmp_path: Path) -> None:
    svc = service(STACK)
    secret = svc["secrets"][0]["target"]
    shell, flag, script, zero = svc["entrypoint"]
    assert (shell, flag, zero) == ("/bin/sh", "-c", "bilge")
    # `$$` is how a stack file writes `$`; then run it with a stand-in bilge.
    (tmp_path / "secrets").mkdir()
    (tmp_path / "secrets" / secret).write_text("https://hooks.invalid/T0KEN")
    fake = tmp_path / "bin" / "bilge"
    fake.parent.mkdir()
    fake.write_text('#!/bin/sh\nprintf "%s\\n" "$BILGE_WEBHOOK_URL" "$@"\n')
    fake.chmod(0o755)
    script = script.replace("$$", "$").replace("/run/secrets/", f"{tmp_path}/secrets/")
    env = {**os.environ, "PATH": f"{fake.parent}:{os.environ['PATH']}"}
    result = subprocess.run(
        [shell, flag, script, zero, *svc["command"]],
        capture_output=True,
        text=True,
        env=env,
        timeout=30,
        check=True,
    )
    assert result.stdout.splitlines() == ["https://hooks.invalid/T0KEN", *svc["command"]]


# --- Kubernetes ------------------------------------------------------------------


def test_every_kubernetes_document_is_complete_and_in_the_bilge_namespace() -> None:
    docs = kubernetes_docs()
    assert {d["kind"] for d in docs} == {"Namespace", "ConfigMap", "Secret", "DaemonSet"}
    for doc in docs:
        assert doc.get("apiVersion") and doc.get("kind") and doc["metadata"].get("name"), doc
        if doc["kind"] != "Namespace":
            assert doc["metadata"].get("namespace") == "bilge", doc["metadata"]["name"]
    daemonset = kubernetes_doc("DaemonSet")
    selector = daemonset["spec"]["selector"]["matchLabels"]
    assert selector.items() <= daemonset["spec"]["template"]["metadata"]["labels"].items()


def _host_paths() -> dict[str, tuple[str, bool]]:
    """mountPath -> (the node's path, read-only) for the guard's hostPath mounts."""
    volumes = {v["name"]: v for v in pod_spec()["volumes"]}
    out = {}
    for mount in guard_container()["volumeMounts"]:
        host_path = volumes[mount["name"]].get("hostPath")
        if host_path:
            out[mount["mountPath"]] = (host_path["path"], bool(mount.get("readOnly")))
    return out


def test_the_daemonset_mounts_the_socket_and_data_root_at_the_same_path() -> None:
    paths = _host_paths()
    assert paths[SOCKET] == (SOCKET, False), "read-write: bilge removes through the socket"
    assert paths[DATA_ROOT] == (DATA_ROOT, True), "same path as on the node, read-only"
    assert paths[STATE_DIR] == (STATE_DIR, False), "state on the node survives the pod"
    mount = next(m for m in guard_container()["volumeMounts"] if m["mountPath"] == DATA_ROOT)
    assert mount.get("mountPropagation") == "HostToContainer"


def test_the_daemonset_runs_on_docker_nodes_everywhere_and_is_scrapable() -> None:
    spec = pod_spec()
    assert spec["nodeSelector"]["bilge.io/docker-runtime"] == "true"
    assert {"operator": "Exists"} in spec["tolerations"], "every taint, every node"
    container = guard_container()
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert PORT in ports.values()
    annotations = kubernetes_doc("DaemonSet")["spec"]["template"]["metadata"]["annotations"]
    assert annotations["prometheus.io/scrape"] == "true"
    assert annotations["prometheus.io/port"] == str(PORT)
    for probe in ("livenessProbe", "readinessProbe"):
        get = container[probe]["httpGet"]
        assert get["path"] == "/metrics" and ports.get(get["port"], get["port"]) == PORT
    for bound in ("requests", "limits"):
        assert {"cpu", "memory"} <= set(container["resources"][bound]), bound


def test_the_configmap_holds_a_valid_policy_mounted_where_bilge_looks() -> None:
    data = kubernetes_doc("ConfigMap")["data"]
    policy = parse_policy(data["bilge.toml"], "daemonset.yaml: bilge.toml")
    assert policy.watch.webhook_url == "", "the URL is a secret, not configuration"
    volumes = {v["name"]: v for v in pod_spec()["volumes"]}
    mount = next(m for m in guard_container()["volumeMounts"] if "configMap" in volumes[m["name"]])
    configmap = volumes[mount["name"]]["configMap"]["name"]
    assert configmap == kubernetes_doc("ConfigMap")["metadata"]["name"]
    assert f"{mount['mountPath']}/bilge.toml" == CONFIG and mount.get("readOnly")


def test_the_webhook_url_is_a_secret_in_every_deployment() -> None:
    env = {e["name"]: e for e in guard_container()["env"]}
    ref = env[WEBHOOK_ENV]["valueFrom"]["secretKeyRef"]
    secret = kubernetes_doc("Secret")
    assert ref["name"] == secret["metadata"]["name"]
    assert ref["key"] in secret.get("stringData", {}) | secret.get("data", {})
    assert ref.get("optional") is True, "the guard runs without webhooks too"
    assert secret.get("stringData", {}).get(ref["key"], "") == "", "no real URL in the repo"
    assert service(COMPOSE)["environment"][WEBHOOK_ENV].startswith("${" + WEBHOOK_ENV)
    assert WEBHOOK_ENV in service(STACK)["entrypoint"][2], "exported from the swarm secret"
    assert unit_value("Service", "EnvironmentFile") == "-/etc/bilge/bilge.env"
    for path in (UNIT, COMPOSE, STACK, KUBERNETES, DOCKERFILE):
        for line in path.read_text().splitlines():
            if not line.lstrip().startswith("#"):
                assert "webhook_url =" not in line, f"{path.name}: {line}"


# --- Prometheus and Grafana ------------------------------------------------------


def rules() -> list[dict[str, Any]]:
    doc = load_yaml(ALERTS)
    assert isinstance(doc.get("groups"), list) and doc["groups"], "groups: a list of groups"
    out = []
    for group in doc["groups"]:
        assert group.get("name") and isinstance(group.get("rules"), list), group
        out.extend(group["rules"])
    return out


def metric_names(text: str) -> set[str]:
    return set(re.findall(r"\bbilge_[a-z0-9_]+", text))


def promql_labels(expr: str) -> set[str]:
    """Label names an expression matches on or groups by."""
    names = set()
    for group in re.findall(r"\b(?:by|on|without|ignoring)\s*\(([^)]*)\)", expr):
        names |= {n.strip() for n in group.split(",") if n.strip()}
    for selector in re.findall(r"\{([^{}]*)\}", expr):
        names |= set(re.findall(r"(\w+)\s*(?:=~|!~|!=|=)", selector))
    return names


def _balanced(text: str) -> bool:
    depth = {"(": 0, "[": 0, "{": 0}
    closing = {")": "(", "]": "[", "}": "{"}
    for ch in text:
        if ch in depth:
            depth[ch] += 1
        elif ch in closing:
            depth[closing[ch]] -= 1
            if depth[closing[ch]] < 0:
                return False
    return not any(depth.values())


def test_every_rule_has_the_shape_prometheus_expects() -> None:
    allowed = {"alert", "expr", "for", "labels", "annotations", "keep_firing_for"}
    for rule in rules():
        name = rule.get("alert")
        assert name and {"alert", "expr", "for", "labels", "annotations"} <= set(rule), rule
        assert set(rule) <= allowed, f"{name}: unknown keys {set(rule) - allowed}"
        assert re.fullmatch(r"\d+[smhdwy]", str(rule["for"])), f"{name}: for {rule['for']}"
        assert rule["labels"].get("severity") in ("warning", "critical"), name
        assert _balanced(rule["expr"]), f"{name}: unbalanced brackets"
        for key in ("summary", "description"):
            text = rule["annotations"].get(key, "")
            assert text and text.count("{{") == text.count("}}"), f"{name}: {key}"
        assert "$labels." in rule["annotations"]["summary"] + rule["annotations"]["description"]


@pytest.mark.parametrize("name", sorted(REQUIRED_ALERTS))
def test_the_required_alerts_are_there(name: str) -> None:
    by_name = {rule["alert"]: rule for rule in rules()}
    assert name in by_name, f"no alert {name}"
    fragment, duration = REQUIRED_ALERTS[name]
    expr = " ".join(by_name[name]["expr"].split())
    assert fragment in expr, f"{name}: {expr}"
    if duration:
        assert by_name[name]["for"] == duration


def test_the_rules_use_only_bilge_metrics_and_labels() -> None:
    text = ALERTS.read_text()
    assert metric_names(text) <= METRICS, metric_names(text) - METRICS
    for rule in rules():
        assert promql_labels(rule["expr"]) <= LABELS, rule["alert"]
        annotations = " ".join(rule["annotations"].values())
        assert set(re.findall(r"\$labels\.(\w+)", annotations)) <= LABELS, rule["alert"]


def _promtool() -> str:
    tool = shutil.which("promtool")
    if tool is None:
        pytest.skip("promtool is not installed; the rules' structure is checked above")
    return tool


def test_promtool_checks_the_rules() -> None:
    result = subprocess.run(
        [_promtool(), "check", "rules", str(ALERTS)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr


def dashboard() -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(DASHBOARD.read_text())
    return doc


def targets() -> Iterator[tuple[dict[str, Any], dict[str, Any]]]:
    for panel in dashboard()["panels"]:
        for target in panel.get("targets", []):
            yield panel, target


def test_the_dashboard_has_the_datasource_and_host_variables() -> None:
    doc = dashboard()
    assert doc["schemaVersion"] >= 36 and doc["uid"] and doc["title"]
    variables = {v["name"]: v for v in doc["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    host = variables["host"]
    assert host["type"] == "query"
    assert host["definition"] == "label_values(bilge_filesystem_size_bytes, host)"


def test_every_panel_queries_the_chosen_datasource_and_hosts() -> None:
    for panel, target in targets():
        for where in (panel, target):
            assert where["datasource"]["uid"] == "${datasource}", panel["title"]
        assert 'host=~"$host"' in target["expr"], f"{panel['title']}: ignores $host"


def test_the_dashboard_charts_every_bilge_metric_and_nothing_else() -> None:
    text = DASHBOARD.read_text()
    assert metric_names(text) <= METRICS, metric_names(text) - METRICS
    charted = metric_names(text)
    assert charted >= METRICS, f"not charted: {METRICS - charted}"
    for panel, target in targets():
        assert promql_labels(target["expr"]) <= LABELS, panel["title"]
        legend = set(re.findall(r"\{\{\s*(\w+)\s*\}\}", target.get("legendFormat", "")))
        assert legend <= LABELS, panel["title"]


def test_the_dashboard_has_the_panels_asked_for() -> None:
    wanted = [
        ("gauge", "bilge_filesystem_used_bytes"),
        ("gauge", "bilge_filesystem_used_inodes"),
        ("timeseries", "bilge_filesystem_used_bytes"),
        ("timeseries", "bilge_reclaimable_bytes"),
        ("timeseries", "rate(bilge_removals_total"),
        ("timeseries", "rate(bilge_freed_bytes_total"),
        ("timeseries", "bilge_evictions_total"),
        ("stat", "bilge_last_sample_timestamp_seconds"),
        ("timeseries", "bilge_errors_total"),
    ]
    have = [(panel["type"], target["expr"]) for panel, target in targets()]
    for kind, fragment in wanted:
        assert any(k == kind and fragment in e for k, e in have), f"no {kind} of {fragment}"
    reclaimable = next(p for p, t in targets() if "bilge_reclaimable_bytes" in t["expr"])
    stacking = reclaimable["fieldConfig"]["defaults"]["custom"]["stacking"]["mode"]
    assert stacking == "normal", "reclaimable bytes by kind are stacked"


def test_the_dashboard_layout_has_no_overlaps() -> None:
    cells: set[tuple[int, int]] = set()
    ids = [panel["id"] for panel in dashboard()["panels"]]
    assert len(ids) == len(set(ids)), "panel ids are unique"
    for panel in dashboard()["panels"]:
        g = panel["gridPos"]
        assert g["x"] + g["w"] <= 24, panel["title"]
        xs, ys = range(g["x"], g["x"] + g["w"]), range(g["y"], g["y"] + g["h"])
        area = {(x, y) for x in xs for y in ys}
        assert not area & cells, f"{panel['title']} overlaps another panel"
        cells |= area


def test_promtool_parses_the_dashboard_queries(tmp_path: Path) -> None:
    tool = _promtool()
    # Grafana's variables become what they mean, then each query a recording rule.
    values = {"$__rate_interval": "5m", "$host": ".*", "$instance": ".*"}
    records = []
    for n, (_, target) in enumerate(targets()):
        expr = target["expr"]
        for variable, value in values.items():
            expr = expr.replace(variable, value)
        records.append({"record": f"dashboard:query_{n}", "expr": expr})
    path = tmp_path / "dashboard-rules.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": records}]}))
    result = subprocess.run(
        [tool, "check", "rules", str(path)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr


# --- docs ------------------------------------------------------------------------


def test_the_docs_cover_every_deployment_file_and_the_scrape_job() -> None:
    docs = DOCS.read_text()
    for path in sorted(p for p in DEPLOY.rglob("*") if p.is_file()):
        assert str(path.relative_to(ROOT)) in docs, f"docs/deploy.md does not mention {path}"
    # The rules' BilgeDown and BilgeNeverSampled select job="bilge".
    assert 'job="bilge"' in ALERTS.read_text()
    assert docs.count("job_name: bilge") >= 3, "a scrape config per kind of deployment"


# --- Podman ----------------------------------------------------------------------


def test_the_podman_drop_in_points_the_guard_at_podmans_socket() -> None:
    from bilge.engine.hosts import resolve_host

    drop_in = _sections(DEPLOY / "systemd" / "bilge-watch.service.d" / "podman.conf")
    assert ("After", "podman.socket") in drop_in["Unit"]
    assert ("Wants", "podman.socket") in drop_in["Unit"]
    env = dict(v.split("=", 1) for k, v in drop_in["Service"] if k == "Environment")
    assert resolve_host(None, env) == "unix:///run/podman/podman.sock"


def test_the_rootless_user_unit_runs_bilge_watch_with_its_own_options() -> None:
    unit = _sections(DEPLOY / "systemd" / "bilge-watch-rootless.service")
    (exec_start,) = [v for k, v in unit["Service"] if k == "ExecStart"]
    argv = shlex.split(exec_start)
    assert argv[0].endswith("/bilge")
    args = build_parser().parse_args(argv[1:])
    assert args.command == "watch"
    assert ("WantedBy", "default.target") in unit["Install"]
    assert ("After", "podman.socket") in unit["Unit"]
