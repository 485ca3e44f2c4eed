"""`bilge config`: the effective policy, where it comes from, every key's value.

What bilge will do depends on a file found in one of four places, or on the
defaults: this shows which, as TOML that `-c` reads back. The webhook URL is a
secret: it is never shown, only whether one is set.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

from bilge.cli.common import add_command

if TYPE_CHECKING:
    from bilge.config.policy import Policy

SUMMARY = "the effective policy: where it comes from and every key's value"
EXAMPLE = "example: bilge config\n         bilge -c /etc/bilge/bilge.toml config --json"


def add_parser(
    sub: argparse._SubParsersAction[argparse.ArgumentParser], common: argparse.ArgumentParser
) -> None:
    add_command(sub, common, "config", SUMMARY, EXAMPLE)


def run(source: Path | None, policy: Policy, *, as_json: bool) -> int:
    from bilge.config.policy import policy_to_toml
    from bilge.errors import EXIT_OK
    from bilge.report import json as jsonreport

    webhook = bool(policy.watch.webhook_url)
    shown = policy.model_copy(update={"watch": policy.watch.model_copy(update={"webhook_url": ""})})
    text = policy_to_toml(shown)
    if webhook:
        text += "# [watch] webhook_url is set (not shown: it is a secret)\n"
    if as_json:
        doc = {
            "schema": jsonreport.SCHEMA,
            "kind": "config",
            "source": str(source) if source else None,
            "webhook_url_set": webhook,
            "toml": text,
        }
        print(jsonreport.dumps(doc))
        return EXIT_OK
    print(f"# from {source}" if source else "# no policy file: bilge's defaults")
    print(text, end="")
    return EXIT_OK
