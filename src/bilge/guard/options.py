"""What the guard is told to do (`bilge watch`'s options), and how it says back
what it watches when it starts: the policy's figures as bilge.toml writes them,
so that a person can match the log line to the file."""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from datetime import timedelta

from bilge.config.policy import Policy
from bilge.config.units import duration_text, format_percent
from bilge.guard.alerts import Webhook


@dataclass(frozen=True)
class WatchOptions:
    log_format: str = "text"
    once: bool = False
    metrics_addr: str | None = None  # None: the policy's

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> WatchOptions:
        """From `bilge watch`'s arguments; --json (which every command takes)
        asks for JSON logs as --log-format json does."""
        fmt = "json" if getattr(args, "json", False) else args.log_format
        return cls(fmt, args.once, args.metrics_addr)


def started_fields(
    addresses: list[str], policy: Policy, options: WatchOptions, webhook: Webhook | None
) -> dict[str, str]:
    """What the guard watches and how, as the policy writes it ("85%", "30s");
    the metrics address only when it is served (not with --once)."""
    w = policy.watch
    fields = {"hosts": ",".join(addresses)}
    if not options.once:
        fields["metrics"] = options.metrics_addr or w.metrics_addr
    fields |= {
        "high": format_percent(w.high),
        "low": format_percent(w.low),
        "inodes_high": format_percent(w.inodes_high),
        "inodes_low": format_percent(w.inodes_low),
        "interval": _duration(w.interval),
        "webhook": webhook.where if webhook else "none",
    }
    return fields


def _duration(td: timedelta) -> str:
    """As bilge.toml writes it ("30s", "1m30s"); a fraction of a second as seconds."""
    try:
        return duration_text(td)
    except ValueError:
        return f"{td.total_seconds():g}s"
