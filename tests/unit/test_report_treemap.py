"""The squarified treemap of the HTML report: areas proportional to sizes, no
overlaps, every box inside its parent, zero sizes handled."""

from __future__ import annotations

import itertools

from hypothesis import given
from hypothesis import strategies as st

from bilge.report.html.treemap import Rect, nested, squarify

EPS = 1e-6

sizes_lists = st.lists(
    st.one_of(st.just(0), st.integers(min_value=1, max_value=10**12)), min_size=0, max_size=60
)
rects = st.builds(
    Rect,
    x=st.floats(min_value=0, max_value=100),
    y=st.floats(min_value=0, max_value=100),
    w=st.floats(min_value=1, max_value=2000),
    h=st.floats(min_value=1, max_value=2000),
)


def inside(box: Rect, parent: Rect) -> bool:
    tol = EPS * max(parent.w, parent.h, 1)
    return (
        box.x >= parent.x - tol
        and box.y >= parent.y - tol
        and box.x + box.w <= parent.x + parent.w + tol
        and box.y + box.h <= parent.y + parent.h + tol
        and box.w >= -tol
        and box.h >= -tol
    )


def overlap(a: Rect, b: Rect) -> float:
    w = min(a.x + a.w, b.x + b.w) - max(a.x, b.x)
    h = min(a.y + a.h, b.y + b.h) - max(a.y, b.y)
    return max(w, 0.0) * max(h, 0.0)


def check_layout(sizes: list[int], parent: Rect, boxes: list[Rect]) -> None:
    assert len(boxes) == len(sizes)
    total = sum(sizes)
    for size, box in zip(sizes, boxes, strict=True):
        assert inside(box, parent)
        if size == 0:
            assert box.area == 0
        else:
            share = box.area / parent.area
            assert abs(share - size / total) <= 0.01 * size / total + 1e-12
    for a, b in itertools.combinations(boxes, 2):
        assert overlap(a, b) <= EPS * parent.area


@given(sizes_lists, rects)
def test_areas_follow_the_sizes_without_overlap_inside_the_parent(
    sizes: list[int], parent: Rect
) -> None:
    check_layout(sizes, parent, squarify(sizes, parent))


@given(st.lists(sizes_lists, min_size=0, max_size=8), rects)
def test_nested_boxes_keep_their_share_of_the_whole(groups: list[list[int]], parent: Rect) -> None:
    laid = nested(groups, parent)
    outer = [box for box, _ in laid]
    check_layout([sum(g) for g in groups], parent, outer)
    total = sum(sum(g) for g in groups)
    for (box, inner), group in zip(laid, groups, strict=True):
        if sum(group):
            check_layout(group, box, inner)
        for size, child in zip(group, inner, strict=True):
            assert inside(child, box)
            if size:
                assert abs(child.area / parent.area - size / total) <= 0.01 * size / total


def test_the_boxes_tile_the_parent() -> None:
    boxes = squarify([6, 6, 4, 3, 2, 2, 1], Rect(0, 0, 6, 4))
    assert abs(sum(b.area for b in boxes) - 24) < 1e-9
    # The paper's example: the first row is the two largest, stacked on the left.
    assert boxes[0] == Rect(0, 0, 3, 2)
    assert boxes[1] == Rect(0, 2, 3, 2)


def test_boxes_are_nearly_square_for_equal_sizes() -> None:
    boxes = squarify([1] * 16, Rect(0, 0, 400, 400))
    assert all(max(b.w / b.h, b.h / b.w) < 1.5 for b in boxes)


def test_nothing_to_show_gives_empty_boxes_at_the_corner() -> None:
    assert squarify([], Rect(0, 0, 10, 10)) == []
    assert squarify([0, 0], Rect(3, 4, 10, 10)) == [Rect(3, 4, 0, 0)] * 2
    assert squarify([5], Rect(3, 4, 0, 10)) == [Rect(3, 4, 0, 0)]


def test_one_size_fills_the_parent() -> None:
    assert squarify([0, 7, 0], Rect(1, 2, 30, 20))[1] == Rect(1, 2, 30, 20)
