"""The usage history chart of the HTML report: SVG geometry, computed here.

The page draws what this module computes (polylines and labels in SVG units),
so the chart needs no script and prints as it shows. Used bytes and used
inodes are percentages of the filesystem; the forecast continues the growth
the doctor's time-to-full check found (the same least-squares line over the
last week's samples) from the newest sample towards 100 %.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from bilge.model import UsageSample

WIDTH, HEIGHT = 800.0, 240.0
LEFT, RIGHT, TOP, BOTTOM = 44.0, 12.0, 10.0, 24.0
#: At most this many points per line: more would only add bytes to the page.
MAX_POINTS = 400


@dataclass(frozen=True)
class Line:
    y: float
    label: str


@dataclass(frozen=True)
class Chart:
    """Everything the template draws; coordinates are SVG user units."""

    width: float
    height: float
    bytes_points: str
    inodes_points: str
    forecast_points: str
    forecast_label: str
    watermarks: tuple[Line, ...]
    y_ticks: tuple[Line, ...]
    x_ticks: tuple[tuple[float, str], ...]
    samples: int


def usage_chart(
    samples: Sequence[UsageSample],
    watermarks: Mapping[str, float],
    growth_bytes_per_day: float | None,
) -> Chart | None:
    """The chart of `samples` (any order), or None with fewer than two of them."""
    ordered = sorted((s for s in samples if s.total_bytes > 0), key=lambda s: s.at)
    if len(ordered) < 2:
        return None
    first, last = ordered[0].at, ordered[-1].at
    span = max(last - first, timedelta(minutes=1))
    forecast = _forecast(ordered[-1], growth_bytes_per_day, span)
    end = forecast[1][0] if forecast else last
    x = _scale(first, end)
    thinned = _thin(ordered)
    bytes_points = " ".join(f"{x(s.at):.1f},{_y(_ratio(s)):.1f}" for s in thinned)
    inodes = [s for s in thinned if s.total_inodes]
    inodes_points = " ".join(f"{x(s.at):.1f},{_y(_inode_ratio(s)):.1f}" for s in inodes)
    forecast_points, forecast_label = "", "no growth to forecast"
    if forecast:
        (t0, r0), (t1, r1), forecast_label = forecast
        forecast_points = f"{x(t0):.1f},{_y(r0):.1f} {x(t1):.1f},{_y(r1):.1f}"
    return Chart(
        WIDTH,
        HEIGHT,
        bytes_points,
        inodes_points,
        forecast_points,
        forecast_label,
        tuple(Line(_y(v), f"{name} {v:.0%}") for name, v in watermarks.items()),
        tuple(Line(_y(v / 100), f"{v} %") for v in (0, 25, 50, 75, 100)),
        _x_ticks(first, end, x),
        len(ordered),
    )


def _forecast(
    last: UsageSample, per_day: float | None, span: timedelta
) -> tuple[tuple[datetime, float], tuple[datetime, float], str] | None:
    """From the newest sample to 100 %, or to twice the history's length when
    100 % is further away than that (a far forecast would squash the history)."""
    if not per_day or per_day <= 0:
        return None
    start = _ratio(last)
    days_to_full = last.free_bytes / per_day
    full_at = last.at + timedelta(days=days_to_full)
    horizon = last.at + 2 * span
    label = f"100 % in {_days(days_to_full)} at the last week's growth"
    if full_at <= horizon:
        return (last.at, start), (full_at, 1.0), label
    seconds = 2 * span.total_seconds()
    reached = start + per_day * seconds / 86400 / last.total_bytes
    return (last.at, start), (horizon, min(reached, 1.0)), label


def _days(days: float) -> str:
    if days < 1:
        return f"{days * 24:.1f} hours"
    return f"{days:.1f} days"


def _ratio(s: UsageSample) -> float:
    return (s.total_bytes - s.free_bytes) / s.total_bytes


def _inode_ratio(s: UsageSample) -> float:
    return (s.total_inodes - s.free_inodes) / s.total_inodes


def _y(ratio: float) -> float:
    clamped = min(max(ratio, 0.0), 1.0)
    return TOP + (1 - clamped) * (HEIGHT - TOP - BOTTOM)


def _scale(first: datetime, end: datetime) -> _XScale:
    return _XScale(first, max((end - first).total_seconds(), 1.0))


@dataclass(frozen=True)
class _XScale:
    first: datetime
    seconds: float

    def __call__(self, at: datetime) -> float:
        share = (at - self.first).total_seconds() / self.seconds
        return LEFT + share * (WIDTH - LEFT - RIGHT)


def _thin(ordered: Sequence[UsageSample]) -> list[UsageSample]:
    """At most MAX_POINTS samples, evenly picked, the first and the last kept."""
    if len(ordered) <= MAX_POINTS:
        return list(ordered)
    step = (len(ordered) - 1) / (MAX_POINTS - 1)
    return [ordered[round(i * step)] for i in range(MAX_POINTS)]


def _x_ticks(first: datetime, end: datetime, x: _XScale) -> tuple[tuple[float, str], ...]:
    """Five times along the axis, as short UTC dates (or times within a day)."""
    span = end - first
    fmt = "%H:%M" if span <= timedelta(days=1) else "%m-%d %H:%M"
    return tuple((x(first + span * i / 4), (first + span * i / 4).strftime(fmt)) for i in range(5))
