"""`bilge registry gc` against a real registry whose config and storage it reaches.

The registry is restarted by its own restart script (what `[registry.gc] restart`
names). A push racing the collection is a real `docker push` from a private engine
(scripts/sandbox-engine), started from a wrapper around the registry binary just
before `garbage-collect` runs.
"""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.helpers import Sandbox, build_image, start_sandbox, stop_sandbox
from tests.integration.registry_helpers import (
    REGISTRY_BIN,
    BilgeRegistry,
    Pushed,
    Pusher,
    Registry,
    days_ago,
    policy,
    registry,
    registry_dir,
)

__all__ = ["registry", "registry_dir"]  # fixtures

RULE = '[[registry.rules]]\nrepositories = "app"\nkeep_recent = 1\n'


@pytest.fixture(scope="module")
def engine() -> Iterator[Sandbox]:
    """A private Docker engine, to push with the real docker client."""
    directory = Path(tempfile.mkdtemp(prefix="registry-engine-"))
    try:
        yield start_sandbox(directory)
    finally:
        stop_sandbox(directory)


def gc_table(reg: Registry, binary: Path | str = REGISTRY_BIN, restart: str = "") -> str:
    return f'config = "{reg.config}"\nrestart = "{restart or reg.restart}"\nbinary = "{binary}"'


def setup(
    reg: Registry, tmp_path: Path, **gc: str | Path
) -> tuple[BilgeRegistry, dict[str, Pushed]]:
    with Pusher(reg.url) as p:
        base = p.blob("app", os.urandom(4096))
        images = {
            tag: p.image("app", tag, created=days_ago(days), size=64 * 1024, layers=(base,))
            for tag, days in (("v1", 30), ("v2", 20), ("v3", 10))
        }
    bilge = BilgeRegistry(tmp_path).policy(policy(reg.url, RULE, gc=gc_table(reg, **gc)))
    return bilge, images


def storage_files(reg: Registry) -> dict[str, int]:
    return {
        str(p.relative_to(reg.storage)): p.stat().st_size
        for p in reg.storage.rglob("*")
        if p.is_file()
    }


def intact(reg: Registry, image: Pushed) -> bool:
    with Pusher(reg.url) as p:
        return p.exists("app", image.digest) and all(
            p.blob_exists("app", b) for b, _ in image.blobs
        )


def test_dry_run_reports_and_changes_nothing(registry: Registry, tmp_path: Path) -> None:
    bilge, images = setup(registry, tmp_path)
    assert bilge("registry", "apply", "--yes").code == 0
    before, config = storage_files(registry), registry.config.read_bytes()

    run = bilge("registry", "gc", "--dry-run", "--json")
    assert run.code == 0, run.err
    doc = run.json()
    assert (doc["kind"], doc["dry_run"], doc["registry_version"]) == ("registry-gc", True, "2.8.2")
    expected = {b for tag in ("v1", "v2") for b, _ in images[tag].blobs[:1] + images[tag].blobs[2:]}
    expected |= {images["v1"].digest, images["v2"].digest}
    assert set(doc["blobs"]) == expected
    assert doc["bytes_eligible"] >= 2 * 64 * 1024
    assert doc["freed_bytes_measured"] is None
    assert storage_files(registry) == before
    assert registry.config.read_bytes() == config


def test_gc_frees_what_apply_unreferenced_and_restores_the_registry(
    registry: Registry, tmp_path: Path
) -> None:
    bilge, images = setup(registry, tmp_path)
    predicted = bilge("registry", "apply", "--yes", "--json").json()["removed_bytes_predicted"]
    config = registry.config.read_bytes()
    inode = registry.config.stat().st_ino

    run = bilge("registry", "gc", "--yes", "--json")
    assert run.code == 0, run.err
    doc = run.json()
    assert len(doc["blobs"]) == 6
    # Disk blocks: at least the blobs' bytes, at most a few blocks more per blob.
    assert predicted <= doc["freed_bytes_measured"] <= predicted + 6 * 3 * 4096
    assert doc["freed_bytes_measured"] == doc["bytes_eligible"] or doc["freed_bytes_measured"] > 0
    assert registry.config.read_bytes() == config
    assert registry.config.stat().st_ino == inode
    assert not Path(f"{registry.config}.bilge-backup").exists()
    assert intact(registry, images["v3"])
    assert not intact(registry, images["v1"])
    with Pusher(registry.url) as p:  # writable again
        p.image("app", "after-gc", created=days_ago(0))

    entries = bilge("history", "--json").json()["entries"]
    (entry,) = [e for e in entries if e["kind"] == "registry-gc"]
    assert entry["outcome"] == "removed"
    assert entry["detail"].startswith("6 blobs deleted")


def test_a_push_during_gc_is_refused_not_corrupted(
    registry: Registry, registry_dir: Path, tmp_path: Path, engine: Sandbox
) -> None:
    build_image(engine, f"{registry.host}/app:pushed", size=256 * 1024)
    env = engine.environ()
    wrapper = registry_dir / "registry-with-a-push"
    wrapper.write_text(
        "#!/bin/sh\n"
        'if [ "$1" = garbage-collect ]; then\n'
        f"    DOCKER_HOST={env['DOCKER_HOST']} DOCKER_CONFIG={env['DOCKER_CONFIG']} "
        f"/usr/bin/docker push {registry.host}/app:pushed >{registry_dir}/push.log 2>&1\n"
        f"    echo $? >{registry_dir}/push.rc\n"
        "fi\n"
        f'exec {REGISTRY_BIN} "$@"\n'
    )
    wrapper.chmod(0o755)
    bilge, images = setup(registry, tmp_path, binary=wrapper)
    assert bilge("registry", "apply", "--yes").code == 0

    run = bilge("registry", "gc", "--yes", process=True)
    assert run.code == 0, run.err
    assert "Freed" in run.out
    assert (registry_dir / "push.rc").read_text().strip() != "0", "the push was not refused"
    assert "pushed" not in Pusher(registry.url).tags("app")
    assert intact(registry, images["v3"])

    # Writable again: the same push now succeeds and its image is whole.
    pushed = engine.docker("push", f"{registry.host}/app:pushed")
    digest = pushed.stdout.strip().splitlines()[-1].split("digest: ")[1].split()[0]
    with Pusher(registry.url) as p:
        manifest = json.loads(p.http.get(f"/v2/app/manifests/{digest}", headers={
            "Accept": "application/vnd.docker.distribution.manifest.v2+json"}).content)  # fmt: skip
        blobs = [manifest["config"]["digest"], *(layer["digest"] for layer in manifest["layers"])]
        assert all(p.blob_exists("app", b) for b in blobs)


def test_a_restart_that_restarts_nothing_stops_before_collecting(
    registry: Registry, tmp_path: Path
) -> None:
    bilge, _ = setup(registry, tmp_path, restart="true")
    assert bilge("registry", "apply", "--yes").code == 0
    before, config = storage_files(registry), registry.config.read_bytes()

    run = bilge("registry", "gc", "--yes")
    assert run.code == 1
    assert "the registry still accepts pushes after the restart" in run.err
    assert storage_files(registry) == before
    assert registry.config.read_bytes() == config
    assert not Path(f"{registry.config}.bilge-backup").exists()


def test_a_failed_collection_leaves_the_registry_writable_as_it_was(
    registry: Registry, registry_dir: Path, tmp_path: Path
) -> None:
    failing = registry_dir / "registry-failing"
    failing.write_text(
        f'#!/bin/sh\n[ "$1" = garbage-collect ] && {{ echo "disk on fire" >&2; exit 3; }}\n'
        f'exec {REGISTRY_BIN} "$@"\n'
    )
    failing.chmod(0o755)
    bilge, _ = setup(registry, tmp_path, binary=failing)
    config = registry.config.read_bytes()

    run = bilge("registry", "gc", "--yes")
    assert run.code == 1
    assert run.err.strip().endswith("failed (exit 3): disk on fire")
    assert registry.config.read_bytes() == config
    with Pusher(registry.url) as p:
        p.image("app", "still-writable", created=days_ago(0))
    (entry,) = [e for e in bilge("history", "--json").json()["entries"]]
    assert entry["outcome"] == "failed"


def test_delete_untagged_is_not_used_on_2_8(registry: Registry, tmp_path: Path) -> None:
    bilge, _ = setup(registry, tmp_path)
    text = (tmp_path / "bilge.toml").read_text() + "delete_untagged = true\n"
    run = bilge.policy(text)("registry", "gc", "--dry-run", "--json")
    assert run.code == 0, run.err
    doc = run.json()
    assert doc["delete_untagged"] is False
    assert doc["notes"][0].startswith("delete_untagged ignored: registry 2.8.2 would delete")


def test_gc_needs_yes_without_a_terminal(registry: Registry, tmp_path: Path) -> None:
    bilge, _ = setup(registry, tmp_path)
    config = registry.config.read_bytes()
    run = bilge("registry", "gc")
    assert run.code == 2
    assert "without --yes" in run.err
    assert registry.config.read_bytes() == config
    proc = subprocess.run(
        [str(REGISTRY_BIN), "--version"], capture_output=True, text=True, check=False
    )
    assert "2.8" in proc.stdout
