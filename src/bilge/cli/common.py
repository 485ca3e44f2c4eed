"""What every command of the command line shares: global options, the shape of a
command's result, and the terminal helpers.

Imported when the parser is built, so it imports nothing heavy: rich, pydantic
and the rest of bilge load only once a command runs.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from rich.console import Console

    from bilge.state.records import Record

#: The commands that run on every host of a fleet at once (cli/fleet.py).
FLEET_COMMANDS = frozenset({"status", "plan", "apply", "doctor"})

#: A command's exit code, and its JSON document when --json asked for one.
Handled = tuple[int, dict[str, object] | None]


@dataclass(frozen=True)
class Global:
    """The options every command takes, before or after its name."""

    hosts: tuple[str, ...]
    config: Path | None
    state_dir: Path | None
    verbose: bool
    json: bool
    orphans: bool
    #: A fleet (fleet_options): hosts files, Docker contexts, and how it runs.
    hosts_files: tuple[str, ...] = ()
    contexts: tuple[str, ...] = ()
    parallel: int = 8
    host_timeout: float | None = None
    summary: bool = False

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> Global:
        # The one place that reads the namespace loosely: options given before
        # the command name are suppressed, not defaulted, after it (see entry.py).
        ns = vars(args)
        return cls(
            hosts=tuple(ns.get("host") or ()),
            config=ns.get("config"),
            state_dir=ns.get("state_dir"),
            verbose=bool(ns.get("verbose")),
            json=bool(ns.get("json")),
            orphans=bool(ns.get("orphans")),
            hosts_files=tuple(ns.get("hosts_file") or ()),
            contexts=tuple(ns.get("context") or ()),
            parallel=int(ns.get("parallel") or 8),
            host_timeout=ns.get("host_timeout"),
            summary=bool(ns.get("summary")),
        )

    @property
    def fleet(self) -> bool:
        """Named hosts run as a fleet: several of them, or a summary asked for."""
        return self.summary or len(self.hosts) + len(self.contexts) > 1 or bool(self.hosts_files)


def fleet_options(common: argparse.ArgumentParser) -> None:
    """The options that name a fleet and say how it runs (global: before or
    after the command name, like -H)."""
    s = argparse.SUPPRESS  # so a value given before the command is not reset after it
    common.add_argument(
        "--hosts", dest="hosts_file", action="append", default=s, metavar="FILE",
        help="a file of hosts: an address or Docker context name per line, # comments;"
        " - reads stdin",
    )  # fmt: skip
    common.add_argument(
        "--context", action="append", default=s, metavar="NAME",
        help="a Docker context (~/.docker/contexts), TLS included; repeat for several",
    )  # fmt: skip
    common.add_argument(
        "--parallel", type=_positive_int, default=s, metavar="N",
        help="hosts of a fleet run at once (default 8)",
    )  # fmt: skip
    common.add_argument(
        "--host-timeout", type=_seconds, default=s, metavar="DURATION",
        help="give up on a host of a fleet after this long, e.g. 90s or 10m (default: none)",
    )  # fmt: skip
    common.add_argument(
        "--summary", action="store_true", default=s,
        help="a fleet's summary table only, not each host's output",
    )  # fmt: skip


def _positive_int(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"not a whole number of at least 1: {text!r}")
    return int(text)


def _seconds(text: str) -> float:
    from bilge.config.units import parse_duration

    try:
        seconds = parse_duration(text).total_seconds()
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    if seconds <= 0:
        raise argparse.ArgumentTypeError(f"must be more than 0: {text!r}")
    return seconds


def add_command(
    sub: argparse._SubParsersAction[argparse.ArgumentParser],
    common: argparse.ArgumentParser,
    name: str,
    summary: str,
    example: str,
) -> argparse.ArgumentParser:
    """A subcommand with its summary, its example, the global options and --json."""
    p = sub.add_parser(
        name,
        help=summary,
        description=summary[0].upper() + summary[1:] + ".",
        epilog=example,
        parents=[common],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--json", action="store_true", help="machine-readable output (schema 1)")
    return p


def orphans_option(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--orphans",
        action="store_true",
        help="also remove orphaned layer directories ([orphans] remove = true)",
    )


def terminal() -> ModuleType:
    """The terminal renderers, loaded only when something is shown there."""
    from bilge.report import terminal

    return terminal


def out() -> Console:
    from bilge.report import interactive

    return interactive.out()


@contextmanager
def reading(host: str, quiet: bool) -> Iterator[None]:
    """A spinner while the engine is read, unless the output is JSON."""
    if quiet:
        yield
        return
    from bilge.report import interactive

    with interactive.reading(host):
        yield


def warn(warnings: list[str]) -> None:
    from bilge.report.text import printable

    for warning in warnings:
        print(f"bilge: warning: {printable(warning)}", file=sys.stderr)


def report_lost(records: list[Record]) -> int:
    """Records the state store could not write, its disk full to the end: each one
    goes to stderr as a JSON line (a log collector keeps them), and a lost audit
    record makes the exit code 3: the audit log is not complete."""
    from bilge.errors import EXIT_OK, EXIT_SOME_FAILED
    from bilge.state.records import is_audit, lost_line

    for record in records:
        print(lost_line(record), file=sys.stderr)
    return EXIT_SOME_FAILED if any(is_audit(r) for r in records) else EXIT_OK


def save_document(doc: dict[str, object], path: Path) -> None:
    """Write a JSON document (a saved plan) for a later command to read."""
    from bilge.errors import UsageError
    from bilge.report.json import dumps

    try:
        path.write_text(dumps(doc) + "\n")
    except OSError as exc:
        raise UsageError(f"cannot write plan to {path}: {exc.strerror or exc}") from exc
