"""A squarified treemap: boxes whose areas are proportional to sizes.

The layout of Bruls, Huizing and van Wijk ("Squarified Treemaps", 2000): the
items, largest first, are laid in rows along the shorter side of the space
left, and a row grows while that makes its worst aspect ratio better. Boxes
close to squares are what lets a person compare two sizes at a glance, which
a slice-and-dice layout (thin strips) does not.

Pure functions of numbers, no I/O: the report lays out the data-root's
filesystem with them (kinds, then objects inside each kind), and the unit
tests check the promises (areas proportional to the sizes, no overlaps,
every box inside its parent, zero sizes handled) on generated input.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Rect:
    """An axis-aligned box: its top-left corner and its width and height."""

    x: float
    y: float
    w: float
    h: float

    @property
    def area(self) -> float:
        return self.w * self.h


def squarify(sizes: Sequence[float], rect: Rect) -> list[Rect]:
    """One box per size, in the order given, tiling `rect` (when the sizes add up
    to more than zero); each box's area is `rect.area * size / sum(sizes)`.

    A size of zero (or less: nothing to show) gets an empty box at the corner of
    `rect`, so that callers can zip sizes and boxes without a special case.
    """
    boxes = [Rect(rect.x, rect.y, 0.0, 0.0)] * len(sizes)
    order = sorted((i for i, s in enumerate(sizes) if s > 0), key=lambda i: -sizes[i])
    total = sum(sizes[i] for i in order)
    if not order or rect.w <= 0 or rect.h <= 0:
        return boxes
    scale = rect.area / total
    free = rect
    row: list[int] = []
    total = 0.0  # of the row's areas; its largest area is its first (sorted)
    for i in order:
        area, side = sizes[i] * scale, min(free.w, free.h)
        if row:
            now = _worst(total, sizes[row[0]] * scale, sizes[row[-1]] * scale, side)
            if _worst(total + area, sizes[row[0]] * scale, area, side) > now:
                free = _lay_row(row, sizes, scale, free, boxes)
                row, total = [], 0.0
        row.append(i)
        total += area
    _lay_row(row, sizes, scale, free, boxes, last=True)
    return boxes


def nested(groups: Sequence[Sequence[float]], rect: Rect) -> list[tuple[Rect, list[Rect]]]:
    """A two-level treemap: each group's box (area by the sum of its sizes), and
    inside it the boxes of its sizes. Every size keeps the same share of `rect`
    as in a flat layout, so areas can be compared across groups."""
    outer = squarify([sum(s for s in g if s > 0) for g in groups], rect)
    return [(box, squarify(g, box)) for box, g in zip(outer, groups, strict=True)]


def _worst(total: float, biggest: float, smallest: float, side: float) -> float:
    """The worst aspect ratio (>= 1) of a row of areas adding up to `total`, laid
    along a side of length `side`: that of its largest or of its smallest box."""
    return max(side * side * biggest / (total * total), total * total / (side * side * smallest))


def _lay_row(
    row: Sequence[int],
    sizes: Sequence[float],
    scale: float,
    free: Rect,
    boxes: list[Rect],
    *,
    last: bool = False,
) -> Rect:
    """Place `row` along the shorter side of `free`; return the space left.

    The last row takes all of the space left, so that rounding errors of the
    earlier rows never leave a sliver uncovered or push a box outside.
    """
    areas = [sizes[i] * scale for i in row]
    total = sum(areas)
    if free.w >= free.h:  # a column on the left, as wide as the row's area needs
        width = free.w if last else min(free.w, total / free.h)
        y = free.y
        for n, (i, area) in enumerate(zip(row, areas, strict=True)):
            h = free.y + free.h - y if n == len(row) - 1 else area / width
            boxes[i] = Rect(free.x, y, width, h)
            y += h
        return Rect(free.x + width, free.y, free.w - width, free.h)
    height = free.h if last else min(free.h, total / free.w)
    x = free.x
    for n, (i, area) in enumerate(zip(row, areas, strict=True)):
        w = free.x + free.w - x if n == len(row) - 1 else area / height
        boxes[i] = Rect(x, free.y, w, height)
        x += w
    return Rect(free.x, free.y + height, free.w, free.h - height)
