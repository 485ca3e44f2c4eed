"""The documentation a user reads first stays in step with the code."""

from __future__ import annotations

import argparse
import re
from pathlib import Path

import pytest

from bilge.cli.entry import build_parser

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text()


def subcommands() -> dict[str, argparse.ArgumentParser]:
    parser = build_parser()
    action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return dict(action.choices)


@pytest.mark.parametrize("name", sorted(subcommands()))
def test_every_command_has_an_example_and_is_in_the_readme(name: str) -> None:
    sub = subcommands()[name]
    assert f"bilge {name}" in (sub.epilog or ""), f"`bilge {name} --help` has no example"
    assert re.search(rf"^bilge {name}\b", README, re.MULTILINE), f"README lacks `bilge {name}`"


@pytest.mark.parametrize("name", sorted(subcommands()))
def test_every_option_is_in_the_readme(name: str) -> None:
    for action in subcommands()[name]._actions:
        for flag in action.option_strings:
            if flag.startswith("--") and flag != "--help":
                assert flag in README, f"README does not mention {name} {flag}"


def test_the_readme_commands_are_the_makefile_targets() -> None:
    makefile = (ROOT / "Makefile").read_text()
    for target in ("demo", "test", "bench"):
        assert f"make {target}" in README
        assert re.search(rf"^{target}:", makefile, re.MULTILINE)


def test_ci_runs_the_readme_test_command() -> None:
    ci = (ROOT / ".ci" / "run").read_text()
    assert ci.strip().splitlines()[-1] == "make test"


def test_test_modules_have_distinct_names() -> None:
    # pytest imports test modules by basename (no packages): two of the same name
    # in tests/unit and tests/integration stop `make test` at collection.
    names = [p.name for p in (ROOT / "tests").rglob("test_*.py")]
    assert len(names) == len(set(names)), sorted(n for n in names if names.count(n) > 1)
