"""The command line: a thin skin over the library (`entry.main` parses and maps
errors to exit codes; `handlers` runs a command and renders its result)."""

from bilge.cli.entry import main

__all__ = ["main"]
