"""The engine client never hangs on a peer: each request's whole answer has a
deadline and a size limit, and the event stream notices an engine that stopped
answering. Against real servers on a unix socket and on 127.0.0.1 (deadline_peers)."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from bilge.engine.docker import DockerEngine
from bilge.engine.sdkhttp import SdkHTTP
from bilge.engine.transport import TcpHTTP, UnixHTTP
from bilge.errors import EngineError
from tests.unit.deadline_peers import (
    Behaviour,
    Peer,
    answer,
    close_midway,
    dribble,
    dribble_head,
    head,
    huge_announced,
    huge_chunked,
    never,
)

VERSION = answer(json.dumps({"ApiVersion": "1.41"}).encode())
LIST = "/v1.41/containers/json"


@pytest.fixture(params=["unix", "tcp"])
def where(request: pytest.FixtureRequest, tmp_path: Path) -> str | None:
    return str(tmp_path / "engine.sock") if request.param == "unix" else None


@pytest.fixture
def peers() -> Iterator[list[Peer]]:
    made: list[Peer] = []
    yield made
    for peer in made:
        peer.close()


def _engine(peers: list[Peer], where: str | None, behaviour: Behaviour) -> DockerEngine:
    peer = Peer({"/version": VERSION, LIST: behaviour}, where)
    peers.append(peer)
    return DockerEngine(peer.host, timeout=1, max_answer=1 << 20)


@pytest.fixture(autouse=True)
def _no_tls(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DOCKER_TLS_VERIFY", raising=False)
    monkeypatch.delenv("DOCKER_CERT_PATH", raising=False)


@pytest.mark.parametrize("behaviour", [never, dribble, dribble_head])
def test_an_answer_that_does_not_come_whole_fails_at_the_deadline(
    peers: list[Peer], where: str | None, behaviour: Behaviour
) -> None:
    engine = _engine(peers, where, behaviour)
    started = time.monotonic()
    with pytest.raises(EngineError) as caught:
        engine.containers(size=False)
    assert str(caught.value) == (f"engine at {engine.host} did not answer within 1s (GET {LIST})")
    assert time.monotonic() - started < 10  # the dribbles take 20 s to finish


@pytest.mark.parametrize("behaviour", [huge_announced, huge_chunked])
def test_an_answer_over_the_size_limit_is_refused(
    peers: list[Peer], where: str | None, behaviour: Behaviour
) -> None:
    engine = _engine(peers, where, behaviour)
    with pytest.raises(EngineError) as caught:
        engine.containers(size=False)
    assert str(caught.value) == (
        f"engine at {engine.host} sent an answer larger than 1 MiB (GET {LIST}); refused"
    )


def test_an_answer_cut_off_midway_is_one_line(peers: list[Peer], where: str | None) -> None:
    engine = _engine(peers, where, close_midway)
    with pytest.raises(EngineError) as caught:
        engine.containers(size=False)
    message = str(caught.value)
    assert f"GET {LIST}" in message
    assert "in the middle of an answer" in message
    assert "\n" not in message


def test_the_engine_still_answers_after_a_refused_answer(
    peers: list[Peer], where: str | None
) -> None:
    engine = _engine(peers, where, huge_announced)
    peers[0].behaviours["/v1.41/images/json"] = answer(b"[]")
    with pytest.raises(EngineError):
        engine.containers(size=False)
    assert engine.images() == []


# -- docker-py (TLS and ssh:// go that way): the body is bounded as a whole ---------


@pytest.mark.parametrize("behaviour", [never, dribble])
def test_docker_py_transport_keeps_the_deadline(peers: list[Peer], behaviour: Behaviour) -> None:
    peer = Peer({"/version": VERSION, LIST: behaviour})
    peers.append(peer)
    engine = DockerEngine(peer.host, transport=SdkHTTP(peer.host, timeout=1))
    with pytest.raises(EngineError) as caught:
        engine.containers(size=False)
    assert str(caught.value) == f"engine at {peer.host} did not answer within 1s (GET {LIST})"


@pytest.mark.parametrize("behaviour", [huge_announced, huge_chunked])
def test_docker_py_transport_refuses_a_huge_answer(peers: list[Peer], behaviour: Behaviour) -> None:
    peer = Peer({"/version": VERSION, LIST: behaviour})
    peers.append(peer)
    http = SdkHTTP(peer.host, timeout=5, max_answer=1 << 20)
    engine = DockerEngine(peer.host, transport=http)
    with pytest.raises(EngineError, match=r"larger than 1 MiB \(GET /v1.41/containers/json\)"):
        engine.containers(size=False)


# -- the event stream ---------------------------------------------------------------

EVENTS = "/v1.41/events"


def _events_head(conn: socket.socket, stop: threading.Event) -> None:
    conn.sendall(head("200 OK", "Transfer-Encoding: chunked"))


def _event_after_quiet(conn: socket.socket, stop: threading.Event) -> None:
    _events_head(conn, stop)
    if not stop.wait(1.0):  # three idle periods without a byte
        line = b'{"Type":"container","Action":"start","time":1}\n'
        conn.sendall(f"{len(line):x}\r\n".encode() + line + b"\r\n")
    stop.wait()


def _transport(peer: Peer, where: str | None) -> UnixHTTP | TcpHTTP:
    kind = UnixHTTP if where else TcpHTTP
    return kind(peer.host, timeout=1, events_idle=0.3)


def test_a_silent_engine_ends_the_event_stream_with_an_error(
    peers: list[Peer], where: str | None
) -> None:
    # The stream's head came; then the engine froze (SIGSTOP): nothing more, and
    # its socket still open but answering nothing, not even /_ping.
    peer = Peer({"/version": VERSION, EVENTS: _events_head, "/_ping": never}, where)
    peers.append(peer)
    engine = DockerEngine(peer.host, transport=_transport(peer, where))
    events = engine.events(("container",))
    with pytest.raises(EngineError, match=r"stopped answering.*quiet for 0.3s.*within 1s"):
        list(events)
    assert "/_ping" in peer.seen


def test_a_quiet_engine_that_answers_pings_keeps_its_stream(
    peers: list[Peer], where: str | None
) -> None:
    behaviours = {"/version": VERSION, EVENTS: _event_after_quiet, "/_ping": answer(b"OK")}
    peer = Peer(behaviours, where)
    peers.append(peer)
    engine = DockerEngine(peer.host, transport=_transport(peer, where))
    events = engine.events(("container",))
    first = next(iter(events))
    events.close()
    assert first["Action"] == "start"
    assert "/_ping" in peer.seen


def test_closing_the_stream_ends_it_quietly(peers: list[Peer], where: str | None) -> None:
    peer = Peer({"/version": VERSION, EVENTS: _events_head, "/_ping": answer(b"OK")}, where)
    peers.append(peer)
    engine = DockerEngine(peer.host, transport=_transport(peer, where))
    events = engine.events(("container",))
    threading.Timer(0.5, events.close).start()
    assert list(events) == []


def test_a_removal_repeated_after_a_dropped_connection_is_no_skip(
    peers: list[Peer], where: str | None
) -> None:
    # The engine reads the DELETE, does it, and dies before answering on a reused
    # connection: the client sends it again and the engine says 404. That is not
    # "already gone" (a skip) but a lost answer, for apply to settle.
    done: list[bool] = []

    def delete(conn: socket.socket, stop: threading.Event) -> None:
        if done:
            conn.sendall(head("404 Not Found", "Content-Length: 2") + b"{}")
            return
        done.append(True)
        conn.shutdown(socket.SHUT_RDWR)

    info = answer(b"{}")
    peer = Peer({"/version": VERSION, "/v1.41/info": info, "/v1.41/volumes/v1": delete}, where)
    peers.append(peer)
    engine = DockerEngine(peer.host, timeout=5)
    engine.info()  # the connection is now a kept-alive one
    with pytest.raises(EngineError) as caught:
        engine.remove_volume("v1")
    assert type(caught.value) is EngineError
    assert "may have been done" in str(caught.value)
