"""`bilge history`: the audit log of removals and the recorded usage samples."""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from typing import TYPE_CHECKING

from bilge.cli.common import Handled, add_command, out, terminal

if TYPE_CHECKING:
    from bilge.session import Session

SUMMARY = "the audit log of removals and recorded usage samples"
EXAMPLE = (
    "example: bilge history --limit 20\n"
    "         bilge history --host ssh://ci@runner-3    (that host's removals and samples)"
)


def add_parser(
    sub: argparse._SubParsersAction[argparse.ArgumentParser], common: argparse.ArgumentParser
) -> None:
    p = add_command(sub, common, "history", SUMMARY, EXAMPLE)
    p.add_argument("--limit", type=int, default=50, metavar="N", help="entries to show")


@dataclass(frozen=True)
class Options:
    json: bool
    limit: int
    #: Only these hosts' history (-H, --hosts, --context); every host's when empty.
    hosts: tuple[str, ...] = ()

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> Options:
        return cls(json=args.json, limit=args.limit)


def run(session: Session, options: Options) -> Handled:
    from bilge.errors import EXIT_OK
    from bilge.report import json as jsonreport

    result = session.history(options.limit, options.hosts)
    if options.json:
        return EXIT_OK, jsonreport.history_json(result.entries, result.samples)
    terminal().render_history(out(), result.entries, result.samples)
    return EXIT_OK, None
