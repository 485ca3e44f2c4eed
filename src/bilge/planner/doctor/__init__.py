"""`bilge doctor`: what is wrong with the host's disk, the evidence, and the fix.

A pure function of the snapshot, the plan made from it, the policy, the usage
samples of the state store and `now`. Every finding has an id (stable, for
scripts), a severity, a title a person reads first, the figures behind it,
and a concrete fix: the bilge or docker command, or the daemon.json change.

The checks are grouped by what they look at: `disk` (bytes, inodes, what holds
the space), `forecast` (time to full), `logs`, `reclaimable` (build cache,
unused volumes, stopped containers, orphaned layers) and `data` (data at risk,
a data-root on /). `finding` holds what they share; this module runs them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import datetime

from bilge.config.policy import Policy
from bilge.model import Plan, Snapshot, UsageSample
from bilge.planner.doctor import data, disk, forecast, logs, reclaimable
from bilge.planner.doctor.finding import Facts, Finding, Severity

#: Every check, in the order findings of the same severity are shown.
CHECKS: tuple[Callable[[Facts], Finding], ...] = (
    disk.disk_bytes,
    disk.disk_inodes,
    disk.space_holders,
    forecast.time_to_full,
    logs.logs_unbounded,
    logs.logs_large,
    reclaimable.build_cache,
    reclaimable.dangling_volumes,
    reclaimable.exited_containers,
    reclaimable.orphaned_layers,
    data.data_at_risk,
    data.data_root_on_root_fs,
)


def diagnose(
    snap: Snapshot, plan: Plan, policy: Policy, samples: Iterable[UsageSample], now: datetime
) -> tuple[Finding, ...]:
    """All findings, most severe first (in a fixed order within a severity)."""
    facts = Facts(snap, plan, policy, tuple(samples), now)
    found = [check(facts) for check in CHECKS]
    rank = {Severity.CRITICAL: 0, Severity.WARNING: 1, Severity.OK: 2}
    return tuple(sorted(found, key=lambda f: rank[f.severity]))


__all__ = ["Finding", "Severity", "diagnose"]
