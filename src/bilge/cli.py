"""Command line: parse, run one command, render, and map errors to exit codes.

This is the one place errors are caught and shown: one line on stderr,
a traceback only with -v.
"""

from __future__ import annotations

import argparse
import sys
import traceback
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from functools import partial
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING

from bilge import __version__, commands
from bilge.apply import DEFAULT_CONCURRENCY
from bilge.engine import resolve_host
from bilge.errors import BilgeError, UsageError
from bilge.model import Outcome, Plan, Result
from bilge.policy import find_config, load_policy
from bilge.report import json as jsonreport
from bilge.state import default_state_dir

if TYPE_CHECKING:
    from rich.console import Console

#: A command's exit code, and its JSON document when --json asked for one.
Handled = tuple[int, dict[str, object] | None]

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_USAGE = 2
EXIT_SOME_FAILED = 3

EXAMPLES = {
    "status": "example: bilge status\n"
    "         bilge -H unix:///run/user/1000/docker.sock status --json",
    "plan": "example: bilge plan --explain\n         bilge plan --out plan.json",
    "apply": "example: bilge apply            (shows the plan and asks)\n"
    "         bilge apply --yes --json\n"
    "         bilge apply --plan plan.json --yes",
    "history": "example: bilge history --limit 20",
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
    _add(sub, common, "status", "usage and breakdown, and what the policy would reclaim")
    p = _add(sub, common, "plan", "what would be removed, why, and how many bytes it frees")
    p.add_argument("--explain", action="store_true", help="also show what is kept and why")
    p.add_argument("--out", type=Path, metavar="FILE", help="save the plan for `apply --plan`")
    p = _add(sub, common, "apply", "remove what the plan says, safely")
    p.add_argument("--yes", "-y", action="store_true", help="do not ask for confirmation")
    p.add_argument("--plan", type=Path, metavar="FILE", help="apply a plan saved by `plan --out`")
    p.add_argument(
        "--concurrency",
        type=int,
        default=DEFAULT_CONCURRENCY,
        metavar="N",
        help=f"parallel removals (default {DEFAULT_CONCURRENCY})",
    )
    p = _add(sub, common, "history", "the audit log of removals and recorded usage samples")
    p.add_argument("--limit", type=int, default=50, metavar="N", help="entries to show")
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
    print(f"bilge: error: {message}", file=sys.stderr)


def _run(args: argparse.Namespace) -> int:
    hosts: list[str] = getattr(args, "host", None) or [resolve_host(None)]
    if args.command == "history":
        hosts = hosts[:1]  # the state store holds every host's history
    if len(hosts) > 1 and (getattr(args, "plan", None) or getattr(args, "out", None)):
        raise UsageError("a plan file belongs to one engine: give a single -H with --plan/--out")
    policy = load_policy(find_config(getattr(args, "config", None)))
    handler = HANDLERS[args.command]
    codes: list[int] = []
    docs: list[dict[str, object]] = []
    for host in hosts:
        if len(hosts) > 1 and not args.json:
            _out().rule(host)
        ctx = commands.Context(
            host=host,
            policy=policy,
            state_dir=getattr(args, "state_dir", None) or default_state_dir(),
        )
        try:
            code, doc = handler(ctx, args)
        finally:
            ctx.close()
        codes.append(code)
        if doc is not None:
            docs.append(doc)
    if args.json:
        many = {"schema": jsonreport.SCHEMA, "kind": "hosts", "results": docs}
        print(jsonreport.dumps(docs[0] if len(docs) == 1 else many))
    return max(codes)


def _terminal() -> ModuleType:
    """The terminal renderers, loaded only when something is shown there."""
    from bilge.report import terminal

    return terminal


def _out() -> Console:
    from bilge.report import interactive

    return interactive.out()


def _status(ctx: commands.Context, args: argparse.Namespace) -> Handled:
    with _reading(ctx, args):
        result = commands.status(ctx)
    if args.json:
        return EXIT_OK, jsonreport.status_json(result.snapshot, result.plan)
    _terminal().render_status(_out(), result.snapshot, result.plan)
    return EXIT_OK, None


def _plan(ctx: commands.Context, args: argparse.Namespace) -> Handled:
    with _reading(ctx, args):
        the_plan = commands.status(ctx).plan
    if args.out is not None:
        _save_plan(the_plan, args.out)
    if args.json:
        return EXIT_OK, jsonreport.plan_json(the_plan)
    _terminal().render_plan(_out(), the_plan, explain=args.explain)
    if args.out is not None:
        _out().print(f"Plan saved to {args.out}; apply it with `bilge apply --plan {args.out}`.")
    return EXIT_OK, None


@contextmanager
def _reading(ctx: commands.Context, args: argparse.Namespace) -> Iterator[None]:
    if args.json:
        yield
        return
    from bilge.report import interactive

    with interactive.reading(ctx.host):
        yield


def _save_plan(the_plan: Plan, path: Path) -> None:
    try:
        path.write_text(jsonreport.dumps(jsonreport.plan_json(the_plan)) + "\n")
    except OSError as exc:
        raise UsageError(f"cannot write plan to {path}: {exc.strerror or exc}") from exc


def _apply(ctx: commands.Context, args: argparse.Namespace) -> Handled:
    if args.concurrency < 1:
        raise UsageError("--concurrency must be at least 1")
    if args.plan is not None:
        the_plan = commands.load_plan(args.plan)
        with _reading(ctx, args):
            snap = commands.snapshot(ctx)
    else:
        with _reading(ctx, args):
            status = commands.status(ctx)
        the_plan, snap = status.plan, status.snapshot
    if not the_plan.actions:
        return _show_outcome(args, commands.run_apply(ctx, the_plan, snap, saved=False))
    is_tty = sys.stdin.isatty() and sys.stderr.isatty()
    run = partial(
        commands.run_apply,
        ctx,
        the_plan,
        snap,
        saved=args.plan is not None,
        concurrency=args.concurrency,
    )
    if not args.yes:
        from bilge.report import interactive

        interactive.confirm(the_plan, quiet=args.json, is_tty=is_tty)
    if args.json:  # no bar, and no rich to load, for scripts
        return _show_outcome(args, run())
    from bilge.report import interactive

    with interactive.progress(len(the_plan.actions)) as advance:
        return _show_outcome(args, run(on_result=advance))


def _show_outcome(args: argparse.Namespace, outcome: Outcome) -> Handled:
    code = EXIT_SOME_FAILED if outcome.count(Result.FAILED) else EXIT_OK
    if args.json:
        return code, jsonreport.outcome_json(outcome)
    _terminal().render_outcome(_out(), outcome)
    return code, None


def _history(ctx: commands.Context, args: argparse.Namespace) -> Handled:
    result = commands.history(ctx, args.limit)
    if args.json:
        return EXIT_OK, jsonreport.history_json(result.entries, result.samples)
    _terminal().render_history(_out(), result.entries, result.samples)
    return EXIT_OK, None


HANDLERS: dict[str, Callable[[commands.Context, argparse.Namespace], Handled]] = {
    "status": _status,
    "plan": _plan,
    "apply": _apply,
    "history": _history,
}
