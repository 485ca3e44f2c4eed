"""Command line: parse, hand over to dispatch.py, and map errors to exit codes.

This is the one place errors are caught and shown: one line on stderr,
a traceback only with -v. It stays light to load: the rest of bilge is
imported only once the arguments are good (and the data-root prefetch runs).
"""

from __future__ import annotations

import argparse
import os
import sys
import traceback
from collections.abc import Sequence
from pathlib import Path

from bilge import __version__
from bilge.cli import apply, config, doctor, history, plan, registry, report, status, watch
from bilge.cli.common import FLEET_COMMANDS, Global, fleet_options
from bilge.collect.prefetch import Prefetch
from bilge.config.locate import find_config, named_volumes_kept
from bilge.engine.contexts import Endpoint, fleet_endpoints
from bilge.errors import EXIT_ERROR, EXIT_OK, BilgeError, EngineError, UsageError
from bilge.report.text import printable

#: Commands that read the engine's data-root (and so start a prefetch).
READS_DATA_ROOT = frozenset({"status", "plan", "apply", "doctor", "report"})

#: One module per command, each adding its own parser (cli/status.py, ...).
COMMANDS = (status, plan, apply, doctor, report, watch, history, config)


def build_parser() -> argparse.ArgumentParser:
    common = _common_options()
    parser = argparse.ArgumentParser(
        prog="bilge",
        description=(
            "Shows what fills a Docker or Podman host's disk and removes what is safe to remove."
        ),
        epilog="Exit codes: 0 ok, 1 error, 2 bad usage or config, 3 some removals failed.",
        parents=[common],
    )
    parser.add_argument("--version", action="version", version=f"bilge {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for command in COMMANDS:
        command.add_parser(sub, common)
    registry.add_parser(sub, common)
    return parser


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
    fleet_options(common)
    return common


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    verbose = Global.from_args(args).verbose
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
        return named_volumes_kept(find_config(Global.from_args(args).config))
    except BilgeError:
        return False  # reported once the policy is loaded


def _endpoints(args: argparse.Namespace) -> list[Endpoint]:
    """The hosts named (-H, --hosts, --context) or the default one. An entry that
    cannot be resolved is an error row of a fleet, and an error anywhere else."""
    settings = Global.from_args(args)
    endpoints = fleet_endpoints(settings.hosts, settings.hosts_files, settings.contexts)
    unresolved = [e.error for e in endpoints if e.error]
    if unresolved and not (settings.fleet and args.command in FLEET_COMMANDS):
        raise EngineError(unresolved[0])
    return endpoints


def _run(args: argparse.Namespace) -> int:
    endpoints = _endpoints(args)
    hosts = [e.address for e in endpoints]
    if args.command == "history":
        hosts = hosts[:1]  # the state store holds every host's history
    saves_or_reads_plan = vars(args).get("plan") or vars(args).get("out")
    fleet = Global.from_args(args).fleet and args.command in FLEET_COMMANDS
    if (len(hosts) > 1 or fleet) and saves_or_reads_plan:
        raise UsageError("a plan file belongs to one engine: give a single -H with --plan/--out")
    # Started before the rest of bilge is even loaded: the data-root is read
    # while Python imports, the policy is validated and the engine answers.
    prefetch = None
    if args.command in READS_DATA_ROOT and hosts[0]:
        prefetch = Prefetch.start(hosts[0], skip_named=_plan_keeps_named_volumes(args))
    try:
        from bilge.cli import dispatch

        return dispatch.run(args, hosts, prefetch, endpoints)
    finally:
        if prefetch is not None:
            prefetch.close()
