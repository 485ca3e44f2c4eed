"""`bilge apply`: remove what the plan says, safely (a fresh plan, or a saved one
narrowed to what a fresh plan also removes); asks first on a terminal."""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

from bilge.cli.common import Handled, add_command, orphans_option, out, reading, terminal
from bilge.engine.base import DEFAULT_CONCURRENCY

if TYPE_CHECKING:
    from bilge.model import ActionOutcome, Outcome
    from bilge.session import Session

SUMMARY = "remove what the plan says, safely"
EXAMPLE = (
    "example: bilge apply            (shows the plan and asks)\n"
    "         bilge apply --yes --json\n"
    "         bilge apply --plan plan.json --yes\n"
    "         bilge --context runner-4 --context runner-5 apply   (asks once for both)"
)


def add_parser(
    sub: argparse._SubParsersAction[argparse.ArgumentParser], common: argparse.ArgumentParser
) -> None:
    p = add_command(sub, common, "apply", SUMMARY, EXAMPLE)
    orphans_option(p)
    p.add_argument("--yes", "-y", action="store_true", help="do not ask for confirmation")
    p.add_argument("--plan", type=Path, metavar="FILE", help="apply a plan saved by `plan --out`")
    p.add_argument(
        "--concurrency",
        type=int,
        default=DEFAULT_CONCURRENCY,
        metavar="N",
        help=f"parallel removals (default {DEFAULT_CONCURRENCY})",
    )


@dataclass(frozen=True)
class Options:
    json: bool
    yes: bool
    plan: Path | None
    concurrency: int

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> Options:
        return cls(json=args.json, yes=args.yes, plan=args.plan, concurrency=args.concurrency)


def run(session: Session, options: Options) -> Handled:
    from bilge.errors import UsageError

    if options.concurrency < 1:
        raise UsageError("--concurrency must be at least 1")
    refused: tuple[ActionOutcome, ...] = ()
    with reading(session.host, options.json):
        if options.plan is not None:
            saved = session.saved_plan(options.plan)
            the_plan, snap, refused = saved.plan, saved.snapshot, saved.refused
        else:
            status = session.status()
            the_plan, snap = status.plan, status.snapshot
    apply = partial(session.apply, the_plan, snap, refused=refused, concurrency=options.concurrency)
    show = partial(_show, options, engine=snap.engine.kind)
    if not the_plan.actions:
        return show(apply())
    if not options.yes:
        from bilge.report import interactive

        is_tty = sys.stdin.isatty() and sys.stderr.isatty()
        interactive.confirm(the_plan, quiet=options.json, is_tty=is_tty)
    if options.json:  # no bar, and no rich to load, for scripts
        return show(apply())
    from bilge.report import interactive

    with interactive.progress(len(the_plan.actions)) as advance:
        return show(apply(on_result=advance))


def _show(options: Options, outcome: Outcome, engine: str = "") -> Handled:
    from bilge.errors import EXIT_OK, EXIT_SOME_FAILED
    from bilge.model import Result
    from bilge.report import json as jsonreport

    code = EXIT_SOME_FAILED if outcome.count(Result.FAILED) else EXIT_OK
    if options.json:
        return code, jsonreport.outcome_json(outcome, engine)
    terminal().render_outcome(out(), outcome)
    return code, None
