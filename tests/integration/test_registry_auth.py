"""Authentication and TLS against real registries: htpasswd (Basic), a token server
(Bearer, run here), a credential helper, and a registry serving TLS from a test CA.

Credentials only ever come from the Docker config the test writes for bilge.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from bilge.registry.auth import Credentials
from tests.integration.registry_helpers import (
    BilgeRegistry,
    Pusher,
    Registry,
    TokenServer,
    basic_auth_entry,
    days_ago,
    htpasswd,
    make_tls,
    policy,
    registry_dir,
    start_registry,
)

__all__ = ["registry_dir"]  # fixture

RULE = '[[registry.rules]]\nrepositories = "*"\nkeep_recent = 1\n'


def push_versions(pusher: Pusher, repo: str = "team/app") -> None:
    for tag, days in (("v1", 30), ("v2", 20), ("v3", 10)):
        pusher.image(repo, tag, created=days_ago(days), size=512)


@pytest.fixture
def basic(registry_dir: Path) -> Iterator[Registry]:
    path = htpasswd(registry_dir / "htpasswd", {"alice": "wonderland"})
    reg = start_registry(
        registry_dir / "basic", auth={"htpasswd": {"realm": "bilge-test", "path": str(path)}}
    )
    with Pusher(reg.url, Credentials("alice", "wonderland")) as p:
        push_versions(p)
    yield reg
    reg.stop()


def test_basic_auth_from_the_docker_config(basic: Registry, tmp_path: Path) -> None:
    bilge = BilgeRegistry(tmp_path).policy(policy(basic.url, RULE))
    bilge.docker_config = basic_auth_entry(basic.host, "alice", "wonderland")
    run = bilge("registry", "apply", "--yes", "--json")
    assert run.code == 0, run.err
    assert run.json()["counts"]["removed"] == 2


def test_without_credentials_it_says_how_to_log_in(basic: Registry, tmp_path: Path) -> None:
    bilge = BilgeRegistry(tmp_path).policy(policy(basic.url, RULE))
    run = bilge("registry", "plan", process=True)
    assert run.code == 1
    assert run.err == (
        f"bilge: error: registry {basic.host}: not authorized to read /v2/ "
        f"(401: UNAUTHORIZED authentication required): log in with `docker login {basic.host}`\n"
    )


def test_wrong_password_is_refused(basic: Registry, tmp_path: Path) -> None:
    bilge = BilgeRegistry(tmp_path).policy(policy(basic.url, RULE))
    bilge.docker_config = basic_auth_entry(basic.host, "alice", "looking-glass")
    run = bilge("registry", "plan")
    assert run.code == 1
    assert "not authorized to read /v2/ (401" in run.err


def test_a_credential_helper_supplies_the_password(
    basic: Registry, tmp_path: Path, registry_dir: Path
) -> None:
    bin_dir = registry_dir / "bin"
    bin_dir.mkdir()
    helper = bin_dir / "docker-credential-bilgetest"
    helper.write_text(
        "#!/bin/sh\n"
        f'read host; [ "$1" = get ] && [ "$host" = "{basic.host}" ] || exit 1\n'
        'echo \'{"ServerURL": "x", "Username": "alice", "Secret": "wonderland"}\'\n'
    )
    helper.chmod(0o755)
    bilge = BilgeRegistry(tmp_path, path=(bin_dir,)).policy(policy(basic.url, RULE))
    bilge.docker_config = {"credHelpers": {basic.host: "bilgetest"}}
    run = bilge("registry", "plan", "--json")
    assert run.code == 0, run.err
    assert len(run.json()["deletions"]) == 2


@pytest.fixture
def token(registry_dir: Path) -> Iterator[tuple[Registry, TokenServer]]:
    users = {
        "admin": ("admin-pw", frozenset({"pull", "push", "delete", "catalog"})),
        "reader": ("reader-pw", frozenset({"pull", "catalog"})),
    }
    server = TokenServer(registry_dir, users)
    reg = start_registry(registry_dir / "token", auth=server.registry_auth())
    try:
        with Pusher(reg.url, Credentials("admin", "admin-pw")) as p:
            push_versions(p)
        server.requests.clear()
        yield reg, server
    finally:
        reg.stop()
        server.close()


def test_token_flow_gets_a_new_token_for_each_new_scope(
    token: tuple[Registry, TokenServer], tmp_path: Path
) -> None:
    reg, server = token
    bilge = BilgeRegistry(tmp_path).policy(policy(reg.url, RULE))
    bilge.docker_config = basic_auth_entry(reg.host, "admin", "admin-pw")
    run = bilge("registry", "apply", "--yes", "--json")
    assert run.code == 0, run.err
    assert run.json()["counts"]["removed"] == 2
    scopes = [tuple(s) for user, s in server.requests]
    assert {user for user, _ in server.requests} == {"admin"}
    assert ("registry:catalog:*",) in scopes
    assert ("repository:team/app:pull",) in scopes
    assert ("repository:team/app:delete",) in scopes
    # tokens are reused: one per scope (and /v2/ itself), not one per request
    assert len(scopes) <= 5


def test_token_without_delete_names_the_missing_permission(
    token: tuple[Registry, TokenServer], tmp_path: Path
) -> None:
    reg, _ = token
    bilge = BilgeRegistry(tmp_path).policy(policy(reg.url, RULE))
    bilge.docker_config = basic_auth_entry(reg.host, "reader", "reader-pw")
    run = bilge("registry", "apply", "--yes", "--json")
    assert run.code == 3, run.err
    details = {d["outcome"]: d["detail"] for d in run.json()["deletions"]}
    assert set(details) == {"failed"}
    assert "not authorized to delete team/app@sha256:" in details["failed"]
    assert "lack the 'delete' permission" in details["failed"]
    with Pusher(reg.url, Credentials("admin", "admin-pw")) as p:
        assert p.tags("team/app") == ["v1", "v2", "v3"]


def test_token_server_refusing_the_credentials(
    token: tuple[Registry, TokenServer], tmp_path: Path
) -> None:
    reg, server = token
    bilge = BilgeRegistry(tmp_path).policy(policy(reg.url, RULE))
    bilge.docker_config = basic_auth_entry(reg.host, "admin", "wrong")
    run = bilge("registry", "plan")
    assert run.code == 1
    assert run.err.strip() == (
        f"bilge: error: token server {server.realm} refused the credentials from the docker "
        "config (401); run `docker login` for this registry"
    )


def test_tls_is_verified_with_the_configured_ca(registry_dir: Path, tmp_path: Path) -> None:
    tls = make_tls(registry_dir)
    reg = start_registry(registry_dir / "tls", tls=tls)
    try:
        with Pusher(reg.url, ca=tls.ca) as p:
            push_versions(p)
        bilge = BilgeRegistry(tmp_path).policy(policy(reg.url, RULE))
        run = bilge("registry", "plan")
        assert run.code == 1
        assert "TLS certificate not verified (set ca_bundle for this registry)" in run.err
        bilge.policy(policy(reg.url, RULE, extra=f'ca_bundle = "{tls.ca}"'))
        run = bilge("registry", "plan", "--json")
        assert run.code == 0, run.err
        assert len(run.json()["deletions"]) == 2
    finally:
        reg.stop()
