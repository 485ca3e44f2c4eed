"""From a host's session to what its section of the report shows.

`gather` asks the session once for a snapshot and its plan (as `bilge status`
does) and reads the state store's samples and audit log; the doctor's checks
run on those same figures. `section` then turns them into plain values for
the template: texts, SVG geometry and the JSON of the treemap and tables.
Nothing here formats HTML: the template does, with every value escaped.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from bilge.config.units import format_size
from bilge.config.watch import WatchPolicy
from bilge.engine.base import engine_name
from bilge.model import AuditEntry, Plan, Snapshot, UsageSample
from bilge.planner.doctor import Finding, Severity, diagnose
from bilge.report.html.chart import Chart, usage_chart
from bilge.report.html.objects import Verdict, items
from bilge.report.html.payload import payload

if TYPE_CHECKING:
    from bilge.session import Session

#: Samples read for the chart and the forecast, and audit entries shown.
SAMPLES = 2000
AUDIT = 50
SEVERITY_RANK = {Severity.CRITICAL: 0, Severity.WARNING: 1, Severity.OK: 2}


@dataclass(frozen=True)
class HostData:
    """What one host's section is made from."""

    snapshot: Snapshot
    plan: Plan
    findings: tuple[Finding, ...]
    samples: Sequence[UsageSample]
    audit: Sequence[AuditEntry]
    watch: WatchPolicy


def gather(session: Session, audit_limit: int = AUDIT) -> HostData:
    """One snapshot and plan of the host, the doctor's findings on them, and the
    state store's usage samples and recent audit entries for this host."""
    status = session.status()
    host = status.snapshot.engine.host
    samples = session.store.samples(host, limit=SAMPLES)
    findings = diagnose(
        status.snapshot, status.plan, session.policy, samples, status.snapshot.taken_at
    )
    # The audit log holds every host's removals: read more, keep this host's.
    audit = [e for e in session.store.audit(audit_limit * 10) if e.host == host][:audit_limit]
    return HostData(status.snapshot, status.plan, findings, samples, audit, session.policy.watch)


@dataclass(frozen=True)
class Gauge:
    name: str
    ratio: float
    text: str
    high: float
    low: float


@dataclass(frozen=True)
class Section:
    """One host's section, ready for the template (an `error` section has only
    `host` and `error`). `rank` orders the fleet overview, worst first."""

    anchor: str
    host: str
    error: str = ""
    engine: str = ""
    data_root: str = ""
    filesystem: str = ""
    gauges: tuple[Gauge, ...] = ()
    time_to_full: str = ""
    worst: str = "ok"
    reclaimable: str = ""
    counts: dict[str, int] = field(default_factory=dict)
    chart: Chart | None = None
    findings: tuple[Finding, ...] = ()
    audit: tuple[AuditEntry, ...] = ()
    data: dict[str, Any] = field(default_factory=dict)
    rank: tuple[int, float] = (0, 0.0)


def failed_section(anchor: str, host: str, error: str) -> Section:
    """A host that could not be read: its error, first in the fleet overview."""
    return Section(anchor, host, error=error, worst="error", rank=(-1, 0.0))


def section(anchor: str, host: str, data: HostData) -> Section:
    """The section of a host read without error."""
    snap, plan = data.snapshot, data.plan
    found = items(snap, plan)
    worst = min((f.severity for f in data.findings), key=_rank, default=Severity.OK)
    used = snap.filesystem.bytes_ratio if snap.filesystem else 0.0
    verdicts = Counter(i.verdict for i in found)
    return Section(
        anchor,
        host,
        engine=_engine(snap),
        data_root=snap.engine.data_root,
        filesystem=snap.filesystem.path if snap.filesystem else "",
        gauges=_gauges(snap, data.watch),
        time_to_full=_finding_title(data.findings, "time-to-full"),
        worst=str(worst),
        reclaimable=f"{format_size(plan.total_bytes)} in {len(plan.actions)} removals",
        counts={
            "remove": verdicts[Verdict.REMOVE],
            "keep": verdicts[Verdict.KEEP],
            "protect": verdicts[Verdict.PROTECT],
        },
        chart=usage_chart(data.samples, _watermarks(data.watch), _growth(data.findings)),
        findings=data.findings,
        audit=tuple(data.audit),
        data=payload(found),
        rank=(SEVERITY_RANK[worst], -used),
    )


def _rank(severity: Severity) -> int:
    return SEVERITY_RANK[severity]


def _engine(snap: Snapshot) -> str:
    e = snap.engine
    where = "" if e.local else " (remote: the data-root's contents are not visible)"
    name = engine_name(e.kind)
    return (
        f"{name} {e.server_version} (API {e.api_version}), storage driver {e.storage_driver}{where}"
    )


def _gauges(snap: Snapshot, watch: WatchPolicy) -> tuple[Gauge, ...]:
    fs = snap.filesystem
    if fs is None:
        return ()
    used = f"{format_size(fs.used_bytes)} of {format_size(fs.total_bytes)} used"
    inodes = f"{fs.used_inodes:,} of {fs.total_inodes:,} inodes used"
    return (
        Gauge("bytes", fs.bytes_ratio, used, watch.high, watch.low),
        Gauge("inodes", fs.inodes_ratio, inodes, watch.inodes_high, watch.inodes_low),
    )


def _watermarks(watch: WatchPolicy) -> dict[str, float]:
    return {"high": watch.high, "low": watch.low}


def _finding_title(findings: Sequence[Finding], ident: str) -> str:
    return next((f.title for f in findings if f.id == ident), "")


def _growth(findings: Sequence[Finding]) -> float | None:
    """The growth per day the doctor's forecast found, if it found one."""
    for f in findings:
        growth = f.evidence.get("growth_bytes_per_day") if f.id == "time-to-full" else None
        if isinstance(growth, int | float):
            return float(growth)
    return None
