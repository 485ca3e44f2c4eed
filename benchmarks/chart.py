"""The benchmarks' chart: one SVG, written by hand (no plotting library), four panels.

* crowded host: each tool's median wall time, the whisker from its fastest to its
  slowest round;
* planning: `bilge plan` and `docker system df -v`, cold and warm page cache;
* removal concurrency: bilge's time at 1 to 16 parallel requests, the engine's own
  prune as a dashed line;
* scaling: the planner's time per object at each snapshot size (flat is linear).

A panel whose scenario was not run is left out.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from html import escape
from pathlib import Path
from typing import Any

WIDTH, PANEL_H = 960, 300
BILGE, BILGE_LIGHT, PEER, PEER_LIGHT = "#1f6f8b", "#7fb3c8", "#c8553d", "#e8a87c"
INK, GRID = "#222", "#ddd"
FONT = 'font-family="DejaVu Sans, Helvetica, Arial, sans-serif"'


def _text(x: float, y: float, s: str, size: int = 12, anchor: str = "start", **kw: str) -> str:
    attrs = {"fill": INK} | {k.replace("_", "-"): v for k, v in kw.items()}
    extra = "".join(f' {k}="{v}"' for k, v in attrs.items())
    return (
        f'<text x="{x:.1f}" y="{y:.1f}" font-size="{size}" text-anchor="{anchor}"'
        f"{extra}>{escape(s)}</text>"
    )


def _rect(x: float, y: float, w: float, h: float, fill: str) -> str:
    return (
        f'<rect x="{x:.1f}" y="{y:.1f}" width="{max(w, 0.5):.1f}" height="{h:.1f}" fill="{fill}"/>'
    )


def _line(x1: float, y1: float, x2: float, y2: float, *, stroke: str = INK, dash: str = "") -> str:
    d = f' stroke-dasharray="{dash}"' if dash else ""
    return f'<line x1="{x1:.1f}" y1="{y1:.1f}" x2="{x2:.1f}" y2="{y2:.1f}" stroke="{stroke}"{d}/>'


Bar = tuple[str, float, float, float, str]  # label, value, low, high, colour


def bars(title: str, unit: str, rows: Sequence[Bar]) -> list[str]:
    """A horizontal bar chart in a 460 x 280 box; a whisker from `low` to `high`."""
    out = [_text(0, 16, title, 14, font_weight="bold")]
    label_w, plot_w = 170, 230
    top = max([r[3] for r in rows] + [r[1] for r in rows] + [1e-9])
    step = min(36.0, 230 / max(len(rows), 1))
    for i, (label, value, low, high, colour) in enumerate(rows):
        y = 36 + i * step
        w = plot_w * value / top
        out.append(_text(label_w - 6, y + step * 0.45, label, 11, "end"))
        out.append(_rect(label_w, y, w, step * 0.6, colour))
        if high > low:
            yw = y + step * 0.3
            out.append(_line(label_w + plot_w * low / top, yw, label_w + plot_w * high / top, yw))
        end = label_w + max(w, plot_w * high / top) + 4
        out.append(_text(end, y + step * 0.45, f"{value:.2f} {unit}", 11))
    return out


def curve(
    title: str,
    points: Sequence[tuple[str, float]],
    labels: tuple[str, str],
    ref: tuple[str, float] | None,
) -> list[str]:
    """A line over evenly spaced categories in a 460 x 280 box (`labels`: the x and y
    axes'), with an optional dashed reference level (label, value)."""
    out = [_text(0, 16, title, 14, font_weight="bold"), _text(4, 32, labels[1], 10)]
    left, top_y, w, h = 50, 40, 380, 200
    top = max([p[1] for p in points] + [ref[1] if ref else 0.0]) * 1.15 or 1.0
    out += [_line(left, top_y + h, left + w, top_y + h), _line(left, top_y, left, top_y + h)]
    for k in range(5):
        yy = top_y + h - h * k / 4
        out.append(_line(left, yy, left + w, yy, stroke=GRID))
        out.append(_text(left - 6, yy + 4, _short(top * k / 4), 10, "end"))
    xy = []
    for i, (label, value) in enumerate(points):
        x, y = left + w * (i + 0.5) / len(points), top_y + h - h * value / top
        xy.append(f"{x:.1f},{y:.1f}")
        out.append(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="4" fill="{BILGE}"/>')
        out.append(_text(x, top_y + h + 16, label, 11, "middle"))
        out.append(_text(x, y - 8, _short(value), 10, "middle"))
    out.append(_text(left + w / 2, top_y + h + 32, labels[0], 10, "middle"))
    out.append(f'<polyline points="{" ".join(xy)}" fill="none" stroke="{BILGE}" stroke-width="2"/>')
    if ref is not None:
        yr = top_y + h - h * ref[1] / top
        out.append(_line(left, yr, left + w, yr, stroke=PEER, dash="6 4"))
        # At the left end: the points' own labels crowd the right end.
        out.append(_text(left + 6, yr - 5, f"{ref[0]} {_short(ref[1])}", 10, fill=PEER))
    return out


def _short(v: float) -> str:
    if v >= 100:
        return f"{v:.0f}"
    return f"{v:.1f}" if v >= 10 else f"{v:.2f}"


def _colour(name: str, light: bool = False) -> str:
    if name.startswith("bilge"):
        return BILGE_LIGHT if light else BILGE
    return PEER_LIGHT if light else PEER


def _crowded(doc: Mapping[str, Any]) -> list[str]:
    rows: list[Bar] = []
    for name, t in doc["results"]["tools"].items():
        runs = [r["seconds"] for r in t["runs"]]
        rows.append((name, t["median_s"], min(runs), max(runs), _colour(name)))
    return bars("Crowded host: wall time (median, fastest to slowest)", "s", rows)


def _planning(doc: Mapping[str, Any]) -> list[str]:
    rows: list[Bar] = []
    for name, t in doc["results"]["tools"].items():
        for cache in ("cold", "warm"):
            runs = t[cache]["runs_s"]
            colour = _colour(name, light=cache == "warm")
            rows.append((f"{name}, {cache}", t[cache]["median_s"], min(runs), max(runs), colour))
    return bars("Planning on the crowded host with many files", "s", rows)


def _concurrency(doc: Mapping[str, Any]) -> list[str]:
    tools = doc["results"]["tools"]
    bilge = {name: t for name, t in tools.items() if name.startswith("bilge")}
    points = [(name.rsplit("-j", 1)[-1], t["median_s"]) for name, t in bilge.items()]
    prune = ("docker prune", tools["docker prune"]["median_s"])
    labels = ("parallel requests (--concurrency)", "seconds (median)")
    return curve("Removal: bilge apply at N parallel requests", points, labels, prune)


def _scaling(doc: Mapping[str, Any]) -> list[str]:
    sizes = doc["results"]["sizes"]
    points = [(f"{s['objects']:,}", s["median_s"] / s["objects"] * 1e6) for s in sizes]
    labels = ("objects in the snapshot", "µs per object (median)")
    return curve("Planner alone: time per object (flat = linear)", points, labels, None)


PANELS = {
    "crowded": _crowded,
    "planning": _planning,
    "concurrency": _concurrency,
    "scaling": _scaling,
}


def render(docs: Mapping[str, Mapping[str, Any]], path: Path) -> Path:
    """Write the chart of whatever results `docs` holds to `path`."""
    panels = [draw(docs[name]) for name, draw in PANELS.items() if name in docs]
    height = max((len(panels) + 1) // 2, 1) * PANEL_H + 30
    body = []
    for i, panel in enumerate(panels):
        dx, dy = 20 + (i % 2) * (WIDTH // 2), 10 + (i // 2) * PANEL_H
        body.append(f'<g transform="translate({dx},{dy})">{"".join(panel)}</g>')
    machine = next(iter(docs.values()))["machine"] if docs else {}
    engine = f"dockerd {machine.get('dockerd', '?')} (API {machine.get('api', '?')})"
    note = f"{machine.get('cpus', '?')} cores, {engine}"
    svg = (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}" '
        f'viewBox="0 0 {WIDTH} {height}" {FONT}>'
        f'<rect width="100%" height="100%" fill="white"/>{"".join(body)}'
        f"{_text(WIDTH - 10, height - 8, note, 10, 'end')}</svg>\n"
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(svg)
    return path
