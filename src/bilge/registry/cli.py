"""`bilge registry plan | apply | gc`: the parser only.

Imported by bilge.cli.entry whenever bilge starts, so it imports nothing heavy:
httpx, pydantic and rich are loaded by the handler, once the arguments are good.
"""

from __future__ import annotations

import argparse
from pathlib import Path

EXAMPLE = (
    "example: bilge registry plan --explain\n"
    "         bilge registry plan --out registry-plan.json\n"
    "         bilge registry apply --plan registry-plan.json --yes\n"
    "         bilge registry gc --dry-run\n"
    "         bilge registry gc --registry registry.example.com --yes"
)
_PLAN = "example: bilge registry plan --explain\n         bilge registry plan --json"
_APPLY = "example: bilge registry apply\n         bilge registry apply --plan plan.json --yes"
_GC = "example: bilge registry gc --dry-run\n         bilge registry gc --yes --json"


def add_parser(
    sub: argparse._SubParsersAction[argparse.ArgumentParser], common: argparse.ArgumentParser
) -> None:
    """Add `registry` and its actions to bilge's subcommands."""
    registry = sub.add_parser(
        "registry",
        help="registry retention (plan, apply) and safe garbage collection (gc)",
        description="Registry retention and safe garbage collection, by the [[registry]] "
        "tables of the policy (docs/registry.md). Credentials come from the Docker "
        "config (`docker login`).",
        epilog=EXAMPLE,
        parents=[common],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    actions = registry.add_subparsers(dest="registry_command", metavar="ACTION", required=True)
    p = _action(actions, common, "plan", "tags to delete, why, and the bytes only they hold", _PLAN)
    p.add_argument("--explain", action="store_true", help="also show each kept tag and why")
    p.add_argument("--out", type=Path, metavar="FILE", help="save the plan for `apply --plan`")
    p = _action(actions, common, "apply", "delete what the plan says, re-checking each tag", _APPLY)
    p.add_argument("--yes", "-y", action="store_true", help="do not ask for confirmation")
    p.add_argument("--plan", type=Path, metavar="FILE", help="apply a plan saved by `plan --out`")
    p = _action(actions, common, "gc", "garbage-collect safely: read-only while it runs", _GC)
    p.add_argument("--dry-run", action="store_true", help="only report what would be deleted")
    p.add_argument("--yes", "-y", action="store_true", help="do not ask for confirmation")


def _action(
    actions: argparse._SubParsersAction[argparse.ArgumentParser],
    common: argparse.ArgumentParser,
    name: str,
    summary: str,
    example: str,
) -> argparse.ArgumentParser:
    p: argparse.ArgumentParser = actions.add_parser(
        name,
        help=summary,
        description=summary[0].upper() + summary[1:] + ".",
        epilog=example,
        parents=[common],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "--registry",
        action="append",
        metavar="NAME",
        help="only this registry (its name, host[:port] or URL); repeat for several",
    )
    p.add_argument("--json", action="store_true", help="machine-readable output (schema 1)")
    return p
