"""`bilge watch`: the guard, keeping every host below its high watermark."""

from __future__ import annotations

import argparse
import re
from pathlib import Path
from typing import TYPE_CHECKING

from bilge.cli.common import add_command

if TYPE_CHECKING:
    from bilge.config.policy import Policy

SUMMARY = "the guard: keep the disk below its high watermark"
EXAMPLE = "example: bilge watch\n         bilge watch --metrics-addr 0.0.0.0:9808 --log-format json"

_ADDRESS = re.compile(r"(\[[0-9a-fA-F:]+\]|[A-Za-z0-9.\-]*):([0-9]{1,5})")


def add_parser(
    sub: argparse._SubParsersAction[argparse.ArgumentParser], common: argparse.ArgumentParser
) -> None:
    p = add_command(sub, common, "watch", SUMMARY, EXAMPLE)
    p.add_argument(
        "--metrics-addr",
        type=_address,
        metavar="HOST:PORT",
        help="serve Prometheus metrics here ([watch])",
    )
    p.add_argument(
        "--log-format", choices=("text", "json"), default="text", help="one line per event"
    )
    p.add_argument("--once", action="store_true", help="sample (and evict) once, then exit")


def _address(text: str) -> str:
    """HOST:PORT as [watch] metrics_addr takes it, checked before the guard starts."""
    match = _ADDRESS.fullmatch(text)
    if match is None or int(match.group(2)) > 65535:
        raise argparse.ArgumentTypeError(f"not a HOST:PORT with a port up to 65535: {text!r}")
    return text


def run(args: argparse.Namespace, hosts: list[str], policy: Policy, state_dir: Path) -> int:
    """The guard watches every host at once, until stopped."""
    from bilge.cli.common import report_lost
    from bilge.guard import loop
    from bilge.guard.alerts import Webhook
    from bilge.state.store import StateStore

    options = loop.WatchOptions.from_args(args)
    # A bad $BILGE_WEBHOOK_URL is a config error before anything is created.
    webhook = Webhook.from_config(policy.watch.webhook_url, policy.watch.webhook_format)
    store = StateStore(state_dir)
    code = loop.run(hosts, policy, store, options, webhook)
    return max(code, report_lost(store.lost))
