"""Command line: parse, hand over to handlers.py, and map errors to exit codes.

This is the one place errors are caught and shown: one line on stderr,
a traceback only with -v. It stays light to load: the rest of bilge is
imported only once the arguments are good (and the data-root prefetch runs).
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import traceback
from collections.abc import Sequence
from pathlib import Path

from bilge import __version__
from bilge.collect.prefetch import Prefetch
from bilge.config.locate import find_config, named_volumes_kept
from bilge.engine.docker import DEFAULT_CONCURRENCY, resolve_host
from bilge.errors import EXIT_ERROR, EXIT_OK, BilgeError, UsageError
from bilge.registry import cli as registry_cli
from bilge.report.text import printable

#: Commands that read the engine's data-root (and so start a prefetch).
READS_DATA_ROOT = frozenset({"status", "plan", "apply", "doctor"})


EXAMPLES = {
    "status": "example: bilge status\n"
    "         bilge -H unix:///run/user/1000/docker.sock status --json",
    "plan": "example: bilge plan --explain\n         bilge plan --out plan.json",
    "apply": "example: bilge apply            (shows the plan and asks)\n"
    "         bilge apply --yes --json\n"
    "         bilge apply --plan plan.json --yes",
    "doctor": "example: bilge doctor\n         bilge doctor --json",
    "watch": "example: bilge watch\n"
    "         bilge watch --metrics-addr 0.0.0.0:9808 --log-format json",
    "history": "example: bilge history --limit 20",
    "registry": registry_cli.EXAMPLE,
}


def build_parser() -> argparse.ArgumentParser:
    common = _common_options()
    parser = argparse.ArgumentParser(
        prog="bilge",
        description="Shows what fills a Docker host's disk and removes what is safe to remove.",
        epilog="Exit codes: 0 ok, 1 error, 2 bad usage or config, 3 some removals failed.",
        parents=[common],
    )
    parser.add_argument("--version", action="version", version=f"bilge {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    p = _add(sub, common, "status", "usage and breakdown, and what the policy would reclaim")
    _orphans_option(p)
    p = _add(sub, common, "plan", "what would be removed, why, and how many bytes it frees")
    _orphans_option(p)
    p.add_argument(
        "--explain",
        action="store_true",
        help="list every action (a long plan is shown by kind) and what is kept, and why",
    )
    p.add_argument("--out", type=Path, metavar="FILE", help="save the plan for `apply --plan`")
    p = _add(sub, common, "apply", "remove what the plan says, safely")
    _orphans_option(p)
    p.add_argument("--yes", "-y", action="store_true", help="do not ask for confirmation")
    p.add_argument("--plan", type=Path, metavar="FILE", help="apply a plan saved by `plan --out`")
    p.add_argument(
        "--concurrency",
        type=int,
        default=DEFAULT_CONCURRENCY,
        metavar="N",
        help=f"parallel removals (default {DEFAULT_CONCURRENCY})",
    )
    p = _add(sub, common, "doctor", "what is wrong with the disk: findings, evidence and fixes")
    _orphans_option(p)
    p = _add(sub, common, "watch", "the guard: keep the disk below its high watermark")
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
    p = _add(sub, common, "history", "the audit log of removals and recorded usage samples")
    p.add_argument("--limit", type=int, default=50, metavar="N", help="entries to show")
    registry_cli.add_parser(sub, common)
    return parser


_ADDRESS = re.compile(r"(\[[0-9a-fA-F:]+\]|[A-Za-z0-9.\-]*):([0-9]{1,5})")


def _address(text: str) -> str:
    """HOST:PORT as [watch] metrics_addr takes it, checked before the guard starts."""
    match = _ADDRESS.fullmatch(text)
    if match is None or int(match.group(2)) > 65535:
        raise argparse.ArgumentTypeError(f"not a HOST:PORT with a port up to 65535: {text!r}")
    return text


def _orphans_option(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--orphans",
        action="store_true",
        help="also remove orphaned layer directories ([orphans] remove = true)",
    )


def _common_options() -> argparse.ArgumentParser:
    """Options accepted both before and after the command name."""
    common = argparse.ArgumentParser(add_help=False)
    s = argparse.SUPPRESS  # so a value given before the command is not reset after it
    common.add_argument(
        "-H",
        "--host",
        action="append",
        default=s,
        metavar="URL",
        help="engine address, like docker's; repeat for several hosts",
    )
    common.add_argument("-c", "--config", type=Path, default=s, metavar="FILE", help="policy file")
    common.add_argument("--state-dir", type=Path, default=s, metavar="DIR", help="state store dir")
    common.add_argument("-v", "--verbose", action="store_true", default=s, help="tracebacks")
    return common


def _add(
    sub: argparse._SubParsersAction[argparse.ArgumentParser],
    common: argparse.ArgumentParser,
    name: str,
    summary: str,
) -> argparse.ArgumentParser:
    p = sub.add_parser(
        name,
        help=summary,
        description=summary[0].upper() + summary[1:] + ".",
        epilog=EXAMPLES[name],
        parents=[common],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--json", action="store_true", help="machine-readable output (schema 1)")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    verbose = bool(getattr(args, "verbose", False))
    try:
        return _run(args)
    except BrokenPipeError:
        # The reader went away (`bilge history --json | head`): a normal end for a
        # command line tool. Python would complain again when it flushes stdout at
        # exit, so stdout is pointed at /dev/null first.
        _quiet_stdout()
        return EXIT_OK
    except BilgeError as exc:
        _fail(str(exc), verbose)
        return exc.exit_code
    except KeyboardInterrupt:
        _fail("interrupted", verbose)
        return 130
    except Exception as exc:  # a bug: still one line, the traceback with -v
        _fail(f"internal error: {type(exc).__name__}: {exc}", verbose)
        return EXIT_ERROR


def _fail(message: str, verbose: bool) -> None:
    if verbose:
        traceback.print_exc()
    # Error texts quote what engines and registries said: never raw control characters.
    print(f"bilge: error: {printable(message)}", file=sys.stderr)


def _quiet_stdout() -> None:
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError):
        pass


def _plan_keeps_named_volumes(args: argparse.Namespace) -> bool:
    """True when this command only plans (or applies a fresh plan) under a policy that
    keeps every named volume: reading a named volume's files, possibly a database's
    millions, would then only size something that stays. `status`, `doctor`,
    `--explain` and a saved plan's staleness check still see them whole."""
    plans = args.command == "plan" and not args.explain
    applies = args.command == "apply" and args.plan is None
    if not (plans or applies):
        return False
    try:
        return named_volumes_kept(find_config(getattr(args, "config", None)))
    except BilgeError:
        return False  # reported once the policy is loaded


def _run(args: argparse.Namespace) -> int:
    hosts: list[str] = getattr(args, "host", None) or [resolve_host(None)]
    if args.command == "history":
        hosts = hosts[:1]  # the state store holds every host's history
    if len(hosts) > 1 and (getattr(args, "plan", None) or getattr(args, "out", None)):
        raise UsageError("a plan file belongs to one engine: give a single -H with --plan/--out")
    # Started before the rest of bilge is even loaded: the data-root is read
    # while Python imports, the policy is validated and the engine answers.
    prefetch = None
    if args.command in READS_DATA_ROOT:
        prefetch = Prefetch.start(hosts[0], skip_named=_plan_keeps_named_volumes(args))
    try:
        from bilge.cli import handlers

        return handlers.run(args, hosts, prefetch)
    finally:
        if prefetch is not None:
            prefetch.close()
