"""`bilge registry listen`: notification envelopes, the token, and the server itself
(on 127.0.0.1, in a thread), and the pulls it records in the state store."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from bilge.errors import ConfigError, StateError, UsageError
from bilge.registry.listen import (
    EVENTS_TYPE,
    MAX_BODY,
    Listener,
    authorized,
    parse_addr,
    parse_envelope,
    token_for,
)
from bilge.registry.policy import RegistryConfig
from bilge.registry.pulls import Pull, read_pulls, record_pulls

NOW = datetime(2026, 6, 1, tzinfo=UTC)
TOKEN = "t" * 32
DIGEST = "sha256:" + "ab" * 32
MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"


def event(**overrides: object) -> dict[str, object]:
    target = {"mediaType": MANIFEST, "repository": "team/app", "digest": DIGEST}
    base: dict[str, object] = {
        "action": "pull",
        "timestamp": "2026-05-31T00:00:00Z",
        "target": target,
    }
    return base | overrides


def envelope(*events: object) -> bytes:
    return json.dumps({"events": list(events)}).encode()


def test_manifest_pulls_are_taken_everything_else_counted() -> None:
    blob_pull = event(
        target={"mediaType": "application/octet-stream", "repository": "a", "digest": DIGEST}
    )
    got = parse_envelope(
        envelope(
            event(),
            event(action="push"),
            blob_pull,
            event(target={"mediaType": MANIFEST, "repository": "Bad\x1b", "digest": DIGEST}),
            event(target={"mediaType": MANIFEST, "repository": "a", "digest": "sha256:zz"}),
            "not an event",
        ),
        NOW,
    )
    assert got.pulls == (Pull("team/app", DIGEST, datetime(2026, 5, 31, tzinfo=UTC)),)
    assert got.ignored == 5


def test_a_pull_is_never_in_the_future_and_a_bad_time_is_now() -> None:
    future = parse_envelope(envelope(event(timestamp="2999-01-01T00:00:00Z")), NOW)
    assert future.pulls[0].at == NOW
    assert parse_envelope(envelope(event(timestamp="yesterday")), NOW).pulls[0].at == NOW


@pytest.mark.parametrize("body", [b"", b"{", b"[]", b'{"events": {}}', b"\xff\xfe"])
def test_what_is_not_an_envelope_is_refused(body: bytes) -> None:
    with pytest.raises(ValueError):
        parse_envelope(body, NOW)


def test_the_token_is_a_bearer_token_compared_whole() -> None:
    assert authorized(f"Bearer {TOKEN}", TOKEN)
    assert authorized(f"bearer {TOKEN}", TOKEN)
    for header in (None, "", TOKEN, f"Basic {TOKEN}", f"Bearer {TOKEN}x", "Bearer " + TOKEN[:-1]):
        assert not authorized(header, TOKEN)


def test_the_token_comes_from_the_config_or_the_environment() -> None:
    config = RegistryConfig(url="http://127.0.0.1:5000")
    assert token_for(config, {"BILGE_NOTIFY_TOKEN": TOKEN}) == TOKEN
    with_token = RegistryConfig(url="http://127.0.0.1:5000", notify_token=TOKEN)
    assert token_for(with_token, {}) == TOKEN
    assert TOKEN not in repr(with_token)
    with pytest.raises(ConfigError, match="needs a token"):
        token_for(config, {})
    with pytest.raises(ConfigError, match="at least 16"):
        token_for(config, {"BILGE_NOTIFY_TOKEN": "short"})


@pytest.mark.parametrize("addr", ["", "5080", "host:", "host:port", "h:70000"])
def test_a_bad_addr_is_a_usage_error(addr: str) -> None:
    with pytest.raises(UsageError, match="--addr"):
        parse_addr(addr)
    assert parse_addr("127.0.0.1:0") == ("127.0.0.1", 0)


class Recorder:
    def __init__(self) -> None:
        self.pulls: list[Pull] = []
        self.fail = False

    def __call__(self, pulls: tuple[Pull, ...]) -> None:
        if self.fail:
            raise StateError("disk full")
        self.pulls += pulls


@pytest.fixture
def served() -> Iterator[tuple[str, Recorder]]:
    recorder = Recorder()
    server = Listener(("127.0.0.1", 0), TOKEN, recorder, log=lambda line: None)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/", recorder
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


GOOD = {"Authorization": f"Bearer {TOKEN}", "Content-Type": EVENTS_TYPE}


@pytest.mark.parametrize(
    ("headers", "body", "status"),
    [
        ({"Content-Type": EVENTS_TYPE}, envelope(event()), 401),
        ({**GOOD, "Authorization": "Bearer nope"}, envelope(event()), 401),
        (GOOD, b"{", 400),
        (GOOD, b"x" * (MAX_BODY + 1), 413),
        ({**GOOD, "Content-Type": "text/html"}, envelope(event()), 400),
        (GOOD, envelope(event()), 200),
    ],
)
def test_the_server_answers(
    served: tuple[str, Recorder], headers: dict[str, str], body: bytes, status: int
) -> None:
    url, recorder = served
    assert httpx.post(url, headers=headers, content=body).status_code == status
    assert len(recorder.pulls) == (1 if status == 200 else 0)
    assert httpx.post(url, headers=GOOD, content=envelope(event())).status_code == 200


def test_a_state_store_failure_asks_the_registry_to_send_again(
    served: tuple[str, Recorder],
) -> None:
    url, recorder = served
    recorder.fail = True
    answer = httpx.post(url, headers=GOOD, content=envelope(event()))
    assert answer.status_code == 503 and "disk full" in answer.text
    assert httpx.get(url, headers=GOOD).status_code == 405


def test_pulls_are_stored_and_only_move_forward(tmp_path: Path) -> None:
    earlier, later = NOW - timedelta(days=2), NOW - timedelta(days=1)
    url = "http://127.0.0.1:5000"
    assert record_pulls(tmp_path, url, [Pull("app", DIGEST, later)], NOW) == 1
    record_pulls(tmp_path, url, [Pull("app", DIGEST, earlier)], NOW)
    assert record_pulls(tmp_path, url, [], NOW) == 0
    assert read_pulls(tmp_path, NOW) == {url: {"app": {DIGEST: later}}}


def test_the_pulls_store_is_private(tmp_path: Path) -> None:
    state = tmp_path / "state"
    record_pulls(state, "http://127.0.0.1:5000", [Pull("app", DIGEST, NOW)], NOW)
    assert state.stat().st_mode & 0o777 == 0o700
    assert (state / "bilge.db").stat().st_mode & 0o777 == 0o600
