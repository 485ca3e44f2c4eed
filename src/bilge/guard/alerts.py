"""Alerts by webhook: a generic JSON POST, or a Slack-compatible payload.

The webhook URL is a secret (Slack's carries its token): it comes from
`[watch] webhook_url` or $BILGE_WEBHOOK_URL and is never logged, not even in
an error; errors name at most the scheme and host. A bad URL is refused when
the policy is loaded (`url_problem`); a webhook that fails later is an
`AlertError` and nothing else, within TIMEOUT_SECONDS, so that a dead alert
receiver never stops or stalls the guard it reports for.
"""

from __future__ import annotations

import json
import os
import threading
import urllib.error
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from urllib.parse import urlsplit

from bilge.config.units import format_size
from bilge.errors import ConfigError
from bilge.guard.log import Log
from bilge.guard.metrics import Metrics
from bilge.model import Filesystem, Snapshot
from bilge.planner.summary import largest

ENV_URL = "BILGE_WEBHOOK_URL"
#: The deadline of one alert, from connecting to the end of the answer.
TIMEOUT_SECONDS = 10.0
#: Only the status matters; a receiver's page of HTML is not read to the end.
_MAX_ANSWER = 64 * 1024


def url_problem(url: str) -> str | None:
    """What is wrong with a webhook URL, or None; the text never quotes the URL."""
    if any(char.isspace() or not char.isprintable() for char in url):
        return "the webhook URL contains whitespace or control characters"
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError for a port that is not one
    except ValueError:
        return "the webhook URL is not a valid URL"
    if parts.scheme not in ("http", "https"):
        return "the webhook URL must start with http:// or https://"
    if not parts.hostname:
        return "the webhook URL has no host"
    return None


@dataclass(frozen=True)
class Alert:
    event: str  # "high", "recovered", "shortfall"
    host: str
    text: str  # one line for a person
    details: Mapping[str, object] = field(default_factory=dict)


class AlertError(Exception):
    """Sending failed; the message never contains the URL's path, query or userinfo."""


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    # urllib would turn a redirected POST into a GET and call that success; a
    # webhook that redirects is misconfigured, and is reported as its 3xx.
    def redirect_request(self, *args: object, **kwargs: object) -> None:
        return None


_OPENER = urllib.request.build_opener(_NoRedirects)


class Webhook:
    def __init__(self, url: str, fmt: str = "json", timeout: float = TIMEOUT_SECONDS) -> None:
        self._url = url
        self.format = fmt
        self.timeout = timeout

    def __repr__(self) -> str:
        return f"Webhook({self.where!r}, {self.format!r})"

    @classmethod
    def from_config(cls, url: str, fmt: str, env: Mapping[str, str] = os.environ) -> Webhook | None:
        """The policy's webhook, else $BILGE_WEBHOOK_URL's (checked here: the
        policy checked its own); ConfigError if the variable holds no URL."""
        if not url and env.get(ENV_URL, ""):
            url = env[ENV_URL]
            problem = url_problem(url)
            if problem is not None:
                raise ConfigError(f"${ENV_URL}: {problem}")
        return cls(url, fmt) if url else None

    @property
    def where(self) -> str:
        """The URL as it may be shown: scheme and host only."""
        try:
            parts = urlsplit(self._url)
            host = parts.hostname or "?"
        except ValueError:
            return "the webhook"
        if url_problem(f"{parts.scheme}://{host}") is not None:
            return "the webhook"
        return f"{parts.scheme}://{host}"

    def payload(self, alert: Alert) -> dict[str, object]:
        if self.format == "slack":
            return {"text": f":rotating_light: bilge on {alert.host}: {alert.text}"}
        return {"source": "bilge", "event": alert.event, "host": alert.host,
                "text": alert.text, "details": dict(alert.details)}  # fmt: skip

    def send(self, alert: Alert) -> None:
        """POST the alert; AlertError (and nothing else) if it did not arrive.

        The request runs in a thread of its own so that the deadline covers all
        of it: the socket timeout bounds each read, not a receiver that trickles
        a byte at a time, nor a name lookup.
        """
        body = json.dumps(self.payload(alert)).encode()
        failure: list[str] = []
        worker = threading.Thread(
            target=self._post, args=(body, failure), name="bilge-webhook", daemon=True
        )
        worker.start()
        worker.join(self.timeout)
        if worker.is_alive():
            message = f"did not answer within {self.timeout:g}s"
            raise AlertError(f"webhook {self.where} {message}") from None
        if failure:
            raise AlertError(f"webhook {self.where} {failure[0]}") from None

    def _post(self, body: bytes, failure: list[str]) -> None:
        # Appends what went wrong, in words that cannot carry the URL: the
        # messages of urllib's errors (and of http.client's) often quote it.
        try:
            req = urllib.request.Request(
                self._url, data=body, method="POST", headers={"Content-Type": "application/json"}
            )
            with _OPENER.open(req, timeout=self.timeout) as resp:
                resp.read(_MAX_ANSWER)
        except urllib.error.HTTPError as exc:
            failure.append(f"answered HTTP {exc.code}")
        except urllib.error.URLError as exc:
            failure.append(f"unreachable ({_reason(exc.reason)})")
        except Exception as exc:  # any failure is the alert's, never the guard's
            failure.append(f"failed ({_reason(exc)})")


def _reason(reason: object) -> str:
    """An error's reason without its message, which may quote the URL."""
    if isinstance(reason, TimeoutError):
        return "timed out"
    if isinstance(reason, OSError) and isinstance(reason.strerror, str):
        return reason.strerror  # e.g. "Connection refused", "Name or service not known"
    if isinstance(reason, BaseException):
        return type(reason).__name__
    return "error"


def untouchable(snap: Snapshot) -> str:
    """The biggest objects that stay after an eviction fell short: what a person
    must look at (the shortfall alert names them)."""
    logs = sorted(snap.containers, key=lambda c: -c.log_file_bytes)[:2]
    parts = [f"{o.kind} {o.name} ({format_size(o.bytes)})" for o in largest(snap, 3)]
    parts += [
        f"log of {c.name} ({format_size(c.log_file_bytes)})" for c in logs if c.log_file_bytes
    ]
    return ", ".join(parts) or "none found"


def send_alert(
    webhook: Webhook | None, log: Log, metrics: Metrics, alert: Alert, fs: Filesystem
) -> None:
    """Send `alert` with the filesystem's figures, if a webhook is set; a failure is a
    log line and an error metric, never the guard's end."""
    if webhook is None:
        return
    details = {
        "used_ratio": round(fs.bytes_ratio, 4),
        "inodes_ratio": round(fs.inodes_ratio, 4),
        "free_bytes": fs.free_bytes,
    }
    try:
        webhook.send(replace(alert, details=details))
        log("alert-sent", host=alert.host, alert=alert.event, to=webhook.where)
    except AlertError as exc:
        metrics.error(alert.host, "alert")
        log("alert-failed", "error", host=alert.host, alert=alert.event, error=str(exc))
