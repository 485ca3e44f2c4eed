"""`bilge report --html FILE`: one self-contained HTML page of what fills the disk.

The treemap of the data-root, the usage history, the plan and what is kept,
the doctor's findings and the recent removals, for every host given (a fleet
overview first when there are several). A host that cannot be read gets a
section with its error; the others are reported all the same.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from bilge.collect.prefetch import Prefetch
    from bilge.config.policy import Policy
    from bilge.engine.contexts import Endpoint
    from bilge.session import Session

SUMMARY = "one self-contained HTML report: treemap, history, plan, findings, removals"
EXAMPLE = (
    "example: bilge report --html report.html\n"
    "         bilge -H unix:///run/a.sock -H ssh://b report --html fleet.html\n"
    "         bilge report --html - > /var/www/bilge.html"
)


def add_parser(
    sub: argparse._SubParsersAction[argparse.ArgumentParser], common: argparse.ArgumentParser
) -> None:
    # Not add_command: its --json would mean nothing here (the page is the output).
    p = sub.add_parser(
        "report",
        help=SUMMARY,
        description=SUMMARY[0].upper() + SUMMARY[1:] + ".",
        epilog=EXAMPLE,
        parents=[common],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "--html",
        required=True,
        metavar="FILE",
        help="write the report to FILE ('-': standard output); it loads nothing from elsewhere",
    )


@dataclass(frozen=True)
class Options:
    html: str

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> Options:
        return cls(html=args.html)


def run(
    args: argparse.Namespace,
    endpoints: list[Endpoint],
    policy: Policy,
    state_dir: Path,
    prefetch: Prefetch | None,
) -> int:
    """Read every host, render the page, write it; exit 1 when no host could be read.
    `endpoints` are the hosts as named (-H, --hosts, --context: a context's TLS)."""
    from bilge.cli.common import reading, report_lost, warn
    from bilge.clock import SYSTEM_CLOCK
    from bilge.errors import EXIT_ERROR, EXIT_OK, EngineError
    from bilge.fleet import engine_factory
    from bilge.report.html import render
    from bilge.report.html.fleet import sections
    from bilge.session import Session

    options = Options.from_args(args)
    named = {e.label: e for e in endpoints}
    codes: list[int] = []

    def open_session(label: str) -> Session:
        endpoint = named[label]
        if endpoint.error:
            raise EngineError(endpoint.error)
        first = prefetch if endpoint is endpoints[0] else None
        opener = engine_factory(endpoint, policy)
        return Session(
            endpoint.address, policy, state_dir=state_dir, prefetch=first, engine_factory=opener
        )

    def close_session(session: Session) -> None:
        warn(session.close())
        codes.append(report_lost(session.lost()))

    hosts = list(named)
    with reading(", ".join(hosts), options.html == "-"):
        found = sections(hosts, open_session, close_session)
    write_report(render(found, SYSTEM_CLOCK.now()), options.html)
    failed = [s for s in found if s.error]
    for s in failed:  # in the page too; here for whoever runs it from cron
        print(f"bilge: error: {s.host}: {s.error}", file=sys.stderr)
    return max(EXIT_ERROR if len(failed) == len(found) else EXIT_OK, *codes)


def write_report(html: str, target: str) -> None:
    """The page to `target`, '-' being standard output."""
    from bilge.errors import UsageError
    from bilge.report.html import write_file

    if target == "-":
        sys.stdout.write(html)
        sys.stdout.flush()
        return
    try:
        write_file(html, Path(target))
    except OSError as exc:
        raise UsageError(f"cannot write the report to {target}: {exc.strerror or exc}") from exc
