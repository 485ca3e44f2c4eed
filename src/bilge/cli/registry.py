"""`bilge registry plan | apply | gc`, on the registries of the policy."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from bilge.cli.common import report_lost, warn

if TYPE_CHECKING:
    from bilge.session import Session


def run(args: argparse.Namespace, session: Session) -> int:
    """Run the registry action; prints its JSON document itself when asked."""
    from bilge.registry import handler
    from bilge.report import json as jsonreport

    try:
        code, doc = handler.run(session, args)
    finally:
        warn(session.close())
    if doc is not None:
        print(jsonreport.dumps(doc))
    return max(code, report_lost(session.lost()))
