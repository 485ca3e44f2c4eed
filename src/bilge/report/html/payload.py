"""The treemap and the tables of one host as compact JSON for the page's script.

A host with 10,000 objects must fit in well under a megabyte (docs/report.md),
so the page does not get 10,000 rows of markup: it gets one array per object,
and its script builds the boxes and rows with `textContent` (never markup
from data). Strings that repeat (reasons, labels) are stored once in `strings`
and referred to by index. Box coordinates are in ten-thousandths of the
treemap's width and height, which is finer than a pixel on any screen.

    {"groups": [[name, bytes, x, y, w, h], ...], "scale": s,
     "items": [[kind, name, bytes, verdict, reason, x, y, w, h, plan_bytes?], ...],
     "strings": [...], "kinds": [...], "labels": {"item index": [string, ...]}}

x is -1 for an item without a box (a network); plan_bytes is there only
when the plan's figure differs from the disk's. The coordinates are those of
Docker's objects alone; `scale` shrinks them to make room for what is outside
Docker, which has no box of its own (see `_layout`).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from bilge.report.html.objects import GROUPS, Item
from bilge.report.html.treemap import Rect, nested
from bilge.report.text import printable

#: The treemap's shape (16:9); the page keeps this aspect ratio.
ASPECT = Rect(0.0, 0.0, 1600.0, 900.0)
SCALE = 10_000
#: Longest name and label shown: a longer one is cut (the page stays small).
MAX_TEXT = 200
MAX_LABELS = 12


class _Strings:
    """Each distinct string once, by index."""

    def __init__(self) -> None:
        self.index: dict[str, int] = {}

    def __call__(self, text: str) -> int:
        return self.index.setdefault(_cut(text), len(self.index))

    def table(self) -> list[str]:
        return list(self.index)


def payload(found: Sequence[Item]) -> dict[str, Any]:
    """The JSON document of one host's items (see the module docstring)."""
    grouped: list[list[int]] = [[] for _ in GROUPS]
    for n, item in enumerate(found):
        if item.group is not None:
            grouped[item.group].append(n)
    for members in grouped:
        members.sort(key=lambda n: -found[n].bytes)
    scale, laid = _layout([[found[n].bytes for n in members] for members in grouped])
    boxes: dict[int, Rect] = {}
    for members, (_, inner) in zip(grouped[:-1], laid[:-1], strict=True):
        boxes.update(zip(members, inner, strict=True))
    strings = _Strings()
    kinds = {kind: n for n, kind in enumerate(sorted({item.kind for item in found}))}
    order = [n for members in grouped for n in members]
    order += [n for n, item in enumerate(found) if item.group is None]
    rows = [_row(found[n], boxes.get(n), strings, kinds) for n in order]
    labels = _labels((found[n].labels for n in order), strings)
    groups = [
        [name, sum(found[n].bytes for n in members), *_coords(box)]
        for (name, _), members, (box, _) in zip(GROUPS, grouped, laid, strict=True)
    ]
    return {
        "groups": groups,
        "scale": round(scale, 6),
        "items": rows,
        "strings": strings.table(),
        "kinds": list(kinds),
        "labels": labels,
    }


def _layout(sizes: list[list[int]]) -> tuple[float, list[tuple[Rect, list[Rect]]]]:
    """Docker's objects laid out over the whole treemap (kinds, then objects), and
    the scale at which the page shows them when what is outside Docker is drawn
    too: Docker's map shrunk by `scale` in both directions into the top-left corner
    (its area is then Docker's share of the used bytes), outside Docker the rest
    around it. One set of coordinates serves both views, and every area stays in
    proportion in both: on a data-root that shares a large filesystem, the view
    of Docker's objects alone is the one worth looking at."""
    inside, outside = sizes[:-1], sum(sizes[-1])
    docker = sum(sum(g) for g in inside)
    scale = math.sqrt(docker / (docker + outside)) if docker else 0.0
    empty = Rect(0.0, 0.0, 0.0, 0.0)
    return scale, [*nested(inside, ASPECT), (empty, [empty] * len(sizes[-1]))]


def _row(item: Item, box: Rect | None, strings: _Strings, kinds: dict[str, int]) -> list[Any]:
    coords = _coords(box) if box is not None else [-1, 0, 0, 0]
    row: list[Any] = [
        kinds[item.kind],
        _cut(item.name),
        item.bytes,
        int(item.verdict),
        strings(item.reason),
        *coords,
    ]
    if item.plan_bytes is not None:
        row.append(item.plan_bytes)
    return row


def _coords(box: Rect) -> list[int]:
    """A box in ten-thousandths of the treemap's width and height."""
    x0, y0 = box.x / ASPECT.w, box.y / ASPECT.h
    x1, y1 = (box.x + box.w) / ASPECT.w, (box.y + box.h) / ASPECT.h
    # Rounding the corners, not the sizes: neighbours still meet exactly.
    left, top = round(x0 * SCALE), round(y0 * SCALE)
    return [left, top, round(x1 * SCALE) - left, round(y1 * SCALE) - top]


def _labels(all_labels: Iterable[Mapping[str, str]], strings: _Strings) -> dict[str, list[int]]:
    out: dict[str, list[int]] = {}
    for n, labels in enumerate(all_labels):
        if labels:
            pairs = sorted(labels.items())[:MAX_LABELS]
            out[str(n)] = [strings(f"{key}={value}") for key, value in pairs]
    return out


def _cut(text: str) -> str:
    """A name or reason as shown: control and bidi characters as escapes (a name
    must not read backwards), and at most MAX_TEXT characters."""
    text = printable(text)
    return text if len(text) <= MAX_TEXT else text[: MAX_TEXT - 1] + "…"
