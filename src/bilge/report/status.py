"""Rich terminal output for `status` and `doctor`: what is on the host.

The engine, the data-root filesystem's gauges, Docker's objects by kind, the
largest objects, and doctor's findings. Like the rest of the terminal report,
anything the engine or a user wrote goes through `literal` (safety rule 9).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence

from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text

from bilge.config.units import format_size
from bilge.engine.base import engine_name
from bilge.model import EngineInfo, Filesystem, Plan, Snapshot
from bilge.planner.doctor import Finding
from bilge.planner.summary import KindUsage, SizedObject, largest, usage_by_kind
from bilge.report.charts import gauge, percent, usage_chart
from bilge.report.literal import literal

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
    bars = [(r.kind, r.bytes) for r in rows]
    console.print(
        usage_chart(bars, fs.used_bytes if fs else None, engine_name(snapshot.engine.kind))
    )
    biggest = [o for o in largest(snapshot) if o.bytes]
    if biggest:
        console.print()
        console.print(_largest_table(biggest))
    console.print()
    console.print(Text(_reclaimable_line(plan)))


def _header(engine: EngineInfo) -> Text:
    text = literal(
        f"{engine_name(engine.kind)} {engine.server_version} (API {engine.api_version}) on "
    )
    text.append(literal(engine.host, style="bold"))
    text.append(
        literal(f" · data-root {engine.data_root} · storage driver {engine.storage_driver}")
    )
    if not engine.local:
        text.append(" · remote: the data-root's contents are not visible", style="dim")
    return text


def _gauges(fs: Filesystem) -> Table:
    grid = Table.grid(padding=(0, 1))
    grid.title = literal(f"Filesystem {fs.path}", style="bold")
    grid.title_justify = "left"
    for _ in range(3):
        grid.add_column()
    grid.add_column(justify="right")
    grid.add_row(
        "bytes",
        gauge(fs.bytes_ratio),
        f"{format_size(fs.used_bytes)} of {format_size(fs.total_bytes)} used",
        percent(fs.bytes_ratio),
    )
    grid.add_row(
        "inodes",
        gauge(fs.inodes_ratio),
        f"{fs.used_inodes:,} of {fs.total_inodes:,} used",
        percent(fs.inodes_ratio),
    )
    grid.caption = USED_MEANS
    grid.caption_justify = "left"
    grid.caption_style = "dim"
    return grid


#: The convention behind every "used" figure, watermarks included (README, Usage).
USED_MEANS = (
    "used = size - available, as the kubelet counts it: root's reserved blocks count"
    " as used (a container's non-root process cannot write to them); df's Use% leaves"
    " them out and is lower by their share"
)


def _usage_table(rows: Sequence[KindUsage], planned: bool) -> Table:
    table = Table(title="The engine's objects by kind", title_justify="left")
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


def _largest_table(objects: Iterable[SizedObject]) -> Table:
    table = Table(title="Largest objects", title_justify="left")
    table.add_column("Kind")
    table.add_column("Name")
    table.add_column("Size", justify="right")
    for obj in objects:
        table.add_row(obj.kind, literal(obj.name), format_size(obj.bytes))
    return table


def _reclaimable_line(plan: Plan | None) -> str:
    if plan is None:
        return "Reclaimable under the policy: not computed"
    return (
        f"Reclaimable under the policy: {format_size(plan.total_bytes)} "
        "(run `bilge plan` to see what and why)"
    )


# -- doctor -------------------------------------------------------------------


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
        text = literal(f.title, style="bold" if f.severity != "ok" else "")
        if f.fix:
            text.append("\n")
            text.append(literal(f"→ {f.fix}", style="cyan"))
        table.add_row(Text(SEVERITY_MARK[str(f.severity)], style=style), text)
    console.print(table)
    counts = Counter(str(f.severity) for f in findings)
    console.print(
        f"{counts['critical']} critical, {counts['warning']} warning(s), {counts['ok']} ok."
    )
