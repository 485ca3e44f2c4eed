"""`bilge status`: usage and breakdown, and what the policy would reclaim."""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from typing import TYPE_CHECKING

from bilge.cli.common import Handled, add_command, orphans_option, out, reading, terminal

if TYPE_CHECKING:
    from bilge.session import Session

SUMMARY = "usage and breakdown, and what the policy would reclaim"
EXAMPLE = (
    "example: bilge status\n"
    "         bilge -H unix:///run/user/1000/docker.sock status --json\n"
    "         bilge --hosts runners.txt status --summary    (a fleet, worst host first)"
)


def add_parser(
    sub: argparse._SubParsersAction[argparse.ArgumentParser], common: argparse.ArgumentParser
) -> None:
    orphans_option(add_command(sub, common, "status", SUMMARY, EXAMPLE))


@dataclass(frozen=True)
class Options:
    json: bool

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> Options:
        return cls(json=args.json)


def run(session: Session, options: Options) -> Handled:
    from bilge.errors import EXIT_OK
    from bilge.report import json as jsonreport

    with reading(session.host, options.json):
        result = session.status()
    if options.json:
        return EXIT_OK, jsonreport.status_json(result.snapshot, result.plan)
    terminal().render_status(out(), result.snapshot, result.plan)
    return EXIT_OK, None
