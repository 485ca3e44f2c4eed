"""Alerts by webhook: a generic JSON POST, or a Slack-compatible payload.

The webhook URL is a secret (Slack's carries its token): it comes from
`[watch] webhook_url` or $BILGE_WEBHOOK_URL and is never logged, not even in
an error; errors name only the host part.
"""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

ENV_URL = "BILGE_WEBHOOK_URL"
TIMEOUT_SECONDS = 10


@dataclass(frozen=True)
class Alert:
    event: str  # "high", "recovered", "shortfall"
    host: str
    text: str  # one line for a person
    details: Mapping[str, object]


class AlertError(Exception):
    """Sending failed; the message never contains the URL's path or query."""


class Webhook:
    def __init__(self, url: str, fmt: str = "json") -> None:
        self._url = url
        self.format = fmt

    @classmethod
    def from_config(cls, url: str, fmt: str, env: Mapping[str, str] = os.environ) -> Webhook | None:
        url = url or env.get(ENV_URL, "")
        return cls(url, fmt) if url else None

    @property
    def where(self) -> str:
        """The URL as it may be shown: scheme and host only."""
        parts = urlsplit(self._url)
        return f"{parts.scheme}://{parts.hostname or '?'}"

    def payload(self, alert: Alert) -> dict[str, object]:
        if self.format == "slack":
            return {"text": f":rotating_light: bilge on {alert.host}: {alert.text}"}
        return {"source": "bilge", "event": alert.event, "host": alert.host,
                "text": alert.text, "details": dict(alert.details)}  # fmt: skip

    def send(self, alert: Alert) -> None:
        body = json.dumps(self.payload(alert)).encode()
        req = urllib.request.Request(
            self._url, data=body, method="POST", headers={"Content-Type": "application/json"}
        )
        try:
            with urllib.request.urlopen(req, timeout=TIMEOUT_SECONDS) as resp:
                resp.read()
        except urllib.error.HTTPError as exc:
            raise AlertError(f"webhook {self.where} answered HTTP {exc.code}") from None
        except (urllib.error.URLError, OSError, ValueError) as exc:
            reason = getattr(exc, "reason", None) or type(exc).__name__
            raise AlertError(f"webhook {self.where} unreachable ({reason})") from None
