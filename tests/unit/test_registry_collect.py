"""collect() against a registry that answers names with control characters.

distribution refuses such names in pushes, but a catalog or a tag list is
whatever the registry (or something in front of it) sends. A name no request
URL can carry (an ESC, a newline) is refused with one line that shows it
escaped; a name a URL can carry (a C1 control, a bidi override) is planned
like any other and shown escaped (test_registry_planner.py).
"""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from bilge.registry.client import RegistryClient
from bilge.registry.collect import collect, resolve_tags
from bilge.registry.errors import RegistryError
from bilge.registry.model import DOCKER_MANIFEST, RegistrySnapshot
from bilge.registry.policy import RegistryConfig

NOW = datetime(2026, 6, 1, tzinfo=UTC)
MANIFEST = json.dumps(
    {
        "schemaVersion": 2,
        "mediaType": DOCKER_MANIFEST,
        "config": {"mediaType": "application/json", "size": 2, "digest": "sha256:" + "a" * 64},
        "layers": [],
    }
).encode()
DIGEST = "sha256:" + hashlib.sha256(MANIFEST).hexdigest()


def fake_registry(catalog: list[str], tags: list[str]) -> httpx.MockTransport:
    """Every repository of `catalog` has `tags`, each pointing at one manifest."""

    def handler(request: httpx.Request) -> httpx.Response:
        path = request.url.path
        if path == "/v2/":
            return httpx.Response(200, json={})
        if path == "/v2/_catalog":
            return httpx.Response(200, json={"repositories": catalog})
        if path.endswith("/tags/list"):
            return httpx.Response(200, json={"tags": tags})
        if "/manifests/" in path:
            headers = {"Docker-Content-Digest": DIGEST, "Content-Type": DOCKER_MANIFEST}
            return httpx.Response(200, content=MANIFEST, headers=headers)
        return httpx.Response(404, json={"errors": [{"code": "NOT_FOUND"}]})

    return httpx.MockTransport(handler)


def collect_from(tmp_path: Path, catalog: list[str], tags: list[str]) -> RegistrySnapshot:
    config = RegistryConfig(url="https://registry.test")
    env = {"DOCKER_CONFIG": str(tmp_path), "HOME": str(tmp_path)}
    with RegistryClient(config, env=env, transport=fake_registry(catalog, tags)) as client:
        return collect(client, config, NOW)


@pytest.mark.parametrize(
    ("catalog", "tags", "shown"),
    [
        (["app", "evil\x1b]0;pwned\x07\x1b[2J"], ["1"], "evil\\x1b]0;pwned\\x07\\x1b[2J"),
        (["app/two\nlines"], ["1"], "app/two\\nlines"),
        (["app"], ["1", "v\x1b[2J\r"], "v\\x1b[2J\\r"),
    ],
)
def test_names_no_url_can_carry_are_refused_in_one_escaped_line(
    tmp_path: Path, catalog: list[str], tags: list[str], shown: str
) -> None:
    with pytest.raises(RegistryError) as caught:
        collect_from(tmp_path, catalog, tags)
    message = str(caught.value)
    assert shown in message and "control characters" in message
    assert "\n" not in message and "\x1b" not in message and "\r" not in message


def test_names_a_url_can_carry_are_read_like_any_other(tmp_path: Path) -> None:
    name, tag = "app\u202egnp", "v1\x9b"
    snap = collect_from(tmp_path, [name], [tag])
    (repo,) = snap.repositories
    assert (repo.name, dict(repo.tags)) == (name, {tag: DIGEST})


def test_a_saved_plan_naming_such_a_repository_is_refused_too(tmp_path: Path) -> None:
    config = RegistryConfig(url="https://registry.test")
    env = {"DOCKER_CONFIG": str(tmp_path), "HOME": str(tmp_path)}
    client = RegistryClient(config, env=env, transport=fake_registry([], []))
    with client, pytest.raises(RegistryError, match=r"repository \"app\\x1b\[2J\""):
        resolve_tags(client, "app\x1b[2J")
