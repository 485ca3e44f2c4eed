"""`bilge registry listen`: the registry's notifications in, last pulls recorded.

The Registry API never says when a manifest was last pulled; distribution
can tell an endpoint, in its notifications (docs/registry.md shows the
`notifications:` stanza): POSTed envelopes of events, `application/vnd.docker.
distribution.events.v1+json`. A pull of a manifest is an event with action
"pull" and a target carrying the repository, the digest and a manifest media
type (pulls of blobs say application/octet-stream and are left out). Each is
recorded in the state store (pulls.py), for `keep_pulled_within`.

Everything that arrives is input from the network:

* no request is read before its bearer token matches (constant-time compare),
  so the token is what keeps anyone else from making images look pulled: 401;
* a body without a length, or longer than MAX_BODY, is refused unread: 413;
  one that is not an envelope of events: 400; a request that stalls is dropped
  after REQUEST_SECONDS, so no peer holds a thread for ever;
* the answer is 200 only once the pulls are written, so the registry sends an
  envelope again when the state store could not take it (503).

No request can end the listener: a failure is a status and a logged line.
"""

from __future__ import annotations

import hmac
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from bilge.clock import SYSTEM_CLOCK, Clock
from bilge.errors import BilgeError, ConfigError, UsageError
from bilge.registry.gc import _terminate_as_interrupt as terminate_as_interrupt
from bilge.registry.model import DIGEST_RE, MANIFEST_TYPES, REPOSITORY_RE
from bilge.registry.policy import RegistryConfig
from bilge.registry.pulls import Pull, record_pulls
from bilge.report.text import printable
from bilge.safejson import loads_json
from bilge.timeparse import parse_time

EVENTS_TYPE = "application/vnd.docker.distribution.events.v1+json"
#: distribution sends envelopes of a few events (its `threshold`); 1 MiB holds thousands.
MAX_BODY = 1 << 20
#: A whole request, headers and body, must arrive within this.
REQUEST_SECONDS = 10.0
#: A shorter token is too easy to guess for what it guards.
MIN_TOKEN = 16
DEFAULT_ADDR = "127.0.0.1:5080"
TOKEN_ENV = "BILGE_NOTIFY_TOKEN"


class Refused(Exception):
    """A request refused with `status`; the message is safe to log and send."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class Envelope:
    pulls: tuple[Pull, ...]
    #: Events that are not manifest pulls (pushes, blob pulls, malformed ones).
    ignored: int


def token_for(config: RegistryConfig, env: Mapping[str, str]) -> str:
    """The bearer token the registry's notifications must carry."""
    token = (
        config.notify_token.get_secret_value() if config.notify_token else env.get(TOKEN_ENV, "")
    )
    if not token:
        raise ConfigError(
            f"registry {config.label}: listen needs a token: set notify_token in its "
            f"[[registry]] table or ${TOKEN_ENV}, and the same in the registry's notifications"
        )
    if len(token) < MIN_TOKEN or not token.isascii() or not token.isprintable():
        raise ConfigError(
            f"registry {config.label}: the notification token must be at least {MIN_TOKEN} "
            "printable ASCII characters"
        )
    return token


def parse_addr(addr: str) -> tuple[str, int]:
    """ "HOST:PORT" -> (host, port); UsageError naming --addr otherwise."""
    host, sep, port = addr.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise UsageError(f"--addr {addr!r}: expected HOST:PORT, e.g. {DEFAULT_ADDR}")
    return host.strip("[]"), int(port)


def authorized(header: str | None, token: str) -> bool:
    """Whether an Authorization header carries `token` (compared in constant time)."""
    scheme, _, given = (header or "").partition(" ")
    if scheme.lower() != "bearer":
        return False
    return hmac.compare_digest(given.strip().encode(), token.encode())


def parse_envelope(body: bytes, now: datetime) -> Envelope:
    """The manifest pulls of an envelope; ValueError when it is not one."""
    doc = loads_json(body)
    events = doc.get("events") if isinstance(doc, dict) else None
    if not isinstance(events, list):
        raise ValueError("not an envelope of events")
    pulls = [p for e in events if (p := _pull(e, now)) is not None]
    return Envelope(tuple(pulls), len(events) - len(pulls))


def _pull(event: Any, now: datetime) -> Pull | None:
    if not isinstance(event, dict) or event.get("action") != "pull":
        return None
    target = event.get("target")
    if not isinstance(target, dict) or target.get("mediaType") not in MANIFEST_TYPES:
        return None
    repository, digest = target.get("repository"), target.get("digest")
    if not isinstance(repository, str) or not REPOSITORY_RE.fullmatch(repository):
        return None
    if not isinstance(digest, str) or not DIGEST_RE.fullmatch(digest):
        return None
    try:
        at = parse_time(event.get("timestamp")) or now
    except ValueError:
        at = now
    # The registry's clock may be ahead: a pull is never recorded in the future.
    return Pull(repository, digest, min(at, now))


class Listener(ThreadingHTTPServer):
    """The HTTP server; `record` writes the pulls of one envelope."""

    daemon_threads = True

    def __init__(
        self,
        addr: tuple[str, int],
        token: str,
        record: Callable[[tuple[Pull, ...]], None],
        clock: Clock = SYSTEM_CLOCK,
        log: Callable[[str], None] | None = None,
    ) -> None:
        super().__init__(addr, _Handler)
        self.token = token
        self.record = record
        self.clock = clock
        self.log = log or _stderr

    def answer(self, method: str, headers: Mapping[str, str], read: Callable[[int], bytes]) -> str:
        """Check and take one request; its answer, or Refused."""
        if method != "POST":
            raise Refused(405, "only POST: this endpoint takes registry notifications")
        if not authorized(headers.get("authorization"), self.token):
            raise Refused(401, "missing or wrong bearer token")
        length = headers.get("content-length", "")
        if not length.isdigit():
            raise Refused(411, "a Content-Length is required")
        if int(length) > MAX_BODY:
            raise Refused(413, f"larger than {MAX_BODY} bytes")
        kind = headers.get("content-type", "").split(";", 1)[0].strip()
        if kind not in (EVENTS_TYPE, "application/json"):
            raise Refused(400, f"expected {EVENTS_TYPE}")
        try:
            envelope = parse_envelope(read(int(length)), self.clock.now())
        except ValueError as exc:
            raise Refused(400, f"not a notification envelope: {exc}") from None
        try:
            self.record(envelope.pulls)
        except BilgeError as exc:
            raise Refused(503, f"pulls not recorded: {exc}") from None
        return f"{len(envelope.pulls)} pulls recorded, {envelope.ignored} other events"


class _Handler(BaseHTTPRequestHandler):
    server: Listener
    timeout = REQUEST_SECONDS
    protocol_version = "HTTP/1.1"

    def do_POST(self) -> None:
        self._handle()

    def do_GET(self) -> None:
        self._handle()

    def do_PUT(self) -> None:
        self._handle()

    def _handle(self) -> None:
        headers = {k.lower(): v for k, v in self.headers.items()}
        try:
            said, status = self.server.answer(self.command, headers, self.rfile.read), 200
        except Refused as exc:
            said, status = str(exc), exc.status
        except Exception as exc:  # one request must never end the listener
            said, status = f"internal failure: {type(exc).__name__}", 500
        if status != 200 or not said.startswith("0 pulls"):
            self.server.log(f"{self.client_address[0]} {self.command}: {status} {printable(said)}")
        body = (said + "\n").encode()
        self.send_response(status)
        if status == 401:
            self.send_header("WWW-Authenticate", 'Bearer realm="bilge"')
        self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        if status != 200:
            self.send_header("Connection", "close")
            self.close_connection = True
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass  # answer() logs what matters, without the peer's raw request line


def _stderr(line: str) -> None:
    print(f"bilge registry listen: {line}", file=sys.stderr, flush=True)


def serve(
    config: RegistryConfig,
    addr: str,
    state_dir: Path,
    env: Mapping[str, str],
    clock: Clock = SYSTEM_CLOCK,
) -> None:
    """Listen until interrupted (Ctrl-C, SIGTERM), recording pulls of `config`'s registry."""
    token = token_for(config, env)
    host, port = parse_addr(addr)

    def record(pulls: tuple[Pull, ...]) -> None:
        record_pulls(state_dir, config.url, pulls, clock.now())

    try:
        server = Listener((host, port), token, record, clock)
    except OSError as exc:
        raise UsageError(f"--addr {addr}: cannot listen: {exc.strerror or exc}") from exc
    with server, terminate_as_interrupt():
        _stderr(f"listening on http://{host}:{server.server_address[1]}/ for {config.label}")
        try:
            server.serve_forever(poll_interval=0.5)
        except KeyboardInterrupt:
            _stderr("stopped")
