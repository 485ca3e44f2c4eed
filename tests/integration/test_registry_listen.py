"""`bilge registry listen` fed by the real registry's notifications (distribution 2.8.2).

The registry is configured as docs/registry.md says, notifying a listener that
runs as a user runs it (`python -m bilge registry listen`, a process of its
own, stopped by its pid). A pull through the registry's API must end up in
the state store, and a rule with keep_pulled_within then keeps that image.
"""

from __future__ import annotations

import json
import os
import secrets
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import yaml

from tests.integration.registry_helpers import (
    ACCEPT,
    REPO_ROOT,
    BilgeRegistry,
    Pusher,
    Registry,
    days_ago,
    free_port,
    policy,
    registry,
    registry_dir,
)

__all__ = ["registry", "registry_dir"]  # fixtures

TOKEN = secrets.token_hex(24)
RULE = (
    '[[registry.rules]]\nrepositories = "app"\nkeep_recent = 0\nolder_than = "1d"\n'
    'keep_pulled_within = "30d"\n'
)


def notify(reg: Registry, port: int) -> None:
    """The registry's config gets the notifications stanza of docs/registry.md."""
    settings = reg.settings()
    settings["notifications"] = {
        "events": {"includereferences": True},
        "endpoints": [
            {
                "name": "bilge",
                "url": f"http://127.0.0.1:{port}/",
                "headers": {"Authorization": [f"Bearer {TOKEN}"]},
                "timeout": "2s",
                "threshold": 10,
                "backoff": "1s",
                "ignoredmediatypes": ["application/octet-stream"],
            }
        ],
    }
    reg.config.write_text(yaml.safe_dump(settings))
    reg.start()


@pytest.fixture
def listener(
    tmp_path: Path, request: pytest.FixtureRequest
) -> Iterator[tuple[str, subprocess.Popen[str]]]:
    """A listener for the registry of the test's `registry` fixture, if any."""
    url = request.getfixturevalue("registry").url if "registry" in request.fixturenames else ""
    (tmp_path / "bilge.toml").write_text(policy(url or "http://127.0.0.1:5000", RULE))
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DOCKER_", "BILGE_"))}
    env |= {"PYTHONPATH": str(REPO_ROOT), "BILGE_NOTIFY_TOKEN": TOKEN}
    argv = [sys.executable, "-m", "bilge", "-c", str(tmp_path / "bilge.toml")]
    argv += ["--state-dir", str(tmp_path / "state"), "registry", "listen"]
    argv += ["--addr", f"127.0.0.1:{port}"]
    proc = subprocess.Popen(argv, env=env, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stderr is not None
        line = proc.stderr.readline()
        assert "listening on" in line, line
        yield f"http://127.0.0.1:{port}/", proc
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def pulls(state: Path) -> dict[tuple[str, str], str]:
    db = sqlite3.connect(state / "bilge.db")
    try:
        rows = db.execute("SELECT repository, digest, last_pulled FROM registry_pulls")
        return {(r, d): at for r, d, at in rows}
    except sqlite3.OperationalError:  # the listener is creating the store
        return {}
    finally:
        db.close()


def wait_for(state: Path, key: tuple[str, str], within: float = 60) -> None:
    """Notifications are sent asynchronously; wait until the pull is recorded."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if (state / "bilge.db").exists() and key in pulls(state):
            return
        time.sleep(0.1)
    raise AssertionError(f"pull of {key} never recorded")


def test_pulls_through_the_registry_keep_images(
    registry: Registry, tmp_path: Path, listener: tuple[str, subprocess.Popen[str]]
) -> None:
    url, proc = listener
    bilge = BilgeRegistry(tmp_path)
    with Pusher(registry.url) as p:
        images = {t: p.image("app", t, created=days_ago(100), size=4096) for t in ("a", "b", "c")}
    notify(registry, int(url.rsplit(":", 1)[1].strip("/")))

    got = httpx.get(f"{registry.url}/v2/app/manifests/a", headers={"Accept": ACCEPT})
    assert got.status_code == 200
    wait_for(tmp_path / "state", ("app", images["a"].digest))

    doc = bilge("registry", "plan", "--json").json()
    assert {d["tags"][0] for d in doc["deletions"]} == {"b", "c"}
    (kept,) = [k for k in doc["kept"] if k["tag"] == "a"]
    assert kept["reason"].startswith("pulled ") and "keep_pulled_within = 30d" in kept["reason"]
    assert proc.poll() is None


def test_bad_requests_are_refused_and_the_listener_goes_on(
    tmp_path: Path, listener: tuple[str, subprocess.Popen[str]]
) -> None:
    url, proc = listener
    events = "application/vnd.docker.distribution.events.v1+json"
    good = {"Authorization": f"Bearer {TOKEN}", "Content-Type": events}
    digest = "sha256:" + "a" * 64
    envelope = {
        "events": [
            {
                "action": "pull",
                "timestamp": "2026-01-01T00:00:00Z",
                "target": {
                    "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
                    "repository": "app",
                    "digest": digest,
                },
            }
        ]
    }
    body = json.dumps(envelope).encode()
    cases = [
        ({"Content-Type": events}, body, 401),
        ({**good, "Authorization": "Bearer wrong"}, body, 401),
        ({**good, "Authorization": f"Basic {TOKEN}"}, body, 401),
        (good, b"{not json", 400),
        (good, b'{"events": 3}', 400),
        (good, b"x" * (2 << 20), 413),
        ({**good, "Content-Type": "text/plain"}, body, 400),
    ]
    for headers, content, status in cases:
        answer = httpx.post(url, headers=headers, content=content)
        assert answer.status_code == status, (headers, content[:20], answer.text)
    assert httpx.get(url, headers=good).status_code == 405
    assert not (tmp_path / "state" / "bilge.db").exists() or not pulls(tmp_path / "state")

    assert httpx.post(url, headers=good, content=body).status_code == 200
    assert ("app", digest) in pulls(tmp_path / "state")
    assert proc.poll() is None
