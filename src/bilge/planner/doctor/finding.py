"""What a doctor check returns, and what every check reads.

A `Finding` has an id (stable, for scripts), a severity, a title a person reads
first, a concrete fix (a bilge or docker command, or a daemon.json change) and
the figures behind it. Every check is a pure function of the same `Facts`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

from bilge.config.policy import Policy
from bilge.config.units import format_size
from bilge.model import Plan, Snapshot, UsageSample


class Severity(StrEnum):
    """How soon a finding needs a person: critical first, then warning."""

    OK = "ok"
    WARNING = "warning"
    CRITICAL = "critical"


@dataclass(frozen=True)
class Finding:
    """One check's answer: `id` is stable for scripts, `fix` is empty when ok."""

    id: str
    severity: Severity
    title: str
    fix: str = ""
    evidence: Mapping[str, object] = field(default_factory=dict)


@dataclass(frozen=True)
class Facts:
    """Everything a check may look at: no check reads the clock, the engine or the disk."""

    snap: Snapshot
    plan: Plan
    policy: Policy
    samples: Sequence[UsageSample]
    now: datetime


def on_podman(f: Facts) -> bool:
    """Podman keeps its settings elsewhere (containers.conf, storage.conf) and its
    command is `podman`: fixes must say so."""
    return f.snap.engine.kind == "podman"


def reclaim_fix(plan: Plan, what: str = "space") -> str:
    """The fix when something fills the disk: apply the plan, or say nothing would help."""
    if not plan.actions:
        return (
            f"nothing is reclaimable under the policy: see space-holders for what holds the {what}"
        )
    return (
        f"bilge apply (frees {format_size(plan.total_bytes)} in {len(plan.actions)} removals; "
        "bilge plan --explain shows them first)"
    )
