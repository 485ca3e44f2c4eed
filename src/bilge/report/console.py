"""The console a command's output is printed to.

On a terminal, rich fits tables to the terminal's width. Elsewhere (a CI log,
`| less`, a file) it would squeeze them into 80 columns and wrap every reason
over four or five lines; there each print is as wide as its content instead,
or $COLUMNS when that is set. Loaded by the engine and the registry commands
alike, so it imports nothing of bilge's.
"""

from __future__ import annotations

import os
from typing import Any

from rich.console import Console
from rich.measure import measure_renderables

#: Off a terminal, output is never narrower than this (what a terminal would
#: have given) nor wider than the second: a bound, not a layout.
MIN_WIDTH, MAX_WIDTH = 80, 10_000


def out() -> Console:
    """The console for a command's output, on stdout."""
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
