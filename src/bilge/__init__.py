"""bilge: keeps container hosts from running out of disk.

The library under the command line:

    from bilge import Session, load_policy

    with Session("unix:///var/run/docker.sock", load_policy(None)) as session:
        plan = session.plan()          # what would go, and why; plan.kept: what stays
        outcome = session.apply(plan)  # removed / skipped / failed, bytes freed

`plan(snapshot, policy, now)` and `apply(plan, engine, audit)` are the pure
planner and the applier underneath; the model (Snapshot, Plan, Action, Kept,
Outcome, ...) is in bilge.model. Names are loaded on first use, so that
`import bilge` stays cheap for the command line.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

#: Public name -> the module that defines it.
_EXPORTS = {
    "Session": "bilge.session",
    "load_policy": "bilge.config.policy",
    "Policy": "bilge.config.policy",
    "plan": "bilge.planner.core",
    "apply": "bilge.applier.core",
    "Snapshot": "bilge.model",
    "Plan": "bilge.model",
    "Action": "bilge.model",
    "Kept": "bilge.model",
    "Kind": "bilge.model",
    "Outcome": "bilge.model",
    "ActionOutcome": "bilge.model",
    "Result": "bilge.model",
    "BilgeError": "bilge.errors",
}

__all__ = [
    "Action",
    "ActionOutcome",
    "BilgeError",
    "Kept",
    "Kind",
    "Outcome",
    "Plan",
    "Policy",
    "Result",
    "Session",
    "Snapshot",
    "__version__",
    "apply",
    "load_policy",
    "plan",
]

if TYPE_CHECKING:
    from bilge.applier.core import apply
    from bilge.config.policy import Policy, load_policy
    from bilge.errors import BilgeError
    from bilge.model import Action, ActionOutcome, Kept, Kind, Outcome, Plan, Result, Snapshot
    from bilge.planner.core import plan
    from bilge.session import Session


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'bilge' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value
