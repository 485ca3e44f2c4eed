"""`bilge registry plan | apply | gc`: registry retention and safe garbage
collection, by the [[registry]] tables of the policy (docs/registry.md).

The parser is built whenever bilge starts, so this module imports nothing heavy
at the top: httpx, pydantic and rich load once a registry command runs. The work
is the registry package's (bilge.registry.commands); this module renders it.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from bilge.cli.common import Global, Handled, out, save_document

if TYPE_CHECKING:
    from bilge.registry.model import RegistryPlan
    from bilge.registry.policy import Registries
    from bilge.session import Session

EXAMPLE = (
    "example: bilge registry plan --explain\n"
    "         bilge registry plan --out registry-plan.json\n"
    "         bilge registry apply --plan registry-plan.json --yes\n"
    "         bilge registry gc --dry-run\n"
    "         bilge registry gc --registry registry.example.com --yes\n"
    "         bilge registry listen --addr 127.0.0.1:5080"
)
_PLAN = "example: bilge registry plan --explain\n         bilge registry plan --json"
_APPLY = "example: bilge registry apply\n         bilge registry apply --plan plan.json --yes"
_GC = "example: bilge registry gc --dry-run\n         bilge registry gc --yes --json"
_LISTEN = (
    "example: BILGE_NOTIFY_TOKEN=... bilge registry listen --addr 127.0.0.1:5080\n"
    "         (the registry's config.yml: notifications.endpoints, docs/registry.md)"
)


def add_parser(
    sub: argparse._SubParsersAction[argparse.ArgumentParser], common: argparse.ArgumentParser
) -> None:
    """Add `registry` and its actions to bilge's subcommands."""
    registry = sub.add_parser(
        "registry",
        help="registry retention (plan, apply) and safe garbage collection (gc)",
        description="Registry retention and safe garbage collection, by the [[registry]] "
        "tables of the policy (docs/registry.md). Credentials come from the Docker "
        "config (`docker login`).",
        epilog=EXAMPLE,
        parents=[common],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    actions = registry.add_subparsers(dest="registry_command", metavar="ACTION", required=True)
    p = _action(actions, common, "plan", "tags to delete, why, and the bytes only they hold", _PLAN)
    p.add_argument("--explain", action="store_true", help="also show each kept tag and why")
    p.add_argument("--out", type=Path, metavar="FILE", help="save the plan for `apply --plan`")
    p = _action(actions, common, "apply", "delete what the plan says, re-checking each tag", _APPLY)
    p.add_argument("--yes", "-y", action="store_true", help="do not ask for confirmation")
    p.add_argument("--plan", type=Path, metavar="FILE", help="apply a plan saved by `plan --out`")
    p = _action(actions, common, "gc", "garbage-collect safely: read-only while it runs", _GC)
    p.add_argument("--dry-run", action="store_true", help="only report what would be deleted")
    p.add_argument("--yes", "-y", action="store_true", help="do not ask for confirmation")
    p = actions.add_parser(
        "listen",
        help="record pulls from the registry's notifications (for keep_pulled_within)",
        description="Receive the registry's notifications and record the last pull of each "
        "manifest in the state store, for rules with keep_pulled_within. Requests must carry "
        "the bearer token (notify_token or $BILGE_NOTIFY_TOKEN). Runs until stopped.",
        epilog=_LISTEN,
        parents=[common],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--registry", action="append", metavar="NAME", help="the registry it is for")
    p.add_argument("--addr", default="127.0.0.1:5080", metavar="HOST:PORT", help="where to listen")


def _action(
    actions: argparse._SubParsersAction[argparse.ArgumentParser],
    common: argparse.ArgumentParser,
    name: str,
    summary: str,
    example: str,
) -> argparse.ArgumentParser:
    p: argparse.ArgumentParser = actions.add_parser(
        name,
        help=summary,
        description=summary[0].upper() + summary[1:] + ".",
        epilog=example,
        parents=[common],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "--registry",
        action="append",
        metavar="NAME",
        help="only this registry (its name, host[:port] or URL); repeat for several",
    )
    p.add_argument("--json", action="store_true", help="machine-readable output (schema 1)")
    return p


def run(args: argparse.Namespace, session: Session) -> int:
    """Run the registry action; prints its JSON document itself when asked."""
    from bilge.cli.common import report_lost, warn
    from bilge.report import json as jsonreport

    try:
        code, doc = _run(session, args)
    finally:
        warn(session.close())
    if doc is not None:
        print(jsonreport.dumps(doc))
    return max(code, report_lost(session.lost()))


def _run(session: Session, args: argparse.Namespace) -> Handled:
    """Run `bilge registry ACTION` for the registries selected."""
    from bilge.errors import UsageError
    from bilge.registry import commands

    if Global.from_args(args).hosts:
        raise UsageError("-H/--host names Docker engines; choose registries with --registry")

    registries = commands.select(session.policy.registry, args.registry or [])
    action = {"plan": _plan, "apply": _apply, "gc": _gc, "listen": _listen}[args.registry_command]
    return action(session, args, registries)


def _plan(session: Session, args: argparse.Namespace, registries: Registries) -> Handled:
    from bilge.errors import EXIT_OK
    from bilge.registry import document

    plan = _make_plan(session, args, registries)
    if args.out is not None:
        _save(plan, args)
    if args.json:
        return EXIT_OK, document.plan_json(plan)
    from bilge.registry import report

    report.render_plan(out(), plan, explain=args.explain)
    if args.out is not None:
        saved = f"Plan saved to {args.out}; `bilge registry apply --plan {args.out}`."
        out().print(saved, markup=False)
    return EXIT_OK, None


def _make_plan(session: Session, args: argparse.Namespace, registries: Registries) -> RegistryPlan:
    """A fresh plan; the last pulls are read from the state store when a rule
    keeps what was pulled lately."""
    from bilge.registry import commands

    pulls = None
    if commands.needs_pulls(registries):
        from bilge.registry.pulls import read_pulls

        pulls = read_pulls(session.state_dir, session.clock.now())
    with _reading(args, registries):
        return commands.make_plan(
            registries, session.policy.keep_label, pulls=pulls, clock=session.clock
        )


def _save(plan: RegistryPlan, args: argparse.Namespace) -> None:
    from bilge.registry import document

    save_document(document.plan_json(plan), args.out)


def _apply(session: Session, args: argparse.Namespace, registries: Registries) -> Handled:
    from bilge.config.units import format_size
    from bilge.errors import EXIT_OK, EXIT_SOME_FAILED
    from bilge.model import Result
    from bilge.registry import commands, document

    if args.plan is not None:
        plan = commands.load_plan(args.plan, registries)
    else:
        plan = _make_plan(session, args, registries)
    if plan.deletions and not args.yes:
        from bilge.registry.report import manifests_to_delete

        _confirm(
            plan,
            f"Delete {manifests_to_delete(plan)} from "
            f"{', '.join(plan.registries)} ({format_size(plan.total_bytes)} only they hold)?",
            quiet=args.json,
        )
    outcome = commands.run_apply(plan, registries, session.store)
    session.store.flush()
    code = EXIT_SOME_FAILED if outcome.count(Result.FAILED) else EXIT_OK
    if args.json:
        return code, document.outcome_json(outcome)
    from bilge.registry import report

    report.render_outcome(out(), outcome)
    return code, None


def _gc(session: Session, args: argparse.Namespace, registries: Registries) -> Handled:
    from bilge.errors import EXIT_OK, UsageError
    from bilge.registry import commands, document

    if len(registries) > 1:
        raise UsageError("gc works on one registry at a time: choose it with --registry")
    config = registries[0]
    if not args.dry_run and not args.yes:
        _confirm(
            None,
            f"Make {config.label} read-only, collect its garbage, and restart it writable?",
            quiet=True,
        )
    result = commands.gc(config, session.store, dry_run=args.dry_run)
    session.store.flush()
    if args.json:
        return EXIT_OK, document.gc_json(result)
    from bilge.registry import report

    report.render_gc(out(), result)
    return EXIT_OK, None


def _listen(session: Session, args: argparse.Namespace, registries: Registries) -> Handled:
    import os

    from bilge.errors import EXIT_OK, UsageError
    from bilge.registry.listen import serve

    if len(registries) > 1:
        raise UsageError("listen records the pulls of one registry: choose it with --registry")
    serve(registries[0], args.addr, session.state_dir, os.environ, session.clock)
    return EXIT_OK, None


def _confirm(plan: RegistryPlan | None, question: str, *, quiet: bool) -> None:
    """Ask on a terminal; without one, refuse rather than guess."""
    from bilge.errors import UsageError

    if not (sys.stdin.isatty() and sys.stderr.isatty()):
        raise UsageError("refusing to change the registry without --yes (no terminal to ask on)")
    from rich.console import Console

    err = Console(stderr=True, highlight=False)
    if plan is not None and not quiet:
        from bilge.registry import report

        report.render_plan(err, plan, explain=False)
    answer = err.input(f"{question} [y/N] ", markup=False)
    if answer.strip().lower() not in {"y", "yes"}:
        raise UsageError("nothing changed: not confirmed")


@contextmanager
def _reading(args: argparse.Namespace, registries: Registries) -> Iterator[None]:
    """A spinner while registries are read, on a terminal only."""
    if args.json:
        yield
        return
    from rich.console import Console

    err = Console(stderr=True)
    if not err.is_terminal:
        yield
        return
    with err.status(f"Reading {', '.join(r.label for r in registries)}..."):
        yield
