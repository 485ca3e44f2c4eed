"""The console the CLI prints to, and what it shows on a terminal while it
works: a spinner, a question, a bar.

Kept apart from cli.py so that --json runs (scripts, cron, the benchmarks)
never load rich: its import alone is a tenth of a second.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from rich.console import Console
from rich.measure import measure_renderables
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from bilge.errors import UsageError
from bilge.model import ActionOutcome, Plan
from bilge.report import terminal
from bilge.report.literal import literal
from bilge.report.text import printable
from bilge.units import format_size

#: Off a terminal, output is never narrower than this (what a terminal would
#: have given) nor wider than the second: a bound, not a layout.
MIN_WIDTH, MAX_WIDTH = 80, 10_000


def out() -> Console:
    """The console for a command's output, on stdout.

    On a terminal, rich fits tables to the terminal's width. Elsewhere (a CI
    log, `| less`, a file) it would squeeze them into 80 columns and wrap every
    reason over several lines; there each print gets the width its content
    needs instead, or $COLUMNS when set.
    """
    console = Console(highlight=False)
    if console.is_terminal or os.environ.get("COLUMNS", "").isdigit():
        return console  # rich reads $COLUMNS itself
    return _ContentWidth(highlight=False, width=MAX_WIDTH)


class _ContentWidth(Console):
    """A console without a terminal: each print as wide as what it prints."""

    def print(self, *objects: Any, **options: Any) -> None:
        if objects and options.get("width") is None:
            measured = measure_renderables(self, self.options, objects)
            options["width"] = max(MIN_WIDTH, min(measured.maximum, MAX_WIDTH))
        super().print(*objects, **options)


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
