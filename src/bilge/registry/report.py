"""Rich terminal output for `bilge registry plan | apply | gc`.

Repository names, tags, reasons and registry messages come from outside, so
they always pass through `literal`: never parsed as markup, and with their
control characters shown escaped (a hostile registry may list anything).
Loaded only when something is shown on a terminal (--json never imports rich).
"""

from __future__ import annotations

from collections.abc import Sequence

from rich.console import Console
from rich.table import Table
from rich.text import Text

from bilge.config.units import format_size
from bilge.model import Result
from bilge.registry.gc import GcReport
from bilge.registry.model import Deletion, KeptTag, RegistryOutcome, RegistryPlan
from bilge.report.literal import literal

#: Above this many kept tags, --explain groups them by reason.
KEPT_ROWS = 60
#: Above this many results, apply lists only those not removed.
OUTCOME_ROWS = 30
_STYLE = {Result.REMOVED: "green", Result.SKIPPED: "yellow", Result.FAILED: "red"}


def render_plan(console: Console, plan: RegistryPlan, explain: bool) -> None:
    if plan.deletions:
        console.print(_deletions_table(plan))
        console.print(Text(_summary(plan)))
        if plan.total_disk_bytes is None:
            console.print(Text(BYTES_NOTE, "dim"))
    else:
        console.print(Text("Nothing to delete."))
    for url, name in plan.emptied:
        console.print(
            literal(f"{name} ({url}) is left with no manifests: {EMPTIED_NOTE}", "yellow")
        )
    shared = [k for k in plan.kept if k.reason.startswith("shares digest")]
    for k in shared:
        console.print(literal(f"{k.repository}:{k.tag} stays: it {k.reason}", "yellow"))
    if explain:
        console.print()
        console.print(_kept(plan.kept))
    elif plan.kept:
        console.print(
            Text(f"{_tags(len(plan.kept))} kept; `bilge registry plan --explain` shows why.", "dim")
        )


#: Why `gc` measures more than the plan predicts (docs/registry.md, "Bytes").
BYTES_NOTE = (
    "Predicted: the size of the blobs only they reference; the storage frees somewhat "
    "more (block rounding, directories, link files: docs/registry.md)."
)


#: distribution keeps a repository's directory, and so lists it, when its last
#: manifest goes: nothing bilge can change through the API.
EMPTIED_NOTE = (
    "the registry's catalog keeps listing it (distribution keeps the repository's "
    "directory; removing that is left to the registry's operator)"
)


def _summary(plan: RegistryPlan) -> str:
    disk = plan.total_disk_bytes
    measured = (
        f", {format_size(disk)} on disk with their blocks, directories and links"
        if disk is not None
        else ""
    )
    return (
        f"{manifests_to_delete(plan)} to delete, {format_size(plan.total_bytes)} that only "
        f"they hold{measured} (freed by `bilge registry gc`)"
    )


def manifests_to_delete(plan: RegistryPlan) -> str:
    """ "4 manifests (+ 2 platform manifests of deleted indexes, 5 tags)": every
    manifest the plan deletes, the children of deleted indexes included."""
    children = sum(len(d.children) for d in plan.deletions)
    manifests = [d for d in plan.deletions if not d.untag_only]
    untagged = sum(1 for d in manifests if not d.tags)
    untags = len(plan.deletions) - len(manifests)
    tags = _tags(sum(len(d.tags) for d in manifests))
    extra = f"+ {_count(children, 'platform manifest')} of deleted indexes, " if children else ""
    extra += f"{untagged} untagged, " if untagged else ""
    alone = f" and {_tags(untags)} alone (untag only)" if untags else ""
    return f"{_count(len(manifests), 'manifest')} ({extra}{tags}){alone}"


def _deletions_table(plan: RegistryPlan) -> Table:
    made = plan.created_at.strftime("%Y-%m-%d %H:%M")
    table = Table(title=f"Registry plan, made {made} UTC", title_justify="left")
    table.add_column("Repository")
    table.add_column("Tags")
    table.add_column("Digest")
    table.add_column("Only it holds", justify="right")
    disk = plan.total_disk_bytes is not None
    if disk:
        table.add_column("On disk", justify="right")
    table.add_column("Reason")
    for d in plan.deletions:
        on_disk = [format_size(d.disk_bytes or 0)] if disk else []
        table.add_row(*_deletion_cells(d), *on_disk, literal(d.reason))
    return table


def _deletion_cells(d: Deletion) -> tuple[Text, Text, Text, str]:
    tags = ", ".join(d.tags) or "(untagged)"
    if d.untag_only:
        tags += " (untag only)"
    if d.children:
        tags += f" + {_count(len(d.children), 'platform manifest')}"
    return literal(d.repository), literal(tags), literal(d.digest[:19]), format_size(d.bytes)


def _kept(kept: Sequence[KeptTag]) -> Table:
    if len(kept) > KEPT_ROWS:
        return _kept_by_reason(kept)
    table = Table(title=f"Kept: {_tags(len(kept))}, and why", title_justify="left")
    table.add_column("Repository")
    table.add_column("Tag")
    table.add_column("Digest")
    table.add_column("Why kept")
    for k in kept:
        table.add_row(
            literal(k.repository), literal(k.tag), literal(k.digest[:19]), literal(k.reason)
        )
    return table


def _kept_by_reason(kept: Sequence[KeptTag]) -> Table:
    groups: dict[str, int] = {}
    for k in kept:
        groups[k.reason] = groups.get(k.reason, 0) + 1
    table = Table(title=f"Kept: {_tags(len(kept))}, by reason", title_justify="left")
    table.add_column("Why kept")
    table.add_column("Tags", justify="right")
    for reason, count in sorted(groups.items(), key=lambda g: (-g[1], g[0])):
        table.add_row(literal(reason), str(count))
    return table


def render_outcome(console: Console, outcome: RegistryOutcome) -> None:
    shown = [
        r
        for r in outcome.results
        if len(outcome.results) <= OUTCOME_ROWS or r.result is not Result.REMOVED
    ]
    if shown:
        table = Table(title="Deletions", title_justify="left")
        table.add_column("Repository")
        table.add_column("Tags")
        table.add_column("Digest")
        table.add_column("Result")
        table.add_column("Detail")
        for r in shown:
            d = r.deletion
            cells = _deletion_cells(d)
            table.add_row(cells[0], cells[1], cells[2], Text(r.result.value, _STYLE[r.result]),
                          literal(r.detail))  # fmt: skip
        console.print(table)
    for url, name in outcome.plan.emptied:
        console.print(
            literal(
                f"{name} ({url}) was planned to have no manifests left: {EMPTIED_NOTE}", "yellow"
            )
        )
    took = (outcome.finished_at - outcome.started_at).total_seconds()
    counts = ", ".join(f"{r.value} {outcome.count(r)}" for r in Result)
    console.print(Text(f"Results: {counts}; took {took:.0f}s."))
    console.print(
        Text(
            f"{format_size(outcome.removed_bytes_predicted)} no longer referenced; "
            "`bilge registry gc` frees it on the registry's storage."
        )
    )


def render_gc(console: Console, report: GcReport) -> None:
    for note in report.notes:
        console.print(literal(f"note: {note}", "yellow"))
    took = (report.finished_at - report.started_at).total_seconds()
    if report.dry_run:
        console.print(
            literal(
                f"Would delete {len(report.blobs)} blobs ({format_size(report.bytes_eligible)}) "
                f"and {report.manifests} manifests from {report.registry} "
                f"(registry {report.version}, dry run, nothing changed)."
            )
        )
        return
    console.print(
        literal(
            f"Deleted {len(report.blobs)} blobs ({format_size(report.bytes_eligible)}) and "
            f"{report.manifests} manifests from {report.registry} (registry {report.version}); "
            f"read-only for {took:.0f}s, writable again."
        )
    )
    console.print(Text(_freed(report)))


def _freed(report: GcReport) -> str:
    measured = report.freed_bytes_measured
    if measured is None:
        return "Freed bytes not measured (the storage is not a local filesystem)."
    if measured <= report.bytes_eligible:
        return f"Freed {format_size(measured)} (measured on the storage)"
    return (
        f"Freed {format_size(measured)} (measured on the storage: the blobs, and the "
        "directories and link files that held them)"
    )


def _tags(n: int) -> str:
    return _count(n, "tag")


def _count(n: int, thing: str) -> str:
    return f"1 {thing}" if n == 1 else f"{n} {thing}s"
