"""The commands as the CLI shows them: run one on each host, render, exit code.

cli.py parses the command line and maps errors to exit codes; this module,
loaded only once the arguments are good, runs the command and renders its
result as text or JSON. Terminal output (rich) is loaded only when shown.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import partial
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING

from bilge import commands
from bilge.collect.prefetch import Prefetch
from bilge.config.locate import find_config
from bilge.config.policy import Policy, load_policy, with_orphans
from bilge.errors import EXIT_OK, EXIT_SOME_FAILED, UsageError
from bilge.model import ActionOutcome, Outcome, Plan, Result
from bilge.registry import handler as registry
from bilge.report import json as jsonreport
from bilge.report.text import printable
from bilge.state.records import Record, is_audit, lost_line
from bilge.state.store import default_state_dir

if TYPE_CHECKING:
    from rich.console import Console

#: A command's exit code, and its JSON document when --json asked for one.
Handled = tuple[int, dict[str, object] | None]


def run(args: argparse.Namespace, hosts: list[str], prefetch: Prefetch | None) -> int:
    """Run the command on each host; `prefetch` reads the first one's data-root."""
    policy = load_policy(find_config(getattr(args, "config", None)))
    if getattr(args, "orphans", False):
        policy = with_orphans(policy)
    state_dir = getattr(args, "state_dir", None) or default_state_dir()
    if args.command == "watch":
        return _watch(args, hosts, policy, state_dir)
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
            prefetch=prefetch if host == hosts[0] else None,
        )
        try:
            code, doc = handler(ctx, args)
        finally:
            _warn(ctx.close())
        codes.append(max(code, _report_lost(ctx.lost())))
        if doc is not None:
            docs.append(doc)
    if args.json:
        many = {"schema": jsonreport.SCHEMA, "kind": "hosts", "results": docs}
        print(jsonreport.dumps(docs[0] if len(docs) == 1 else many))
    return max(codes)


def _watch(args: argparse.Namespace, hosts: list[str], policy: Policy, state_dir: Path) -> int:
    """The guard watches every host at once, until stopped."""
    from bilge.guard import loop as watch
    from bilge.guard.alerts import Webhook
    from bilge.state.store import StateStore

    options = watch.WatchOptions.from_args(args)
    # A bad $BILGE_WEBHOOK_URL is a config error before anything is created.
    webhook = Webhook.from_config(policy.watch.webhook_url, policy.watch.webhook_format)
    store = StateStore(state_dir)
    code = watch.run(hosts, policy, store, options, webhook)
    return max(code, _report_lost(store.lost))


def _report_lost(records: list[Record]) -> int:
    """Records the state store could not write, its disk full to the end: each one
    goes to stderr as a JSON line (a log collector keeps them), and a lost audit
    record makes the exit code 3: the audit log is not complete."""
    for record in records:
        print(lost_line(record), file=sys.stderr)
    return EXIT_SOME_FAILED if any(is_audit(r) for r in records) else EXIT_OK


def _warn(warnings: list[str]) -> None:
    for warning in warnings:
        print(f"bilge: warning: {printable(warning)}", file=sys.stderr)


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
    refused: tuple[ActionOutcome, ...] = ()
    with _reading(ctx, args):
        if args.plan is not None:
            the_plan, snap, refused = commands.saved_plan(ctx, args.plan)
        else:
            status = commands.status(ctx)
            the_plan, snap = status.plan, status.snapshot
    run = partial(
        commands.run_apply, ctx, the_plan, snap, refused=refused, concurrency=args.concurrency
    )
    if not the_plan.actions:
        return _show_outcome(args, run())
    is_tty = sys.stdin.isatty() and sys.stderr.isatty()
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


def _doctor(ctx: commands.Context, args: argparse.Namespace) -> Handled:
    with _reading(ctx, args):
        result = commands.doctor(ctx)
    if args.json:
        return EXIT_OK, jsonreport.doctor_json(result.snapshot, result.findings)
    _terminal().render_doctor(_out(), result.snapshot, result.findings)
    return EXIT_OK, None


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
    "doctor": _doctor,
    "history": _history,
    "registry": registry.run,
}
