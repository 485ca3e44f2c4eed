"""Rich terminal output for status, plan, apply and history.

Each `render_*` prints to the console the CLI hands it and returns nothing;
the CLI owns the console (width, colour, recording). Names, reasons and
details come from the engine and from users, so they are always wrapped in
`Text` and never parsed as rich markup.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from itertools import pairwise

from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text

from bilge.doctor import Finding
from bilge.model import (
    Action,
    ActionOutcome,
    AuditEntry,
    EngineInfo,
    Filesystem,
    Kept,
    Kind,
    Outcome,
    Plan,
    Result,
    Snapshot,
    UsageSample,
)
from bilge.summary import KindUsage, SizedObject, largest, usage_by_kind
from bilge.units import format_duration, format_size

BAR_WIDTH = 40
SPARK_WIDTH = 60
#: Above this many kept candidates, --explain groups them by reason.
KEPT_ROWS = 50
#: Above this many actions, `plan` shows them by kind and the largest few, since
#: a table of thousands of rows is slow to draw and long to read.
ACTION_ROWS = 50
LARGEST_ROWS = 10
#: Above this many results, apply lists only those not removed.
OUTCOME_ROWS = 20

_EIGHTHS = " ▏▎▍▌▋▊▉"
_SPARKS = "▁▂▃▄▅▆▇█"
_KIND_ORDER = {kind: i for i, kind in enumerate(Kind)}
_RESULT_STYLE = {Result.REMOVED: "green", Result.SKIPPED: "yellow", Result.FAILED: "red"}
_CHART_STYLE = {
    "images": "cyan",
    "containers": "magenta",
    "logs": "yellow",
    "volumes": "blue",
    "build cache": "green",
}
OUTSIDE_DOCKER = "outside Docker"


# -- status ------------------------------------------------------------------


def render_status(console: Console, snapshot: Snapshot, plan: Plan | None) -> None:
    """Engine, filesystem gauges, usage by kind (table and chart), largest objects."""
    console.print(_header(snapshot.engine))
    console.print()
    fs = snapshot.filesystem
    if fs is None:
        console.print(Text("Filesystem: not measured (the data-root is not on this host)"))
    else:
        console.print(_gauges(fs))
    rows = usage_by_kind(snapshot, plan)
    console.print()
    console.print(_usage_table(rows, plan is not None))
    console.print()
    console.print(_usage_chart(rows, fs))
    biggest = [o for o in largest(snapshot) if o.bytes]
    if biggest:
        console.print()
        console.print(_largest_table(biggest))
    console.print()
    console.print(Text(_reclaimable_line(plan)))


def _header(engine: EngineInfo) -> Text:
    text = Text(f"Docker {engine.server_version} (API {engine.api_version}) on ")
    text.append(engine.host, style="bold")
    text.append(f" · data-root {engine.data_root} · storage driver {engine.storage_driver}")
    if not engine.local:
        text.append(" · remote: the data-root's contents are not visible", style="dim")
    return text


def _gauges(fs: Filesystem) -> Table:
    grid = Table.grid(padding=(0, 1))
    grid.title = Text(f"Filesystem {fs.path}", style="bold")
    grid.title_justify = "left"
    for _ in range(3):
        grid.add_column()
    grid.add_column(justify="right")
    grid.add_row(
        "bytes",
        gauge(fs.bytes_ratio),
        f"{format_size(fs.used_bytes)} of {format_size(fs.total_bytes)} used",
        _percent(fs.bytes_ratio),
    )
    grid.add_row(
        "inodes",
        gauge(fs.inodes_ratio),
        f"{fs.used_inodes:,} of {fs.total_inodes:,} used",
        _percent(fs.inodes_ratio),
    )
    return grid


def gauge(ratio: float, width: int = BAR_WIDTH) -> Text:
    """A used/total bar, green below 75 %, yellow below 90 %, red from there."""
    filled = round(min(max(ratio, 0.0), 1.0) * width)
    bar = Text("█" * filled, style=level_style(ratio))
    bar.append("░" * (width - filled), style="dim")
    return bar


def level_style(ratio: float) -> str:
    """Colour for a usage ratio, with the watermarks people expect of a disk."""
    if ratio < 0.75:
        return "green"
    return "yellow" if ratio < 0.90 else "red"


def _percent(ratio: float) -> Text:
    return Text(f"{ratio:.0%}", style=level_style(ratio))


def _usage_table(rows: Sequence[KindUsage], planned: bool) -> Table:
    table = Table(title="Docker's objects by kind", title_justify="left")
    table.add_column("Kind")
    table.add_column("Count", justify="right")
    table.add_column("Size", justify="right")
    if planned:
        table.add_column("Reclaimable", justify="right")
    for row in rows:
        cells = [row.kind, str(row.count), format_size(row.bytes)]
        if planned:
            cells.append(_reclaimable_cell(row))
        table.add_row(*cells)
    total = ["total", "", format_size(sum(r.bytes for r in rows))]
    if planned:
        total.append(format_size(sum(r.reclaimable_bytes for r in rows)))
    table.add_section()
    table.add_row(*total, style="bold")
    return table


def _reclaimable_cell(row: KindUsage) -> str:
    if not row.reclaimable_count:
        return "-"
    return f"{format_size(row.reclaimable_bytes)} ({row.reclaimable_count})"


def _usage_chart(rows: Sequence[KindUsage], fs: Filesystem | None) -> Table:
    """Bytes by kind as bars; with the filesystem known, also what Docker does not hold."""
    bars = [(r.kind, r.bytes) for r in rows]
    docker_total = sum(size for _, size in bars)
    if fs is not None and fs.used_bytes > docker_total:
        bars.append((OUTSIDE_DOCKER, fs.used_bytes - docker_total))
    total = sum(size for _, size in bars)
    biggest = max((size for _, size in bars), default=0)
    chart = Table.grid(padding=(0, 1))
    chart.title = Text("What fills the disk", style="bold")
    chart.title_justify = "left"
    chart.add_column()
    chart.add_column(width=BAR_WIDTH)
    chart.add_column(justify="right")
    chart.add_column(justify="right")
    for label, size in bars:
        style = _CHART_STYLE.get(label, "dim")
        chart.add_row(
            label,
            Text(bar(size / biggest if biggest else 0.0), style=style),
            format_size(size),
            f"{size / total:.0%}" if total else "-",
        )
    return chart


def bar(fraction: float, width: int = BAR_WIDTH) -> str:
    """A horizontal bar in eighths of a character; anything above zero shows."""
    eighths = round(min(max(fraction, 0.0), 1.0) * width * 8)
    if fraction > 0 and eighths == 0:
        eighths = 1
    full, part = divmod(eighths, 8)
    return ("█" * full + _EIGHTHS[part]).rstrip()


def _largest_table(objects: Iterable[SizedObject]) -> Table:
    table = Table(title="Largest objects", title_justify="left")
    table.add_column("Kind")
    table.add_column("Name")
    table.add_column("Size", justify="right")
    for obj in objects:
        table.add_row(obj.kind, Text(obj.name), format_size(obj.bytes))
    return table


def _reclaimable_line(plan: Plan | None) -> str:
    if plan is None:
        return "Reclaimable under the policy: not computed"
    return (
        f"Reclaimable under the policy: {format_size(plan.total_bytes)} "
        "(run `bilge plan` to see what and why)"
    )


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


def _actions_table(plan: Plan) -> Table:
    table = Table(title=f"Plan for {plan.host}, made {_when(plan.created_at)} UTC")
    table.title_justify = "left"
    table.add_column("Kind")
    table.add_column("Name")
    table.add_column("Size", justify="right")
    table.add_column("Reason")
    for a in sorted(plan.actions, key=lambda a: _KIND_ORDER[a.kind]):
        table.add_row(a.kind.value, Text(a.name), format_size(a.bytes), Text(a.reason))
    return table


def _actions_by_kind(plan: Plan) -> Table:
    groups: dict[Kind, list[Action]] = {}
    for a in plan.actions:
        groups.setdefault(a.kind, []).append(a)
    title = f"Plan for {plan.host}, made {_when(plan.created_at)} UTC"
    table = Table(title=title, title_justify="left")
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
        table.add_row(a.kind.value, Text(a.name), format_size(a.bytes), Text(a.reason))
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
        table.add_row(k.kind.value, Text(k.name), format_size(k.bytes), Text(k.reason))
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
            Text(reason),
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
            Text(r.action.name),
            format_size(r.action.bytes),
            Text(r.detail),
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
    predicted = format_size(outcome.predicted_bytes_removed)
    if outcome.freed_bytes_measured is None:
        return f"Freed {predicted} predicted; measured: not available (data-root not local)"
    measured = format_size(outcome.freed_bytes_measured)
    return f"Freed {measured} (predicted {predicted}, measured on the data-root filesystem)"


# -- history -----------------------------------------------------------------


SEVERITY_STYLE = {"critical": "bold red", "warning": "yellow", "ok": "green"}
SEVERITY_MARK = {"critical": "✖ critical", "warning": "▲ warning", "ok": "✓ ok"}


def render_doctor(console: Console, snapshot: Snapshot, findings: Sequence[Finding]) -> None:
    """Findings, most severe first: severity, title, and the fix under it."""
    console.print(_header(snapshot.engine))
    if snapshot.filesystem is not None:
        console.print(_gauges(snapshot.filesystem))
    table = Table(box=box.SIMPLE, show_header=False, padding=(0, 1))
    table.add_column(no_wrap=True)
    table.add_column(ratio=1)
    for f in findings:
        style = SEVERITY_STYLE[str(f.severity)]
        text = Text(f.title, style="bold" if f.severity != "ok" else "")
        if f.fix:
            text.append(f"\n→ {f.fix}", style="cyan")
        table.add_row(Text(SEVERITY_MARK[str(f.severity)], style=style), text)
    console.print(table)
    counts = Counter(str(f.severity) for f in findings)
    console.print(
        f"{counts['critical']} critical, {counts['warning']} warning(s), {counts['ok']} ok."
    )


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
            _when(e.at), e.kind.value, Text(e.name), format_size(e.bytes), outcome, Text(e.detail)
        )
    return table


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
    text = Text(f"Disk usage on {host}, {_when(samples[0].at)} to {_when(samples[-1].at)} UTC\n")
    for ratio in _downsample(ratios, SPARK_WIDTH):
        text.append(_SPARKS[min(int(ratio * len(_SPARKS)), len(_SPARKS) - 1)], level_style(ratio))
    text.append(f"  now {ratios[-1]:.0%}, lowest {min(ratios):.0%}, highest {max(ratios):.0%}")
    return text


def _used_ratio(s: UsageSample) -> float:
    return (s.total_bytes - s.free_bytes) / s.total_bytes if s.total_bytes else 0.0


def _downsample(values: Sequence[float], width: int) -> list[float]:
    """At most `width` points, each the highest of its stretch: peaks must not vanish."""
    if len(values) <= width:
        return list(values)
    bounds = [len(values) * i // width for i in range(width + 1)]
    return [max(values[lo:hi]) for lo, hi in pairwise(bounds)]


def _utc(at: datetime) -> datetime:
    return at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)


def _when(at: datetime) -> str:
    return _utc(at).strftime("%Y-%m-%d %H:%M:%S")
