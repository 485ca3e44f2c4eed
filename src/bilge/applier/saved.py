"""A saved plan, applied: never more than a fresh plan would do.

`bilge plan --out FILE` writes a plan; `bilge apply --plan FILE` reads it back
later, when the host and the policy may have changed. The file is only a
selection: the actions carried out are the fresh plan's own, for the objects
the file names and that have not changed since (docs/architecture.md, safety rule 6).
"""

from __future__ import annotations

from dataclasses import replace

from bilge.errors import PlanFileError
from bilge.model import ActionOutcome, Kind, Plan, Result, Snapshot


def narrow_saved(
    saved: Plan, fresh: Plan, snapshot: Snapshot
) -> tuple[Plan, tuple[ActionOutcome, ...]]:
    """A saved plan, applied: only what `fresh` (a plan of a fresh snapshot under the
    current policy) also removes, on objects unchanged since. Returns the plan to
    carry out (the fresh plan's actions, in its order) and the saved actions
    refused, each with the fresh plan's reason. A saved plan can only narrow
    what a fresh plan does, never widen it (docs/architecture.md, safety rule 6). `snapshot`
    is what `fresh` was made of: it tells "gone" from "not removable"."""
    if saved.host != fresh.host:
        raise PlanFileError(
            f"plan file was made for {saved.host}, not {fresh.host}; make a new plan"
        )
    removes = {(a.kind, a.id): a for a in fresh.actions}
    keeps = {(k.kind, k.id): k.reason for k in fresh.kept}
    present = {**snapshot.fingerprints(), **snapshot.log_fingerprints()}
    chosen: set[tuple[Kind, str]] = set()
    refused = []
    for action in saved.actions:
        key = (action.kind, action.id)
        current = removes.get(key)
        if current is not None and current.fingerprint == action.fingerprint:
            chosen.add(key)
            continue
        if current is not None:
            why = "refused: changed since the plan was made"
        elif key in keeps:
            why = f"refused: a fresh plan keeps it: {keeps[key]}"
        elif key not in present:
            why = "gone since the plan was made"
        else:
            why = "refused: a fresh plan would not remove it"
        refused.append(ActionOutcome(action, Result.SKIPPED, why))
    actions = tuple(a for a in fresh.actions if (a.kind, a.id) in chosen)
    return replace(fresh, actions=actions, kept=()), tuple(refused)
