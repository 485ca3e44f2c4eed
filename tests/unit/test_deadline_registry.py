"""The registry client never hangs on a registry or its token server: each
request's whole answer has a deadline and a size limit. Against real servers on
127.0.0.1 (deadline_peers)."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from bilge.registry.client import RegistryClient
from bilge.registry.errors import RegistryError, RegistryUnreachable
from bilge.registry.policy import RegistryConfig
from tests.unit.deadline_peers import (
    Behaviour,
    Peer,
    close_midway,
    dribble,
    dribble_head,
    head,
    huge_announced,
    huge_chunked,
    never,
)

DIGEST = "sha256:" + "a" * 64
MANIFEST = f"/v2/team/app/manifests/{DIGEST}"
CATALOG = "/v2/_catalog"


@pytest.fixture
def peers() -> Iterator[list[Peer]]:
    made: list[Peer] = []
    yield made
    for peer in made:
        peer.close()


def _client(peers: list[Peer], behaviours: dict[str, Behaviour], tmp_path: Path) -> RegistryClient:
    peer = Peer(behaviours)
    peers.append(peer)
    env = {"DOCKER_CONFIG": str(tmp_path), "HOME": str(tmp_path)}
    return RegistryClient(RegistryConfig(url=peer.url), env=env, timeout=1)


@pytest.mark.parametrize("behaviour", [never, dribble, dribble_head])
def test_an_answer_that_does_not_come_whole_fails_at_the_deadline(
    peers: list[Peer], tmp_path: Path, behaviour: Behaviour
) -> None:
    client = _client(peers, {MANIFEST: behaviour}, tmp_path)
    started = time.monotonic()
    with pytest.raises(RegistryUnreachable) as caught:
        client.manifest("team/app", DIGEST)
    assert str(caught.value) == (
        f"registry {peers[0].url} did not answer within 1s (GET {MANIFEST})"
    )
    assert time.monotonic() - started < 10  # the dribbles take 20 s to finish


@pytest.mark.parametrize("behaviour", [huge_announced, huge_chunked])
def test_a_manifest_over_the_size_limit_is_refused(
    peers: list[Peer], tmp_path: Path, behaviour: Behaviour
) -> None:
    client = _client(peers, {MANIFEST: behaviour}, tmp_path)
    with pytest.raises(RegistryError) as caught:
        client.manifest("team/app", DIGEST)
    assert str(caught.value) == (
        f"registry {client.label}: cannot read team/app@{DIGEST}:"
        " the answer is larger than 4 MiB; refused"
    )


@pytest.mark.parametrize("behaviour", [huge_announced, huge_chunked])
def test_a_catalog_page_over_the_size_limit_is_refused(
    peers: list[Peer], tmp_path: Path, behaviour: Behaviour
) -> None:
    client = _client(peers, {CATALOG: behaviour}, tmp_path)
    with pytest.raises(RegistryError, match="list the catalog: the answer is larger than 64 MiB"):
        client.repositories()


def test_an_answer_cut_off_midway_is_one_line(peers: list[Peer], tmp_path: Path) -> None:
    client = _client(peers, {MANIFEST: close_midway}, tmp_path)
    with pytest.raises(RegistryUnreachable) as caught:
        client.manifest("team/app", DIGEST)
    message = str(caught.value)
    assert message.startswith(f"registry {peers[0].url}: cannot read team/app@{DIGEST}")
    assert "\n" not in message


def test_a_silent_token_server_fails_the_request_at_its_deadline(
    peers: list[Peer], tmp_path: Path
) -> None:
    token_server = Peer({"/token": never})
    peers.append(token_server)
    challenge = f'Bearer realm="{token_server.url}/token",service="test"'

    def unauthorized(conn: socket.socket, stop: threading.Event) -> None:
        body = json.dumps({"errors": [{"code": "UNAUTHORIZED", "message": "auth"}]}).encode()
        conn.sendall(
            head("401 Unauthorized", f"WWW-Authenticate: {challenge}",
                 f"Content-Length: {len(body)}") + body
        )  # fmt: skip

    client = _client(peers, {MANIFEST: unauthorized}, tmp_path)
    with pytest.raises(
        RegistryUnreachable, match=r"token server .*/token did not answer within 1s"
    ):
        client.manifest("team/app", DIGEST)


def test_a_huge_token_answer_is_refused(peers: list[Peer], tmp_path: Path) -> None:
    token_server = Peer({"/token": huge_chunked})
    peers.append(token_server)
    challenge = f'Bearer realm="{token_server.url}/token",service="test"'

    def behave(conn: socket.socket, stop: threading.Event) -> None:
        conn.sendall(
            head("401 Unauthorized", f"WWW-Authenticate: {challenge}", "Content-Length: 0")
        )

    client = _client(peers, {MANIFEST: behave}, tmp_path)
    with pytest.raises(
        RegistryError, match=r"token server .*/token: the answer is larger than 1 MiB"
    ):
        client.manifest("team/app", DIGEST)
