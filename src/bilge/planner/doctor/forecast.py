"""Doctor check: at the growth of the last week, when the data-root is full.

The growth is a least-squares line through the usage samples the state store
kept for this host (every status, doctor and apply records one; the guard does
it continuously). Too few samples, or too short a span, is noise: the check
then says so instead of guessing.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta

from bilge.config.units import format_size
from bilge.model import UsageSample
from bilge.planner.doctor.finding import Facts, Finding, Severity

#: A forecast needs this much history: fewer samples or a shorter span is noise.
FORECAST_MIN_SAMPLES = 3
FORECAST_MIN_SPAN = timedelta(hours=1)
FORECAST_WINDOW = timedelta(days=7)


def time_to_full(f: Facts) -> Finding:
    """time-to-full: critical under a day, a warning under a week."""
    fs = f.snap.filesystem
    host = f.snap.engine.host
    recent = sorted(
        (s for s in f.samples if s.host == host and f.now - s.at <= FORECAST_WINDOW),
        key=lambda s: s.at,
    )
    span = recent[-1].at - recent[0].at if recent else timedelta(0)
    evidence: dict[str, object] = {
        "samples": len(recent),
        "span_seconds": int(span.total_seconds()),
    }
    if fs is None or len(recent) < FORECAST_MIN_SAMPLES or span < FORECAST_MIN_SPAN:
        title = (
            f"not enough history to forecast ({len(recent)} samples over {_human(span)}; "
            "every status, doctor and apply records one, the guard does it continuously)"
        )
        return Finding("time-to-full", Severity.OK, title, "", evidence)
    per_day = _slope(recent) * 86400
    evidence["growth_bytes_per_day"] = int(per_day)
    if per_day <= 0:
        return Finding(
            "time-to-full",
            Severity.OK,
            f"usage is not growing ({format_size(int(-per_day))}/day freed)",
            "",
            evidence,
        )
    days = fs.free_bytes / per_day
    evidence["days_to_full"] = round(days, 2)
    title = f"at +{format_size(int(per_day))}/day, full in about {_human(timedelta(days=days))}"
    severity = Severity.CRITICAL if days < 1 else Severity.WARNING if days < 7 else Severity.OK
    fix = (
        ""
        if severity is Severity.OK
        else "run the guard (bilge watch) so it is kept below the watermark"
    )
    return Finding("time-to-full", severity, title, fix, evidence)


def _slope(samples: Sequence[UsageSample]) -> float:
    """Least-squares growth of used bytes, in bytes per second."""
    t0 = samples[0].at
    xs = [(s.at - t0).total_seconds() for s in samples]
    ys = [float(s.total_bytes - s.free_bytes) for s in samples]
    mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
    var = sum((x - mx) ** 2 for x in xs)
    return sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / var if var else 0.0


def _human(td: timedelta) -> str:
    seconds = td.total_seconds()
    if seconds < 3600:
        return f"{int(seconds // 60)} min"
    if seconds < 86400:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} days"
