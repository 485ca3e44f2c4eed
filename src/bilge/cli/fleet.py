"""status, plan, doctor and apply on a fleet: every host at once, one summary.

Runs when several hosts are named (or `--summary` asks for the table): the
hosts run in parallel (bilge/fleet.py) with a line per host on stderr while
they do; then each host's usual output in the order given (not with
`--summary`), then the summary, worst first. `apply` first plans everywhere,
shows the plan per host and asks once (refusing without --yes off a terminal,
as for one host), then applies everywhere. With --json: one document,
`{"schema": 1, "kind": "hosts", "results": [...]}`, a host's usual document or
`{"host", "error"}` each. The exit code is the worst host's (fleet.worst_exit).
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from bilge.cli.common import Global, out, report_lost, warn
from bilge.errors import EXIT_OK

if TYPE_CHECKING:
    from rich.console import Console

    from bilge.collect.prefetch import Prefetch
    from bilge.config.policy import Policy
    from bilge.engine.contexts import Endpoint
    from bilge.fleet import Fleet, HostReport, HostResult
    from bilge.report.fleet import FleetProgress


@dataclass(frozen=True)
class Request:
    """One fleet command: which, on which hosts, and how it is shown."""

    command: str
    options: Any  # the command's own Options (cli/status.py, plan.py, ...)
    endpoints: Sequence[Endpoint]
    json: bool
    summary_only: bool


def run(request: Request, settings: Global, policy: Policy, prefetch: Prefetch | None) -> int:
    """Run the command on every host; returns the worst exit code."""
    from bilge.fleet import Fleet, worst_exit
    from bilge.report.fleet import FleetProgress
    from bilge.state.store import default_state_dir

    fleet = Fleet(
        request.endpoints,
        policy,
        settings.state_dir or default_state_dir(),
        parallel=settings.parallel,
        host_timeout=settings.host_timeout,
        prefetch=prefetch,
    )
    try:
        progress = FleetProgress([e.label for e in request.endpoints]) if not request.json else None
        code = _show(request, _execute(request, fleet, progress))
    finally:
        warn(fleet.close())
    return worst_exit([code, report_lost(fleet.store.lost)])


def _execute(
    request: Request, fleet: Fleet, progress: FleetProgress | None
) -> list[HostResult[HostReport]]:
    on_state = progress.state if progress is not None else None
    if progress is None:
        surveyed = fleet.survey()
    else:
        with progress.running():
            surveyed = fleet.survey(on_state)
    if request.command != "apply":
        return surveyed
    if any(r.value is not None and r.value.plan.actions for r in surveyed):
        _confirm(request, surveyed)
    concurrency = request.options.concurrency
    if progress is None:
        return fleet.apply(surveyed, concurrency=concurrency)
    for index, result in enumerate(surveyed):
        progress.planned(index, len(result.value.plan.actions) if result.value else 0)
    with progress.running():
        return fleet.apply(
            surveyed, concurrency=concurrency, on_state=on_state, on_result=progress.removed
        )


def _confirm(request: Request, surveyed: Sequence[HostResult[HostReport]]) -> None:
    """Ask once for the whole fleet, showing each host's plan in totals."""
    if request.options.yes:
        return
    from rich.console import Console

    from bilge.errors import UsageError
    from bilge.report.fleet import render_plan_totals

    if not (sys.stdin.isatty() and sys.stderr.isatty()):
        raise UsageError("refusing to remove anything without --yes (no terminal to ask on)")
    err = Console(stderr=True, highlight=False)
    render_plan_totals(err, surveyed)
    ready = [r.value for r in surveyed if r.value is not None]
    objects = sum(len(r.plan.actions) for r in ready)
    from bilge.config.units import format_size

    freed = format_size(sum(r.plan.total_bytes for r in ready))
    answer = err.input(f"Remove {objects} objects on {len(ready)} hosts, freeing {freed}? [y/N] ",
                       markup=False)  # fmt: skip
    if answer.strip().lower() not in {"y", "yes"}:
        raise UsageError("nothing removed: not confirmed")


def _show(request: Request, results: Sequence[HostResult[HostReport]]) -> int:
    from bilge.fleet import worst_exit
    from bilge.report import json as jsonreport

    if request.json:
        docs = [_document(request, r) for r in results]
        print(jsonreport.dumps({"schema": jsonreport.SCHEMA, "kind": "hosts", "results": docs}))
    else:
        _render(request, results)
    return worst_exit(r.code for r in results) if results else EXIT_OK


def _document(request: Request, result: HostResult[HostReport]) -> dict[str, object]:
    """The host's usual document, with its "host" (an error row has only that)."""
    if result.value is None:
        return {"host": result.host, "error": result.error}
    render = _JSON[request.command]
    doc = render(result.value)
    return {"host": result.endpoint.address, **doc} if "host" not in doc else doc


def _render(request: Request, results: Sequence[HostResult[HostReport]]) -> None:
    from bilge.report.fleet import render_summary, summary_rows

    console = out()
    if not request.summary_only:
        for result in results:
            console.rule(result.host, characters="═")
            if result.value is None:
                from bilge.report.literal import literal

                console.print(literal(f"error: {result.error}", "red"))
                continue
            _TERMINAL[request.command](console, result.value, request.options)
    render_summary(console, summary_rows(results), applied=request.command == "apply")


def _status_json(r: HostReport) -> dict[str, object]:
    from bilge.report import json as jsonreport

    return jsonreport.status_json(r.snapshot, r.plan)


def _plan_json(r: HostReport) -> dict[str, object]:
    from bilge.report import json as jsonreport

    return jsonreport.plan_json(r.plan, r.snapshot.engine.kind)


def _doctor_json(r: HostReport) -> dict[str, object]:
    from bilge.report import json as jsonreport

    return jsonreport.doctor_json(r.snapshot, r.findings)


def _outcome_json(r: HostReport) -> dict[str, object]:
    from bilge.report import json as jsonreport

    assert r.outcome is not None  # apply's reports all have one
    return jsonreport.outcome_json(r.outcome, r.snapshot.engine.kind)


_JSON: dict[str, Callable[[HostReport], dict[str, object]]] = {
    "status": _status_json,
    "plan": _plan_json,
    "doctor": _doctor_json,
    "apply": _outcome_json,
}


def _status_terminal(console: Console, r: HostReport, options: Any) -> None:
    from bilge.report import terminal

    terminal.render_status(console, r.snapshot, r.plan)


def _plan_terminal(console: Console, r: HostReport, options: Any) -> None:
    from bilge.report import terminal

    terminal.render_plan(console, r.plan, explain=options.explain)


def _doctor_terminal(console: Console, r: HostReport, options: Any) -> None:
    from bilge.report import terminal

    terminal.render_doctor(console, r.snapshot, r.findings)


def _outcome_terminal(console: Console, r: HostReport, options: Any) -> None:
    from bilge.report import terminal

    assert r.outcome is not None
    terminal.render_outcome(console, r.outcome)


_TERMINAL: dict[str, Callable[[Console, HostReport, Any], None]] = {
    "status": _status_terminal,
    "plan": _plan_terminal,
    "doctor": _doctor_terminal,
    "apply": _outcome_terminal,
}
