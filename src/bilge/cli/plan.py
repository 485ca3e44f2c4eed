"""`bilge plan`: what would be removed, why, and how many bytes it frees."""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from bilge.cli.common import (
    Handled,
    add_command,
    orphans_option,
    out,
    reading,
    save_document,
    terminal,
)

if TYPE_CHECKING:
    from bilge.session import Session

SUMMARY = "what would be removed, why, and how many bytes it frees"
EXAMPLE = (
    "example: bilge plan --explain\n"
    "         bilge plan --out plan.json\n"
    "         cat runners.txt | bilge --hosts - plan --json --parallel 16"
)


def add_parser(
    sub: argparse._SubParsersAction[argparse.ArgumentParser], common: argparse.ArgumentParser
) -> None:
    p = add_command(sub, common, "plan", SUMMARY, EXAMPLE)
    orphans_option(p)
    p.add_argument(
        "--explain",
        action="store_true",
        help="list every action (a long plan is shown by kind) and what is kept, and why",
    )
    p.add_argument("--out", type=Path, metavar="FILE", help="save the plan for `apply --plan`")


@dataclass(frozen=True)
class Options:
    json: bool
    explain: bool
    out: Path | None

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> Options:
        return cls(json=args.json, explain=args.explain, out=args.out)


def run(session: Session, options: Options) -> Handled:
    from bilge.errors import EXIT_OK
    from bilge.report import json as jsonreport

    with reading(session.host, options.json):
        status = session.status()
    the_plan, engine = status.plan, status.snapshot.engine.kind
    if options.out is not None:
        save_document(jsonreport.plan_json(the_plan, engine), options.out)
    if options.json:
        return EXIT_OK, jsonreport.plan_json(the_plan, engine)
    terminal().render_plan(out(), the_plan, explain=options.explain)
    if options.out is not None:
        saved = f"Plan saved to {options.out}; apply it with `bilge apply --plan {options.out}`."
        out().print(saved)
    return EXIT_OK, None
