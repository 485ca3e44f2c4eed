"""`bilge doctor`: what is wrong with the disk, with evidence and fixes."""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from typing import TYPE_CHECKING

from bilge.cli.common import Handled, add_command, orphans_option, out, reading, terminal

if TYPE_CHECKING:
    from bilge.session import Session

SUMMARY = "what is wrong with the disk: findings, evidence and fixes"
EXAMPLE = (
    "example: bilge doctor\n"
    "         bilge doctor --json\n"
    "         bilge -H ssh://ci@runner-2 -H ssh://ci@runner-3 doctor --summary"
)


def add_parser(
    sub: argparse._SubParsersAction[argparse.ArgumentParser], common: argparse.ArgumentParser
) -> None:
    orphans_option(add_command(sub, common, "doctor", SUMMARY, EXAMPLE))


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
        result = session.doctor()
    if options.json:
        return EXIT_OK, jsonreport.doctor_json(result.snapshot, result.findings)
    terminal().render_doctor(out(), result.snapshot, result.findings)
    return EXIT_OK, None
