"""Opening an engine, in pure code: Podman is told by its own ping and versioned
from /libpod/info (never its slow /version), Docker by its /version, a Podman
behind a proxy that hides libpod by its /version's components; the container
listing asked beside /info is used once; container removal speaks libpod's
`volumes`. Answers as Podman 4.3.1 and Docker 20.10 gave them."""

from __future__ import annotations

from typing import Any

import pytest

from bilge.engine import connect
from bilge.engine.docker import DockerEngine
from bilge.engine.podman import PodmanEngine
from bilge.errors import EngineError, EngineUnreachable
from tests.unit.test_podman import Recorded

PING = ("GET", "/v4.0.0/libpod/_ping")
INFO = ("GET", "/v4.0.0/libpod/info")
LISTING = ("GET", "/v4.0.0/libpod/containers/json")
LIBPOD_INFO = {
    "version": {"APIVersion": "4.3.1", "Version": "4.3.1"},
    "store": {"graphRoot": "/nonexistent/storage", "graphDriverName": "overlay"},
}
DOCKER_VERSION = {"ApiVersion": "1.41", "Version": "20.10.24", "Components": [{"Name": "Engine"}]}


def opened(
    monkeypatch: pytest.MonkeyPatch, answers: dict[tuple[str, str], tuple[int, Any]], **kw: Any
) -> tuple[DockerEngine, Recorded]:
    transport = Recorded(answers)
    monkeypatch.setattr(connect, "open_transport", lambda *a, **k: transport)
    return connect.open_engine(transport.host, **kw), transport


def test_podman_answers_its_own_ping_and_is_never_asked_its_version(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    engine, transport = opened(monkeypatch, {PING: (200, b"OK"), INFO: (200, LIBPOD_INFO)})
    assert isinstance(engine, PodmanEngine)
    assert engine.version()["Version"] == "4.3.1" and engine.api_version == "1.41"
    assert engine.info()["DockerRootDir"] == "/nonexistent/storage"
    assert [p for _, p, _ in transport.asked] == [PING[1], INFO[1]]  # /info once, no /version


def test_docker_does_not_know_libpods_ping_and_is_asked_its_version(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    answers = {PING: (400, {"message": "client version 4.0.0 is too new"}),
               ("GET", "/version"): (200, DOCKER_VERSION)}  # fmt: skip
    engine, _ = opened(monkeypatch, answers)
    assert type(engine) is DockerEngine and engine.version_answer["Version"] == "20.10.24"


def test_a_podman_hiding_libpod_is_told_by_its_version(monkeypatch: pytest.MonkeyPatch) -> None:
    version = {"ApiVersion": "1.41", "Version": "4.3.1",
               "Components": [{"Name": "Podman Engine", "Version": "4.3.1"}]}  # fmt: skip
    engine, _ = opened(
        monkeypatch, {PING: (403, b"forbidden"), ("GET", "/version"): (200, version)}
    )
    assert isinstance(engine, PodmanEngine)


@pytest.mark.parametrize("body", [b"nonsense", b"[1, 2]", b'{"version": 7}'])
def test_a_bad_info_at_opening_is_one_engine_error(
    monkeypatch: pytest.MonkeyPatch, body: bytes
) -> None:
    try:
        engine, _ = opened(monkeypatch, {PING: (200, b"OK"), INFO: (200, body)})
    except EngineError as exc:
        assert "info" in str(exc)
    else:
        assert engine.version()["Version"] == ""  # an info without a version says none


def test_an_engine_that_is_not_there_says_what_to_check(monkeypatch: pytest.MonkeyPatch) -> None:
    class Dead(Recorded):
        def request(self, method: str, path: str, params: Any = None) -> tuple[int, bytes]:
            raise EngineUnreachable("cannot connect to unix:///run/podman/podman.sock")

    monkeypatch.setattr(connect, "open_transport", lambda *a, **k: Dead({}))
    with pytest.raises(EngineUnreachable, match="is it running"):
        connect.open_engine("unix:///run/podman/podman.sock")


def test_the_listing_asked_at_opening_is_used_once(monkeypatch: pytest.MonkeyPatch) -> None:
    listed = [{"Id": "c1", "State": "exited"}]
    answers = {PING: (200, b"OK"), INFO: (200, LIBPOD_INFO), LISTING: (200, listed),
               ("GET", "/v1.41/containers/json"): (200, [{"Id": "c1", "Mounts": []}])}  # fmt: skip
    engine, transport = opened(monkeypatch, answers, list_containers=True)
    assert sum(p == LISTING[1] for _, p, _ in transport.asked) == 1  # beside /info
    engine.containers(size=False)
    assert sum(p == LISTING[1] for _, p, _ in transport.asked) == 1  # that one, used
    engine.containers(size=False)
    assert sum(p == LISTING[1] for _, p, _ in transport.asked) == 2  # then asked afresh


def test_a_listing_that_failed_at_opening_is_asked_again(monkeypatch: pytest.MonkeyPatch) -> None:
    class Flaky(Recorded):
        def request(self, method: str, path: str, params: Any = None) -> tuple[int, bytes]:
            if path == LISTING[1] and not any(p == LISTING[1] for _, p, _ in self.asked):
                self.asked.append((method, path, params))
                raise EngineError("list containers: the connection dropped")
            return super().request(method, path, params)

    transport = Flaky({PING: (200, b"OK"), INFO: (200, LIBPOD_INFO), LISTING: (200, []),
                       ("GET", "/v1.41/containers/json"): (200, [])})  # fmt: skip
    monkeypatch.setattr(connect, "open_transport", lambda *a, **k: transport)
    engine = connect.open_engine(transport.host, list_containers=True)
    assert engine.containers(size=False) == []
    assert sum(p == LISTING[1] for _, p, _ in transport.asked) == 2


def test_removal_asks_libpod_to_take_anonymous_volumes_by_its_own_word() -> None:
    transport = Recorded({("DELETE", "/v4.0.0/libpod/containers/c1"): (200, [{"Id": "c1"}])})
    engine = PodmanEngine(transport.host, transport=transport,  # type: ignore[arg-type]
                          version={"ApiVersion": "1.41"})  # fmt: skip
    engine.remove_container("c1", volumes=True)
    engine.remove_container("c1")
    sent = [params for _, _, params in transport.asked]
    assert sent == [
        {"volumes": "true", "force": "false", "depend": "false"},
        {"volumes": "false", "force": "false", "depend": "false"},
    ]
