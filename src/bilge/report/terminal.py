"""Rich terminal output for plan, apply and history (status and doctor: status.py).

Each `render_*` prints to the console the CLI hands it and returns nothing;
the CLI owns the console (width, colour, recording). Names, reasons, details
and whatever else the engine or a user wrote pass through `literal`: never
parsed as rich markup, never a control character on the terminal (safety
rule 9). Gauges, bars and sparklines are drawn by charts.py.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from urllib.parse import urlsplit

from rich.console import Console
from rich.table import Table
from rich.text import Text

from bilge.config.units import format_duration, format_size
from bilge.model import (
    Action,
    ActionOutcome,
    AuditEntry,
    Kept,
    Kind,
    Outcome,
    Plan,
    Result,
    UsageSample,
)
from bilge.report.charts import bar, gauge, level_style, sparkline
from bilge.report.literal import literal
from bilge.report.status import render_doctor, render_status

#: The renderers the CLI calls, whichever module draws them.
__all__ = [
    "bar",
    "gauge",
    "level_style",
    "render_doctor",
    "render_history",
    "render_outcome",
    "render_plan",
    "render_status",
]

#: Above this many kept candidates, --explain groups them by reason.
KEPT_ROWS = 50
#: Above this many actions, `plan` shows them by kind and the largest few, since
#: a table of thousands of rows is slow to draw and long to read.
ACTION_ROWS = 50
LARGEST_ROWS = 10
#: Above this many results, apply lists only those not removed.
OUTCOME_ROWS = 20

_KIND_ORDER = {kind: i for i, kind in enumerate(Kind)}
_RESULT_STYLE = {Result.REMOVED: "green", Result.SKIPPED: "yellow", Result.FAILED: "red"}


# -- plan --------------------------------------------------------------------


def render_plan(console: Console, plan: Plan, explain: bool) -> None:
    """The actions (kind, name, size, reason) and a total; with `explain`, what is kept."""
    if plan.actions and (explain or len(plan.actions) <= ACTION_ROWS):
        console.print(_actions_table(plan))
    elif plan.actions:
        console.print(_actions_by_kind(plan))
        console.print(_largest_actions(plan))
        hint = "`bilge plan --explain` lists every action and why (so does --json)."
        console.print(Text(hint, "dim"))
    if plan.actions:
        console.print(
            Text(f"{_objects(len(plan.actions))}, {format_size(plan.total_bytes)} to free")
        )
    else:
        console.print(Text("Nothing to remove."))
    if explain:
        console.print()
        _render_kept(console, plan.kept)
    elif plan.kept:
        console.print(
            Text(f"{_objects(len(plan.kept))} kept; `bilge plan --explain` shows why.", "dim")
        )


def _plan_title(plan: Plan) -> Text:
    return literal(f"Plan for {plan.host}, made {_when(plan.created_at)} UTC")


def _actions_table(plan: Plan) -> Table:
    table = Table(title=_plan_title(plan), title_justify="left")
    table.add_column("Kind")
    table.add_column("Name")
    table.add_column("Size", justify="right")
    table.add_column("Reason")
    for a in sorted(plan.actions, key=lambda a: _KIND_ORDER[a.kind]):
        table.add_row(a.kind.value, literal(a.name), format_size(a.bytes), literal(a.reason))
    return table


def _actions_by_kind(plan: Plan) -> Table:
    groups: dict[Kind, list[Action]] = {}
    for a in plan.actions:
        groups.setdefault(a.kind, []).append(a)
    table = Table(title=_plan_title(plan), title_justify="left")
    table.add_column("Kind")
    table.add_column("Count", justify="right")
    table.add_column("Size", justify="right")
    for kind in sorted(groups, key=_KIND_ORDER.__getitem__):
        group = groups[kind]
        table.add_row(kind.value, str(len(group)), format_size(sum(a.bytes for a in group)))
    return table


def _largest_actions(plan: Plan) -> Table:
    largest = sorted(plan.actions, key=lambda a: -a.bytes)[:LARGEST_ROWS]
    table = Table(title=f"The {len(largest)} largest", title_justify="left")
    table.add_column("Kind")
    table.add_column("Name")
    table.add_column("Size", justify="right")
    table.add_column("Reason")
    for a in largest:
        table.add_row(a.kind.value, literal(a.name), format_size(a.bytes), literal(a.reason))
    return table


def _render_kept(console: Console, kept: Sequence[Kept]) -> None:
    if not kept:
        console.print(Text("No candidates kept."))
    elif len(kept) <= KEPT_ROWS:
        console.print(_kept_table(kept))
    else:
        console.print(_kept_by_reason(kept))


def _kept_table(kept: Sequence[Kept]) -> Table:
    table = Table(title=f"Kept: {_objects(len(kept))}, and why", title_justify="left")
    table.add_column("Kind")
    table.add_column("Name")
    table.add_column("Size", justify="right")
    table.add_column("Why kept")
    for k in sorted(kept, key=lambda k: _KIND_ORDER[k.kind]):
        table.add_row(k.kind.value, literal(k.name), format_size(k.bytes), literal(k.reason))
    return table


def _kept_by_reason(kept: Sequence[Kept]) -> Table:
    """Many kept objects: one row per reason, most common first."""
    groups: dict[str, list[Kept]] = {}
    for k in kept:
        groups.setdefault(k.reason, []).append(k)
    table = Table(title=f"Kept: {_objects(len(kept))}, by reason", title_justify="left")
    table.add_column("Why kept")
    table.add_column("Count", justify="right")
    table.add_column("Size", justify="right")
    table.add_column("Kinds")
    for reason, group in sorted(groups.items(), key=lambda g: (-len(g[1]), g[0])):
        kinds = sorted({k.kind for k in group}, key=_KIND_ORDER.__getitem__)
        table.add_row(
            literal(reason),
            str(len(group)),
            format_size(sum(k.bytes for k in group)),
            ", ".join(kind.value for kind in kinds),
        )
    return table


def _objects(n: int) -> str:
    return f"{n} object" if n == 1 else f"{n} objects"


# -- apply -------------------------------------------------------------------


def render_outcome(console: Console, outcome: Outcome) -> None:
    """What each action came to, totals per result, and bytes freed: measured and predicted."""
    if not outcome.results:
        console.print(Text("Nothing to remove."))
        return
    shown = _listed_results(outcome.results)
    if shown:
        console.print(_outcome_table(shown))
    hidden = len(outcome.results) - len(shown)
    if hidden:
        more = f"... and {hidden} more" if shown else f"All {_objects(hidden)}"
        console.print(Text(f"{more} removed (bilge history lists them)", style="dim"))
    console.print(_totals_line(outcome))
    console.print(Text(_freed_line(outcome)))


def _listed_results(results: Sequence[ActionOutcome]) -> list[ActionOutcome]:
    """All results when few; otherwise only those that need a person's attention."""
    if len(results) <= OUTCOME_ROWS:
        return list(results)
    return [r for r in results if r.result is not Result.REMOVED]


def _outcome_table(results: Iterable[ActionOutcome]) -> Table:
    table = Table()
    table.add_column("Result")
    table.add_column("Kind")
    table.add_column("Name")
    table.add_column("Size", justify="right")
    table.add_column("Detail")
    for r in results:
        table.add_row(
            Text(r.result.value, style=_RESULT_STYLE[r.result]),
            r.action.kind.value,
            literal(r.action.name),
            format_size(r.action.bytes),
            literal(r.detail),
        )
    return table


def _totals_line(outcome: Outcome) -> Text:
    text = Text("Results: ")
    for i, result in enumerate(Result):
        count = outcome.count(result)
        text.append(", " if i else "")
        text.append(f"{result.value} {count}", style=_RESULT_STYLE[result] if count else "")
    text.append(f"; took {format_duration(outcome.finished_at - outcome.started_at)}.")
    return text


def _freed_line(outcome: Outcome) -> str:
    predicted = format_size(outcome.removed_bytes_predicted)
    if outcome.freed_bytes_measured is None:
        return f"Freed {predicted} predicted; measured: not available (data-root not local)"
    if outcome.freed_bytes_measured < 0:
        # Other writers filled more than the removals freed, meanwhile (a busy engine's
        # logs and database): say so rather than "Freed -8.2 kB".
        grown = format_size(-outcome.freed_bytes_measured)
        return (
            f"Freed {predicted} predicted; the data-root filesystem's use grew by {grown}"
            " meanwhile (other writers outpaced the removals)"
        )
    measured = format_size(outcome.freed_bytes_measured)
    return f"Freed {measured} (predicted {predicted}, measured on the data-root filesystem)"


# -- history -----------------------------------------------------------------


def render_history(
    console: Console, entries: Sequence[AuditEntry], samples: Sequence[UsageSample]
) -> None:
    """The audit log, newest first, and disk usage over time per host."""
    if entries:
        console.print(_audit_table(entries))
    else:
        console.print(Text("No removals recorded."))
    console.print()
    if not samples:
        console.print(Text("No usage samples recorded."))
    for host, host_samples in _by_host(samples).items():
        console.print(_usage_history(host, host_samples))


def _audit_table(entries: Sequence[AuditEntry]) -> Table:
    table = Table(title="Removals, newest first", title_justify="left")
    # Times and kinds never wrap: a narrow terminal squeezes names and details instead.
    table.add_column("Time (UTC)", no_wrap=True)
    table.add_column("Kind", no_wrap=True)
    table.add_column("Name", overflow="ellipsis", max_width=40)
    table.add_column("Size", justify="right")
    table.add_column("Outcome")
    table.add_column("Detail")
    for e in sorted(entries, key=lambda e: (_utc(e.at), e.id), reverse=True):
        outcome = (
            Text(e.outcome.value, style=_RESULT_STYLE[e.outcome])
            if e.outcome is not None
            else Text("unfinished", style="red")
        )
        table.add_row(
            _when(e.at),
            e.kind.value,
            literal(_entry_name(e)),
            format_size(e.bytes),
            outcome,
            literal(e.detail),
        )
    return table


def _entry_name(e: AuditEntry) -> str:
    """The name a row shows. A registry manifest's name ("app:1.0") says nothing of
    its registry, which is the entry's host: shown as docker names an image on a
    registry ("registry.example.com/app:1.0"), since registries share repository names."""
    if e.kind is Kind.REGISTRY_MANIFEST:
        return f"{urlsplit(e.host).netloc or e.host}/{e.name}"
    return e.name


def _by_host(samples: Iterable[UsageSample]) -> dict[str, list[UsageSample]]:
    out: dict[str, list[UsageSample]] = {}
    for s in samples:
        out.setdefault(s.host, []).append(s)
    for host_samples in out.values():
        host_samples.sort(key=lambda s: _utc(s.at))
    return out


def _usage_history(host: str, samples: Sequence[UsageSample]) -> Text:
    """A sparkline of used bytes, 0 % to 100 % high, and the range it covers."""
    ratios = [_used_ratio(s) for s in samples]
    text = literal(f"Disk usage on {host}, {_when(samples[0].at)} to {_when(samples[-1].at)} UTC")
    text.append("\n")
    text.append(sparkline(ratios))
    text.append(f"  now {ratios[-1]:.0%}, lowest {min(ratios):.0%}, highest {max(ratios):.0%}")
    return text


def _used_ratio(s: UsageSample) -> float:
    return (s.total_bytes - s.free_bytes) / s.total_bytes if s.total_bytes else 0.0


def _utc(at: datetime) -> datetime:
    return at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)


def _when(at: datetime) -> str:
    return _utc(at).strftime("%Y-%m-%d %H:%M:%S")
