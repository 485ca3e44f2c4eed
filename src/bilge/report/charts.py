"""The drawn parts of the terminal report: gauges, bars and sparklines.

Kept apart from terminal.py, which lays out tables of names and reasons;
everything here draws numbers and takes no text from outside but labels
that are bilge's own.
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import pairwise

from rich.table import Table
from rich.text import Text

from bilge.config.units import format_size

BAR_WIDTH = 40
SPARK_WIDTH = 60

_EIGHTHS = " ▏▎▍▌▋▊▉"
_SPARKS = "▁▂▃▄▅▆▇█"
_CHART_STYLE = {
    "images": "cyan",
    "containers": "magenta",
    "logs": "yellow",
    "volumes": "blue",
    "build cache": "green",
}


def gauge(ratio: float, width: int = BAR_WIDTH) -> Text:
    """A used/total bar, green below 75 %, yellow below 90 %, red from there."""
    filled = round(min(max(ratio, 0.0), 1.0) * width)
    bar = Text("█" * filled, style=level_style(ratio))
    bar.append("░" * (width - filled), style="dim")
    return bar


def level_style(ratio: float) -> str:
    """Colour for a usage ratio, with the watermarks people expect of a disk."""
    if ratio < 0.75:
        return "green"
    return "yellow" if ratio < 0.90 else "red"


def percent(ratio: float) -> Text:
    return Text(f"{ratio:.0%}", style=level_style(ratio))


def bar(fraction: float, width: int = BAR_WIDTH) -> str:
    """A horizontal bar in eighths of a character; anything above zero shows."""
    eighths = round(min(max(fraction, 0.0), 1.0) * width * 8)
    if fraction > 0 and eighths == 0:
        eighths = 1
    full, part = divmod(eighths, 8)
    return ("█" * full + _EIGHTHS[part]).rstrip()


def usage_chart(
    bars: Sequence[tuple[str, int]], used_bytes: int | None, engine: str = "Docker"
) -> Table:
    """Bytes by kind as bars; with the filesystem's used bytes known, also what
    the engine (Docker, Podman) does not hold."""
    rows = list(bars)
    docker_total = sum(size for _, size in rows)
    if used_bytes is not None and used_bytes > docker_total:
        rows.append((f"outside {engine}", used_bytes - docker_total))
    total = sum(size for _, size in rows)
    biggest = max((size for _, size in rows), default=0)
    chart = Table.grid(padding=(0, 1))
    chart.title = Text("What fills the disk", style="bold")
    chart.title_justify = "left"
    chart.add_column()
    chart.add_column(width=BAR_WIDTH)
    chart.add_column(justify="right")
    chart.add_column(justify="right")
    for label, size in rows:
        style = _CHART_STYLE.get(label, "dim")
        chart.add_row(
            label,
            Text(bar(size / biggest if biggest else 0.0), style=style),
            format_size(size),
            f"{size / total:.0%}" if total else "-",
        )
    return chart


def sparkline(ratios: Sequence[float], width: int = SPARK_WIDTH) -> Text:
    """One character per stretch of samples, 0 % to 100 % high, coloured by level."""
    text = Text()
    for ratio in downsample(ratios, width):
        text.append(_SPARKS[min(int(ratio * len(_SPARKS)), len(_SPARKS) - 1)], level_style(ratio))
    return text


def downsample(values: Sequence[float], width: int) -> list[float]:
    """At most `width` points, each the highest of its stretch: peaks must not vanish."""
    if len(values) <= width:
        return list(values)
    bounds = [len(values) * i // width for i in range(width + 1)]
    return [max(values[lo:hi]) for lo, hi in pairwise(bounds)]
