"""A fleet on the terminal: a line per host while they run, and the summary.

The summary answers "which host needs me first": one row per host, the worst
first (a host that failed, then one whose removals failed, then critical
findings, then the fullest disk), with totals. The rows are plain data
(`SummaryRow`, `summary_rows`, `worst_first`) so that their order is tested
without a terminal; host names and errors pass through `literal` (safety rule 9).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

from rich.console import Console, RenderableType
from rich.progress import (
    BarColumn,
    Progress,
    ProgressColumn,
    SpinnerColumn,
    Task,
    TaskID,
    TextColumn,
)
from rich.table import Table
from rich.text import Text

from bilge.config.units import format_size
from bilge.engine.base import engine_name
from bilge.fleet import HostReport, HostResult
from bilge.model import ActionOutcome, Result
from bilge.report.charts import level_style
from bilge.report.literal import literal
from bilge.report.text import printable


@dataclass(frozen=True)
class SummaryRow:
    """One host in the summary; the figures are None where the host has none."""

    host: str
    engine: str = ""
    used: float | None = None
    inodes: float | None = None
    reclaimable: int = 0
    critical: int = 0
    removed: int = 0
    skipped: int = 0
    failed: int = 0
    freed: int | None = None
    error: str | None = None

    @property
    def fullest(self) -> float:
        return max(self.used or 0.0, self.inodes or 0.0)


def summary_row(result: HostResult[HostReport]) -> SummaryRow:
    """A host's row, from what its command found."""
    report = result.value
    if report is None:
        return SummaryRow(result.host, error=result.error or "failed")
    snap, fs = report.snapshot, report.snapshot.filesystem
    kind = engine_name(snap.engine.kind)
    row = SummaryRow(
        host=result.host,
        engine=f"{kind} {snap.engine.server_version.split('+')[0]}",  # 20.10.24+dfsg1
        used=fs.bytes_ratio if fs is not None else None,
        inodes=fs.inodes_ratio if fs is not None else None,
        reclaimable=report.plan.total_bytes,
        critical=report.critical,
    )
    outcome = report.outcome
    if outcome is None:
        return row
    freed = outcome.freed_bytes_measured
    return SummaryRow(
        **{**row.__dict__, "removed": outcome.count(Result.REMOVED),
           "skipped": outcome.count(Result.SKIPPED), "failed": outcome.count(Result.FAILED),
           # Negative when other writers outpaced the removals: nothing measurable.
           "freed": outcome.removed_bytes_predicted if freed is None else max(freed, 0)},
    )  # fmt: skip


def summary_rows(results: Sequence[HostResult[HostReport]]) -> list[SummaryRow]:
    return worst_first([summary_row(r) for r in results])


def worst_first(rows: Sequence[SummaryRow]) -> list[SummaryRow]:
    """Failed hosts, then failed removals, then critical findings, then the
    fullest disk (bytes or inodes); the order given among equals."""
    return sorted(rows, key=lambda r: (r.error is None, -r.failed, -r.critical, -r.fullest))


def render_summary(console: Console, rows: Sequence[SummaryRow], *, applied: bool) -> None:
    """The fleet's table, worst first, with its totals."""
    table = Table(title=f"Fleet: {len(rows)} hosts", title_justify="left")
    # Ten columns must fit a terminal of 80: the engine goes under its host, the
    # figures never wrap, a long address folds.
    table.add_column("Host", overflow="fold")
    numbers = ["Used", "Inodes", "Reclaimable", "Critical"]
    numbers += ["Rm/Skip/Fail", "Freed"] if applied else []
    for name in numbers:
        table.add_column(name, justify="right", no_wrap=True)
    for row in rows:
        table.add_row(*_cells(row, applied))
    table.add_section()
    table.add_row(*_totals(rows, applied))
    console.print(table)
    for row in rows:
        if row.error is not None:
            console.print(literal(f"{row.host}: {row.error}", "red"))


def _host(row: SummaryRow) -> Text:
    """The address, and under it the engine (or that the host failed)."""
    second = (
        literal("failed (below)", "red") if row.error is not None else literal(row.engine, "dim")
    )
    return Text.assemble(literal(row.host), "\n", second)


def _cells(row: SummaryRow, applied: bool) -> list[RenderableType]:
    if row.error is not None:  # the error itself is printed under the table
        return [_host(row), *[""] * (6 if applied else 4)]
    cells: list[RenderableType] = [
        _host(row),
        _ratio(row.used),
        _ratio(row.inodes),
        format_size(row.reclaimable),
        literal(str(row.critical), "bold red" if row.critical else ""),
    ]
    if applied:
        freed = format_size(row.freed) if row.freed is not None else "-"
        cells += [_results(row.removed, row.skipped, row.failed), freed]
    return cells


def _results(removed: int, skipped: int, failed: int) -> Text:
    """Removed/skipped/failed in one narrow cell, the failures in red."""
    return Text.assemble(f"{removed}/{skipped}/", (str(failed), "red" if failed else ""))


def _ratio(value: float | None) -> RenderableType:
    if value is None:
        return "-"
    return literal(f"{value:.0%}", level_style(value))


def _totals(rows: Sequence[SummaryRow], applied: bool) -> list[RenderableType]:
    ok = [r for r in rows if r.error is None]
    errors = len(rows) - len(ok)
    cells: list[RenderableType] = [
        f"total ({errors} failed)" if errors else "total",
        "",
        "",
        format_size(sum(r.reclaimable for r in ok)),
        str(sum(r.critical for r in ok)),
    ]
    if applied:
        counts = (sum(r.removed for r in ok), sum(r.skipped for r in ok), sum(r.failed for r in ok))
        cells += [_results(*counts), format_size(sum(r.freed or 0 for r in ok))]
    return cells


def render_plan_totals(console: Console, results: Sequence[HostResult[HostReport]]) -> None:
    """What apply would do on each host: asked about once, for the whole fleet."""
    table = Table(title="Plan per host", title_justify="left")
    table.add_column("Host")
    table.add_column("Objects", justify="right")
    table.add_column("To free", justify="right")
    for result in results:
        if result.value is None:
            table.add_row(literal(result.host), literal("error", "red"),
                          literal(result.error or "", "red"))  # fmt: skip
            continue
        the_plan = result.value.plan
        table.add_row(literal(result.host), str(len(the_plan.actions)),
                      format_size(the_plan.total_bytes))  # fmt: skip
    console.print(table)


class FleetProgress:
    """A line per host on stderr while the fleet runs (only on a terminal): what
    it is doing, and during apply how many of its removals are done."""

    def __init__(self, hosts: Sequence[str]) -> None:
        console = Console(stderr=True)
        self._bar: Progress | None = None
        self._tasks: list[TaskID] = []
        if not console.is_terminal:
            return
        self._bar = Progress(
            SpinnerColumn(),
            TextColumn("{task.fields[host]}", markup=False),
            TextColumn("{task.fields[state]}", markup=False),
            BarColumn(),
            _Removals(),
            console=console,
            transient=True,
        )
        for host in hosts:
            task = self._bar.add_task("", total=None, host=printable(host)[:60], state="waiting")
            self._tasks.append(task)

    def state(self, index: int, state: str) -> None:
        if self._bar is not None:
            self._bar.update(self._tasks[index], state=state)

    def planned(self, index: int, actions: int) -> None:
        if self._bar is not None:
            self._bar.update(self._tasks[index], total=actions or None)

    def removed(self, index: int, outcome: ActionOutcome) -> None:
        if self._bar is not None:
            self._bar.update(self._tasks[index], advance=1)

    @contextmanager
    def running(self) -> Iterator[FleetProgress]:
        if self._bar is None:
            yield self
            return
        with self._bar:
            yield self


class _Removals(ProgressColumn):
    """ "12/40" once the host's apply is under way; nothing while it is read."""

    def render(self, task: Task) -> Text:
        if task.total is None:
            return Text("")
        return Text(f"{int(task.completed)}/{int(task.total)}")
