"""Parsing and paging logic of the registry client, on a fake transport.

Only what a real registry cannot be made to do on demand is tested here (a
Link to another host, a registry that ignores `last`, a wrong digest, odd
challenges); the client's behaviour against a real registry is tested in
tests/integration/test_registry_*.py.
"""

from __future__ import annotations

import base64
import hashlib
import json
import stat
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from bilge.errors import ConfigError
from bilge.registry.auth import (
    Credentials,
    find_credentials,
    parse_challenge,
    scope_of,
)
from bilge.registry.client import RegistryClient
from bilge.registry.errors import (
    RegistryDenied,
    RegistryError,
    RegistryReadOnly,
)
from bilge.registry.manifests import parse_manifest
from bilge.registry.model import DOCKER_MANIFEST, OCI_INDEX
from bilge.registry.policy import RegistryConfig

Handler = Callable[[httpx.Request], httpx.Response]


def client(handler: Handler, tmp_path: Path, page_size: int = 2) -> RegistryClient:
    config = RegistryConfig(url="https://registry.test")
    env = {"DOCKER_CONFIG": str(tmp_path), "HOME": str(tmp_path)}
    return RegistryClient(
        config, env=env, transport=httpx.MockTransport(handler), page_size=page_size
    )


def test_catalog_follows_link_headers(tmp_path: Path) -> None:
    pages = {
        None: (["a", "b"], '</v2/_catalog?last=b&n=2>; rel="next"'),
        "b": (["c", "d"], '</v2/_catalog?last=d&n=2>; rel="next"'),
        "d": (["e"], None),
    }

    def handler(request: httpx.Request) -> httpx.Response:
        names, link = pages[request.url.params.get("last")]
        headers = {"Link": link} if link else {}
        return httpx.Response(200, json={"repositories": names}, headers=headers)

    assert client(handler, tmp_path).repositories() == ["a", "b", "c", "d", "e"]


def test_a_registry_ignoring_last_does_not_loop(tmp_path: Path) -> None:
    calls = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request.url)
        link = '</v2/app/tags/list?n=2&last=b>; rel="next"'
        return httpx.Response(200, json={"tags": ["a", "b"]}, headers={"Link": link})

    assert client(handler, tmp_path).tags("app") == ["a", "b"]
    assert len(calls) == 2  # the second page brought nothing new


def test_tags_null_and_gone_repository(tmp_path: Path) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if "gone" in request.url.path:
            return httpx.Response(404, json={"errors": [{"code": "NAME_UNKNOWN"}]})
        return httpx.Response(200, json={"name": "app", "tags": None})

    c = client(handler, tmp_path)
    assert c.tags("app") == []
    assert c.tags("gone") == []


def test_link_to_another_host_is_refused(tmp_path: Path) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        link = '<https://elsewhere.test/v2/_catalog?last=a>; rel="next"'
        return httpx.Response(200, json={"repositories": ["a"]}, headers={"Link": link})

    with pytest.raises(RegistryError, match="next page on another host"):
        client(handler, tmp_path).repositories()


def test_manifest_must_match_its_digest(tmp_path: Path) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=b"{}", headers={"Content-Type": DOCKER_MANIFEST})

    with pytest.raises(RegistryError, match="content does not match its digest"):
        client(handler, tmp_path).manifest("app", "sha256:" + "0" * 64)


def test_head_without_digest_header_hashes_the_manifest(tmp_path: Path) -> None:
    body = b'{"schemaVersion": 2}'

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=b"" if request.method == "HEAD" else body)

    resolved = client(handler, tmp_path).resolve("app", "v1")
    assert resolved is not None
    assert resolved.digest == "sha256:" + hashlib.sha256(body).hexdigest()


def test_every_manifest_type_is_accepted(tmp_path: Path) -> None:
    seen: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.headers["accept"])
        return httpx.Response(404)

    assert client(handler, tmp_path).resolve("app", "v1") is None
    assert OCI_INDEX in seen[0]
    assert "manifest.list.v2+json" in seen[0]


@pytest.mark.parametrize(
    ("status", "error", "text"),
    [
        (405, RegistryReadOnly, "(405): deletes disabled or registry read-only"),
        (403, RegistryDenied, "boom): the credentials lack the 'delete' permission"),
        (401, RegistryDenied, "log in with `docker login registry.test`"),
        (500, RegistryError, "(500: UNKNOWN boom)"),
    ],
)
def test_delete_errors_are_one_clear_line(
    tmp_path: Path, status: int, error: type[Exception], text: str
) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(status, json={"errors": [{"code": "UNKNOWN", "message": "boom"}]})

    with pytest.raises(error) as raised:
        client(handler, tmp_path).delete_manifest("app", "sha256:" + "0" * 64)
    assert text in str(raised.value)
    assert "\n" not in str(raised.value)


def test_delete_of_a_gone_manifest_is_false(tmp_path: Path) -> None:
    c = client(lambda r: httpx.Response(404), tmp_path)
    assert c.delete_manifest("app", "sha256:" + "0" * 64) is False


@pytest.mark.parametrize(
    ("header", "scheme", "params"),
    [
        (
            'Bearer realm="https://auth.test/token",service="reg",scope="repository:a/b:pull,push"',
            "bearer",
            {"realm": "https://auth.test/token", "service": "reg",
             "scope": "repository:a/b:pull,push"},
        ),
        ('Basic realm="Registry Realm"', "basic", {"realm": "Registry Realm"}),
        ("bearer realm=https://x/t, service=s", "bearer", {"realm": "https://x/t", "service": "s"}),
    ],
)  # fmt: skip
def test_challenges(header: str, scheme: str, params: dict[str, str]) -> None:
    challenge = parse_challenge(header)
    assert challenge is not None
    assert challenge.scheme == scheme
    assert dict(challenge.params) == params


@pytest.mark.parametrize(
    ("method", "path", "scope"),
    [
        ("GET", "/v2/_catalog?n=10", "registry:catalog:*"),
        ("HEAD", "/v2/team/app/manifests/v1", "repository:team/app:pull"),
        ("DELETE", "/v2/app/manifests/sha256:0", "repository:app:delete"),
        ("POST", "/v2/app/blobs/uploads/", "repository:app:pull,push"),
        ("GET", "/v2/", ""),
    ],
)
def test_scope_of_requests(method: str, path: str, scope: str) -> None:
    assert scope_of(httpx.Request(method, f"https://r.test{path}")) == scope


def docker_config(tmp_path: Path, doc: object) -> dict[str, str]:
    (tmp_path / "config.json").write_text(json.dumps(doc))
    return {"DOCKER_CONFIG": str(tmp_path), "PATH": str(tmp_path)}


def test_credentials_from_auths(tmp_path: Path) -> None:
    auth = base64.b64encode(b"alice:s3cr:et").decode()
    env = docker_config(tmp_path, {"auths": {"https://r.test:5000/v1/": {"auth": auth}}})
    assert find_credentials("r.test:5000", env) == Credentials("alice", "s3cr:et")
    assert find_credentials("other.test", env) is None


def test_no_docker_config_is_anonymous(tmp_path: Path) -> None:
    assert find_credentials("r.test", {"DOCKER_CONFIG": str(tmp_path / "none")}) is None


def test_bad_docker_config_is_one_line(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text("{not json")
    with pytest.raises(ConfigError, match=r"config.json: not JSON"):
        find_credentials("r.test", {"DOCKER_CONFIG": str(tmp_path)})


def helper(tmp_path: Path, name: str, script: str) -> None:
    path = tmp_path / f"docker-credential-{name}"
    path.write_text(f"#!/bin/sh\n{script}\n")
    path.chmod(path.stat().st_mode | stat.S_IXUSR)


def test_credential_helper_is_asked_with_the_host(tmp_path: Path) -> None:
    helper(
        tmp_path,
        "fake",
        'read host; [ "$1" = get ] && [ "$host" = r.test ] && '
        'echo \'{"ServerURL":"r.test","Username":"bob","Secret":"pw"}\'',
    )
    env = docker_config(tmp_path, {"credHelpers": {"r.test": "fake"}})
    assert find_credentials("r.test", env) == Credentials("bob", "pw")


def test_credential_helper_without_entry_falls_back_to_auths(tmp_path: Path) -> None:
    helper(tmp_path, "store", "echo credentials not found in native keychain; exit 1")
    auth = base64.b64encode(b"carol:pw").decode()
    env = docker_config(tmp_path, {"credsStore": "store", "auths": {"r.test": {"auth": auth}}})
    assert find_credentials("r.test", env) == Credentials("carol", "pw")


def test_missing_credential_helper_is_one_line(tmp_path: Path) -> None:
    env = docker_config(tmp_path, {"credsStore": "nonexistent"})
    with pytest.raises(RegistryError, match=r"docker-credential-nonexistent .* not on PATH"):
        find_credentials("r.test", env)


def test_bearer_flow_asks_for_the_scope_the_registry_names(tmp_path: Path) -> None:
    auth = base64.b64encode(b"alice:pw").decode()
    env = docker_config(tmp_path, {"auths": {"registry.test": {"auth": auth}}})
    token_requests: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.host == "auth.test":
            token_requests.append(request)
            scope = request.url.params["scope"]
            return httpx.Response(200, json={"token": f"t-{scope}"})
        wanted = f"repository:app:{'delete' if request.method == 'DELETE' else 'pull'}"
        if request.headers.get("authorization") == f"Bearer t-{wanted}":
            return httpx.Response(202 if request.method == "DELETE" else 200, json={"tags": []})
        challenge = f'Bearer realm="https://auth.test/token",service="reg",scope="{wanted}"'
        return httpx.Response(401, headers={"WWW-Authenticate": challenge})

    c = RegistryClient(
        RegistryConfig(url="https://registry.test"),
        env=env,
        transport=httpx.MockTransport(handler),
    )
    assert c.tags("app") == []
    assert c.tags("app") == []  # the token is reused: no new token request
    assert c.delete_manifest("app", "sha256:" + "0" * 64)
    scopes = [r.url.params["scope"] for r in token_requests]
    assert scopes == ["repository:app:pull", "repository:app:delete"]
    assert token_requests[0].headers["authorization"] == f"Basic {auth}"


def test_index_manifest_is_parsed() -> None:
    child = {"mediaType": DOCKER_MANIFEST, "digest": "sha256:" + "1" * 64, "size": 5}
    nested = {"mediaType": OCI_INDEX, "digest": "sha256:" + "2" * 64, "size": 5}
    body = json.dumps({"schemaVersion": 2, "manifests": [child, nested]}).encode()
    m = parse_manifest("r: app@x", "sha256:x", OCI_INDEX, body)
    assert m.is_index
    assert m.children == (child["digest"], nested["digest"])
    assert m.nested == (nested["digest"],)


@pytest.mark.parametrize(
    ("doc", "text"),
    [
        ({"config": {"digest": "md5:x", "size": 1}}, "config.digest 'md5:x' is not a sha256"),
        (
            {"config": {"digest": "sha256:" + "1" * 64, "size": -1}},
            "config.size -1 is not a size",
        ),
        ({"config": {"digest": "sha256:" + "1" * 64, "size": 1}, "layers": {}}, "layers is not"),
    ],
)
def test_bad_manifests_are_one_line(doc: dict[str, object], text: str) -> None:
    with pytest.raises(RegistryError, match=text):
        parse_manifest("r: app@x", "sha256:x", DOCKER_MANIFEST, json.dumps(doc).encode())


def test_unknown_media_type_is_unsupported_not_an_error() -> None:
    m = parse_manifest("r: a@x", "sha256:x", "application/vnd.odd+json", b"{}")
    assert not m.supported
