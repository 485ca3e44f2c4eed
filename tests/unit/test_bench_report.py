"""The benchmark report's arithmetic: ratios per round and the default concurrency."""

from __future__ import annotations

from typing import Any

from benchmarks import report
from benchmarks.peers import bilge_name

from bilge.engine.base import DEFAULT_CONCURRENCY


def _tool(*seconds: float) -> dict[str, Any]:
    return {
        "median_s": sorted(seconds)[len(seconds) // 2],
        "runs": [{"seconds": s} for s in seconds],
        "removed": {"containers": 10, "volumes": 10},
    }


def test_paired_ratios_follow_the_rounds_not_the_medians() -> None:
    # Round 2 was slow for both: the medians alone would hide that bilge won every round.
    pair = report.paired(_tool(3.0, 6.0, 3.3), _tool(2.5, 5.5, 3.0))
    assert pair == {"ratios": [1.2, 1.09, 1.1], "bilge_faster": 3, "rounds": 3}


def test_a_round_bilge_lost_is_counted_as_lost() -> None:
    pair = report.paired(_tool(2.0, 2.0), _tool(2.5, 2.0))
    assert pair["bilge_faster"] == 0  # a tie is not a win
    assert pair["ratios"] == [0.8, 1.0]


def _concurrency(levels: dict[int, float]) -> dict[str, Any]:
    tools = {"docker prune": _tool(3.0)}
    tools |= {bilge_name(n): _tool(s) for n, s in levels.items()}
    return report.summary("concurrency", {"tools": tools})


def test_default_concurrency_is_compared_with_the_best() -> None:
    summary = _concurrency({1: 4.0, 4: 2.0, DEFAULT_CONCURRENCY: 2.2})
    assert summary["best"] == bilge_name(4)
    assert summary["default"] == bilge_name(DEFAULT_CONCURRENCY)
    assert summary["default_over_best"] == 1.1
    assert summary["paired"][bilge_name(4)]["ratios"] == [1.5]


def test_default_concurrency_not_measured_gives_no_figure() -> None:
    summary = _concurrency({1: 4.0, 8: 2.0})
    assert summary["default_over_best"] is None


def test_tables_show_the_rounds() -> None:
    tools = {
        "docker prune": _tool(3.0, 2.0),
        bilge_name(DEFAULT_CONCURRENCY): _tool(2.0, 2.5),
    }
    results = {"tools": tools}
    doc = {"results": results, "summary": report.summary("concurrency", results)}
    table = report.TABLES["concurrency"](doc)
    times = report.TIMES
    assert f"1.50{times}, 0.80{times} (bilge faster in 1 of 2)" in table
