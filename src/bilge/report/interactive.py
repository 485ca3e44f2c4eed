"""What the CLI shows on a terminal while it works: a spinner, a question, a
bar; and the console it prints its output to (console.py).

Kept apart from cli.py so that --json runs (scripts, cron, the benchmarks)
never load rich: its import alone is a tenth of a second.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from bilge.config.units import format_size
from bilge.errors import UsageError
from bilge.model import ActionOutcome, Plan
from bilge.report import terminal
from bilge.report.console import out
from bilge.report.literal import literal
from bilge.report.text import printable

__all__ = ["confirm", "out", "progress", "reading"]


@contextmanager
def reading(host: str) -> Iterator[None]:
    """A spinner while the engine and data-root are read: on a crowded host, walking
    every volume takes a while. Only on a terminal."""
    err = Console(stderr=True)
    if not err.is_terminal:
        yield
        return
    with err.status(literal(f"Reading {host} and its data-root...")):
        yield


def confirm(the_plan: Plan, *, quiet: bool, is_tty: bool) -> None:
    """Ask on a terminal; without one, refuse rather than guess."""
    if not is_tty:
        raise UsageError("refusing to remove anything without --yes (no terminal to ask on)")
    err = Console(stderr=True, highlight=False)
    if not quiet:
        terminal.render_plan(err, the_plan, explain=False)
    question = (
        f"Remove {len(the_plan.actions)} objects, freeing {format_size(the_plan.total_bytes)}?"
    )
    answer = err.input(f"{question} [y/N] ", markup=False)
    if answer.strip().lower() not in {"y", "yes"}:
        raise UsageError("nothing removed: not confirmed")


class progress:
    """A progress bar on a terminal; a no-op elsewhere (CI logs, pipes)."""

    def __init__(self, total: int) -> None:
        console = Console(stderr=True)
        self._bar: Progress | None = None
        if console.is_terminal:
            self._bar = Progress(
                TextColumn("Removing"),
                BarColumn(),
                MofNCompleteColumn(),
                # The name is the engine's: never markup (nor, via printable, controls).
                TextColumn("{task.fields[last]}", markup=False),
                TimeElapsedColumn(),
                console=console,
                transient=True,
            )
            self._task = self._bar.add_task("remove", total=total, last="")

    def __enter__(self) -> Callable[[ActionOutcome], None]:
        if self._bar is not None:
            self._bar.start()
        return self._advance

    def __exit__(self, *exc: object) -> None:
        if self._bar is not None:
            self._bar.stop()

    def _advance(self, outcome: ActionOutcome) -> None:
        if self._bar is not None:
            last = printable(outcome.action.name)[:40]
            self._bar.update(self._task, advance=1, last=last)
