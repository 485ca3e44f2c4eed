"""The incident from the README, replayed for real, and bilge getting the service back.

A "couchdb" service writes documents into its named volume couchdb-data; the engine's
data-root fills with exited and created containers, the volumes they left behind,
dangling volumes and unbounded logs until the service's writes fail with "No space
left on device". bilge, with its state dir on that very filesystem, diagnoses it
(`doctor`) and fixes it (`apply --yes`); the service writes again, and every byte it
had written before is unchanged. Once on a disk full of bytes (ext4), once on one out
of inodes (tmpfs).

The first tests check the replay harness itself (demo/incident.py) without bilge: the
tmpfs sandbox, the probes and checksums, and that `fill` really ends in ENOSPC (and
that Docker's own prune then brings the service back).
"""

from __future__ import annotations

import hashlib
import io
import json
import secrets
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import incident
import pytest

from tests.integration.bilge_cli import Run
from tests.integration.helpers import Sandbox

#: Grace periods of zero (the clutter is seconds old), and json-file logs cut to 1 MB.
POLICY = """
[containers]
exited_after = "0s"
created_after = "0s"
[volumes]
anonymous_after = "0s"
[images]
dangling_after = "0s"
unused_after = "0s"
[build_cache]
keep_storage = "0B"
unused_after = "0s"
[networks]
unused_after = "0s"
[logs]
max_size = "1MB"
"""
MAX_LOG = 1_000_000
#: What the ticker may log between bilge's truncation and the test's look at it.
LOG_SLACK = 64 * 1024
#: The bilge command of the virtual environment running the tests (.venv/bin/bilge).
BILGE = Path(sys.executable).with_name("bilge")
#: The clutter bilge must remove, by role (see incident.fill); "logs-running" stays.
REMOVED_ROLES = frozenset({"exited-job", "created", "logs-exited", "filler"})
#: Findings whose trigger the replay's clutter is.
FLAGGED = ("exited-containers", "dangling-volumes", "logs-unbounded")
SEVERITIES = frozenset({"ok", "warning", "critical"})


@dataclass(frozen=True)
class Bilge:
    """`.venv/bin/bilge -c POLICY --state-dir STATE ...` against one sandbox."""

    sb: Sandbox
    config: Path
    state_dir: Path

    def __call__(self, *args: str) -> Run:
        argv = [str(BILGE), "-c", str(self.config), "--state-dir", str(self.state_dir), *args]
        proc = subprocess.run(
            argv,
            capture_output=True,
            text=True,
            env=self.sb.environ({"COLUMNS": "200"}),
            timeout=600,
            check=False,
        )
        return Run(proc.returncode, proc.stdout, proc.stderr)


@pytest.fixture
def bilge_on(tmp_path: Path) -> Iterator[Callable[[Sandbox], Bilge]]:
    """bilge for a sandbox, its policy in tmp_path and its state dir on the sandbox's
    data-root filesystem, the one that fills up (made beforehand, as a package makes
    /var/lib/bilge; removed afterwards)."""
    made: list[Path] = []

    def make(sb: Sandbox) -> Bilge:
        state = sb.data_root.parent / f"bilge-state-{secrets.token_hex(4)}"
        state.mkdir()
        made.append(state)
        config = tmp_path / "bilge.toml"
        config.write_text(POLICY)
        return Bilge(sb, config, state)

    yield make
    for path in made:
        shutil.rmtree(path, ignore_errors=True)


# --- helpers --------------------------------------------------------------------------


def _containers_by_role(sb: Sandbox) -> dict[str, list[str]]:
    """Every container as "name:state", by its clutter role ("" for the service)."""
    fmt = f'{{{{.Label "{incident.LABEL}"}}}} {{{{.Names}}}}:{{{{.State}}}}'
    roles: dict[str, list[str]] = {}
    for line in sb.docker("ps", "-a", "--format", fmt).stdout.splitlines():
        role, _, name = line.partition(" ")
        roles.setdefault(role, []).append(name)
    return roles


def _state(sb: Sandbox, container: str) -> str:
    return sb.docker("inspect", "-f", "{{.State.Status}}", container).stdout.strip()


def _log_size(sb: Sandbox, container: str) -> int:
    return Path(sb.docker("inspect", "-f", "{{.LogPath}}", container).stdout.strip()).stat().st_size


def _dangling_volumes(sb: Sandbox) -> set[str]:
    return set(sb.docker("volume", "ls", "-q", "--filter", "dangling=true").stdout.split())


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _assert_unchanged(before: incident.Manifest, after: incident.Manifest) -> None:
    """Every file of `before` is in `after` with the same content (files written since
    may be there too)."""
    changed = sorted(path for path, digest in before.items() if after.get(path) != digest)
    assert not changed, f"changed or missing: {changed[:10]}"
    assert incident.digest(after, before) == incident.digest(before)


def _fill_until_writes_fail(sb: Sandbox, mode: incident.Mode) -> incident.FillReport:
    """Fill the data-root; the service's writes now fail with ENOSPC, its reads work."""
    env = sb.environ()
    report = incident.fill(env, mode, root=sb.data_root)
    usage = incident.Usage.of(sb.data_root)
    assert incident.is_full(usage, mode), (usage, report)
    ok, error = incident.write_probe(env)
    assert not ok
    assert incident.ENOSPC_TEXT in error
    ok, text = incident.read_probe(env)
    assert ok, text
    return report


def _service_writes_again(sb: Sandbox) -> None:
    env = sb.environ()
    ok, text = incident.write_probe(env)
    assert ok, text
    # Not only the probe: the service's own loop writes new documents again.
    incident.wait_for_documents(env, len(incident.documents(env)) + 2, timeout=15)


# --- the harness ----------------------------------------------------------------------


def test_tmpfs_sandbox_is_overlay2_with_an_inode_limit(inode_sandbox: Sandbox) -> None:
    info = json.loads(inode_sandbox.docker("info", "--format", "{{json .}}").stdout)
    assert info["Driver"] == "overlay2"
    assert ["Backing Filesystem", "tmpfs"] in info["DriverStatus"]
    assert ["Supports d_type", "true"] in info["DriverStatus"]
    mnt = inode_sandbox.dir / "mnt"
    assert inode_sandbox.data_root == mnt / "docker"
    mount = next(
        line.split()
        for line in Path("/proc/self/mountinfo").read_text().splitlines()
        if line.split()[4] == str(mnt)
    )
    assert mount[mount.index("-") + 1] == "tmpfs"
    assert "nr_inodes=4000" in mount[-1].split(",")
    assert incident.Usage.of(inode_sandbox.data_root).total_inodes == 4000


def test_service_probes_and_checksums(incident_engine: Sandbox) -> None:
    env = incident_engine.environ()
    service = incident.start_service(env)
    assert incident.start_service(env) == service  # reused, not started twice
    assert _state(incident_engine, incident.SERVICE) == "running"
    ok, text = incident.write_probe(env, "upload-test.json")
    assert ok, text
    ok, text = incident.read_probe(env)
    assert ok, text
    assert text.splitlines()[1].startswith('{"_id":"avatar-000001"')

    through_service = incident.volume_manifest(env, incident.VOLUME)
    from_root = incident.volume_manifest(env, incident.VOLUME, incident_engine.data_root)
    # Read a moment later, when the service has written more: the files both saw agree.
    _assert_unchanged(through_service, from_root)
    for path in ("./_dbs.couch", "./attachments/avatar-1.png", "./docs/avatar-000001.json"):
        assert path in through_service
    doc = incident.write_probe_argv("upload-test.json")[-2]
    assert through_service["./docs/upload-test.json"] == _sha256(f"{doc}\n".encode())
    assert incident.checksum_volume(env, incident.VOLUME) != incident.digest({})

    # One changed byte, or one missing file, changes the digest.
    tampered = dict(through_service, **{"./_dbs.couch": _sha256(b"other")})
    assert incident.digest(tampered) != incident.digest(through_service)
    assert incident.digest({}, through_service) != incident.digest(through_service)


def test_fill_bytes_ends_in_enospc_and_docker_prune_recovers(incident_engine: Sandbox) -> None:
    sb = incident_engine
    env = sb.environ()
    incident.start_service(env)
    report = _fill_until_writes_fail(sb, "bytes")
    assert incident.Usage.of(sb.data_root).free_bytes == 0
    assert "no space left on device" in report.engine_error.lower()
    before = incident.volume_manifest(env, incident.VOLUME)

    roles = _containers_by_role(sb)
    assert len(roles["exited-job"]) == 6
    assert all(c.endswith(":exited") for r in ("exited-job", "filler") for c in roles[r])
    assert all(c.endswith(":created") for c in roles["created"])
    assert roles["logs-running"] == ["ticker:running"]
    # Every container that exited had its exit recorded: only these two still run.
    running = sb.docker("ps", "--format", "{{.Names}}").stdout.split()
    assert sorted(running) == ["couchdb", "ticker"]
    assert _log_size(sb, "chatty") > 20_000_000
    log_config = sb.docker("inspect", "-f", "{{json .HostConfig.LogConfig}}", "ticker")
    assert json.loads(log_config.stdout) == {"Type": "json-file", "Config": {}}
    assert len(_dangling_volumes(sb)) >= 4 + 3  # left by `docker rm`, and created

    # Docker's own prune (only here: on API 1.41 it takes unused named volumes too, and
    # couchdb-data is in use) makes room, and the service's data is intact.
    sb.docker("container", "prune", "-f")
    sb.docker("volume", "prune", "-f")
    _service_writes_again(sb)
    _assert_unchanged(before, incident.volume_manifest(env, incident.VOLUME))


#: Stands in for bilge in the harness's own test of the replay: `apply` is Docker's
#: prune (which on API 1.41 takes unused named volumes too: couchdb-data is in use).
DOCKER_PRUNE = """#!/bin/sh
case " $* " in
*" apply "*) /usr/bin/docker container prune -f && /usr/bin/docker volume prune -f ;;
*" doctor --json"*) echo '{"findings": [{"id": "disk-inodes", "severity": "critical"}]}' ;;
*) echo "stand-in for bilge: $*" ;;
esac
"""


def test_replay_inodes_ends_in_enospc_and_docker_prune_recovers(
    inode_engine: Sandbox, tmp_path: Path
) -> None:
    stand_in = tmp_path / "bilge"
    stand_in.write_text(DOCKER_PRUNE)
    stand_in.chmod(0o755)
    out = io.StringIO()
    r = incident.replay(inode_engine.environ(), [str(stand_in)], mode="inodes", out=out)
    text = out.getvalue()
    assert r.recovered, text
    assert r.full is not None
    assert r.full.free_inodes == 0
    assert r.full.free_bytes > r.full.total_bytes // 2
    assert incident.ENOSPC_TEXT in r.failed_write
    assert r.findings == ["critical disk-inodes"]
    assert r.removed["containers"] >= 6 + 4 + 1
    for step in ("\n$ bilge doctor\n", "\n$ bilge apply --yes\n", "\n$ bilge status\n"):
        assert step in text
    assert text.rstrip().endswith("The incident is over.")


# --- the incident, and bilge ----------------------------------------------------------


def _findings(run: Run) -> dict[str, dict[str, Any]]:
    assert run.code == 0, run.err
    doc = run.json()
    assert doc["schema"] == 1
    assert doc["kind"] == "doctor"
    assert isinstance(doc["host"], str)
    findings = {f["id"]: f for f in doc["findings"]}
    for f in findings.values():
        assert f["severity"] in SEVERITIES
        assert isinstance(f["title"], str)
        assert isinstance(f["evidence"], dict)
        assert isinstance(f["fix"], str)
    return findings


def _check_diagnosis(findings: dict[str, dict[str, Any]], mode: incident.Mode) -> None:
    if mode == "bytes":
        assert findings["disk-bytes"]["severity"] == "critical"
    else:
        inodes = findings["disk-inodes"]
        assert inodes["severity"] == "critical"
        assert "inode" in inodes["title"].lower()  # bytes are free: inodes are the cause
    for finding in FLAGGED:
        assert findings[finding]["severity"] != "ok", findings[finding]


def _check_apply(sb: Sandbox, bilge: Bilge, run: Run) -> None:
    """apply freed the clutter, truncated the running log, kept the service, and its
    audit records reached the state store on the once full disk."""
    assert run.code == 0, run.err
    outcome = run.json()
    assert outcome["kind"] == "outcome"
    assert outcome["counts"]["failed"] == 0
    # The state store started on the full disk: it warned, kept the records in memory.
    assert "bilge: warning:" in run.err
    roles = _containers_by_role(sb)
    assert not REMOVED_ROLES & roles.keys(), roles
    assert roles[""] == ["couchdb:running"]
    assert roles["logs-running"] == ["ticker:running"]
    assert _log_size(sb, "ticker") <= MAX_LOG + LOG_SLACK
    assert not _dangling_volumes(sb)

    removed = {a["id"] for a in outcome["actions"] if a["outcome"] == "removed"}
    assert removed
    history = bilge("history", "--json", "--limit", "1000")
    assert history.code == 0, history.err
    recorded = {e["object_id"] for e in history.json()["entries"] if e["outcome"] == "removed"}
    assert removed <= recorded
    assert (bilge.state_dir / "bilge.db").is_file()


def _replay_with_bilge(sb: Sandbox, bilge: Bilge, mode: incident.Mode) -> None:
    env = sb.environ()
    service = incident.start_service(env)
    _fill_until_writes_fail(sb, mode)
    before = incident.volume_manifest(env, incident.VOLUME)
    assert _log_size(sb, "ticker") > MAX_LOG

    _check_diagnosis(_findings(bilge("doctor", "--json")), mode)
    _check_apply(sb, bilge, bilge("apply", "--yes", "--json"))

    _service_writes_again(sb)
    _assert_unchanged(before, incident.volume_manifest(env, incident.VOLUME))
    assert sb.docker("volume", "ls", "-q").stdout.split() == [incident.VOLUME]
    assert sb.docker("inspect", "-f", "{{.Id}}", incident.SERVICE).stdout.strip() == service
    after = _findings(bilge("doctor", "--json"))
    assert after["disk-bytes" if mode == "bytes" else "disk-inodes"]["severity"] != "critical"


def test_incident_disk_full_bilge_brings_the_service_back(
    incident_engine: Sandbox, bilge_on: Callable[[Sandbox], Bilge]
) -> None:
    _replay_with_bilge(incident_engine, bilge_on(incident_engine), "bytes")


def test_incident_inodes_exhausted_bilge_brings_the_service_back(
    inode_engine: Sandbox, bilge_on: Callable[[Sandbox], Bilge]
) -> None:
    _replay_with_bilge(inode_engine, bilge_on(inode_engine), "inodes")


def test_the_incident_replays_on_podman_and_bilge_brings_the_service_back(
    podman_incident_sandbox: Sandbox, bilge_on: Callable[[Sandbox], Bilge]
) -> None:
    """`make demo ENGINE=podman`: the same replay on a private Podman service whose
    storage is a 256 MB disk: the writes fail with ENOSPC (Podman's own database is on
    that disk too), bilge frees the clutter, the service writes again, data intact."""
    bilge = bilge_on(podman_incident_sandbox)
    out = io.StringIO()
    argv = [str(BILGE), "-c", str(bilge.config), "--state-dir", str(bilge.state_dir)]
    r = incident.replay(podman_incident_sandbox.environ(), argv, out=out)
    assert r.recovered, out.getvalue()[-3000:]
    assert "no space left on device" in r.failed_write.lower()
    assert "Podman 4" in out.getvalue()
    assert r.removed.get("containers", 0) >= 10 and r.removed.get("volumes", 0) >= 10, r.removed
