"""`bilge registry ...` as the CLI shows it: run, render, exit code.

bilge.cli.handlers calls `run` once the arguments are good; like the engine
commands, the work happens in commands.py and only this module renders.
httpx (commands.py) and rich (report.py) are imported only when a registry
command runs, not whenever bilge.cli.handlers is loaded.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Protocol

from bilge.applier.core import AuditLog
from bilge.config.units import format_size
from bilge.errors import EXIT_OK, EXIT_SOME_FAILED, UsageError
from bilge.model import Result
from bilge.registry.policy import Registries

if TYPE_CHECKING:
    from rich.console import Console

    from bilge.config.policy import Policy
    from bilge.registry.model import RegistryPlan

Handled = tuple[int, dict[str, object] | None]


class AuditStore(AuditLog, Protocol):
    def flush(self) -> int: ...


class Caller(Protocol):
    """What a registry command needs of whoever runs it (the CLI's session for the
    engine commands serves): the policy, and the state store for the audit log.
    A protocol, so that the registry package does not import the CLI's modules."""

    @property
    def policy(self) -> Policy: ...

    @property
    def store(self) -> AuditStore: ...


def run(ctx: Caller, args: argparse.Namespace) -> Handled:
    """Run `bilge registry ACTION` for the registries selected."""
    if getattr(args, "host", None):
        raise UsageError("-H/--host names Docker engines; choose registries with --registry")
    from bilge.registry import commands

    registries = commands.select(ctx.policy.registry, args.registry or [])
    action = {"plan": _plan, "apply": _apply, "gc": _gc}[args.registry_command]
    return action(ctx, args, registries)


def _plan(ctx: Caller, args: argparse.Namespace, registries: Registries) -> Handled:
    from bilge.registry import commands, document

    with _reading(args, registries):
        plan = commands.make_plan(registries, ctx.policy.keep_label)
    if args.out is not None:
        _save(plan, args)
    if args.json:
        return EXIT_OK, document.plan_json(plan)
    from bilge.registry import report

    report.render_plan(_out(), plan, explain=args.explain)
    if args.out is not None:
        saved = f"Plan saved to {args.out}; `bilge registry apply --plan {args.out}`."
        _out().print(saved, markup=False)
    return EXIT_OK, None


def _save(plan: RegistryPlan, args: argparse.Namespace) -> None:
    from bilge.registry import document
    from bilge.report.json import dumps

    try:
        args.out.write_text(dumps(document.plan_json(plan)) + "\n")
    except OSError as exc:
        raise UsageError(f"cannot write plan to {args.out}: {exc.strerror or exc}") from exc


def _apply(ctx: Caller, args: argparse.Namespace, registries: Registries) -> Handled:
    from bilge.registry import commands, document

    if args.plan is not None:
        plan = commands.load_plan(args.plan, registries)
    else:
        with _reading(args, registries):
            plan = commands.make_plan(registries, ctx.policy.keep_label)
    if plan.deletions and not args.yes:
        from bilge.registry.report import manifests_to_delete

        _confirm(
            plan,
            f"Delete {manifests_to_delete(plan)} from "
            f"{', '.join(plan.registries)} ({format_size(plan.total_bytes)} only they hold)?",
            quiet=args.json,
        )
    outcome = commands.run_apply(plan, registries, ctx.store)
    ctx.store.flush()
    code = EXIT_SOME_FAILED if outcome.count(Result.FAILED) else EXIT_OK
    if args.json:
        return code, document.outcome_json(outcome)
    from bilge.registry import report

    report.render_outcome(_out(), outcome)
    return code, None


def _gc(ctx: Caller, args: argparse.Namespace, registries: Registries) -> Handled:
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
    result = commands.gc(config, ctx.store, dry_run=args.dry_run)
    ctx.store.flush()
    if args.json:
        return EXIT_OK, document.gc_json(result)
    from bilge.registry import report

    report.render_gc(_out(), result)
    return EXIT_OK, None


def _confirm(plan: RegistryPlan | None, question: str, *, quiet: bool) -> None:
    """Ask on a terminal; without one, refuse rather than guess."""
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


def _out() -> Console:
    """The engine commands' console: off a terminal, as wide as what it prints."""
    from bilge.report.console import out

    return out()
