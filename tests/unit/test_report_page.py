"""The HTML report, rendered from model objects: escaping, self-containment, size,
the treemap's accounting, the fleet overview and the history chart.

tests/integration/test_report_html.py opens a real engine's report in a browser.
"""

from __future__ import annotations

import json
import re
from datetime import timedelta
from html.parser import HTMLParser
from pathlib import Path

import pytest
from benchmarks.html_report import crowded_snapshot
from hypothesis import given

from bilge.cli import main
from bilge.cli.report import write_report
from bilge.config.policy import DEFAULT_POLICY, Policy, parse_policy
from bilge.errors import UsageError
from bilge.model import Filesystem, Kind, Snapshot, UsageSample
from bilge.planner.core import plan
from bilge.planner.doctor import diagnose
from bilge.planner.summary import image_bytes
from bilge.report.html import render
from bilge.report.html.build import HostData, Section, failed_section, section
from bilge.report.html.chart import usage_chart
from bilge.report.html.objects import OUTSIDE, SHARED, Verdict, items
from bilge.report.html.payload import payload
from tests.unit.snapshots import (
    ENGINE,
    NOW,
    container,
    image,
    network,
    policies,
    snapshot,
    snapshots,
    volume,
)

SCRIPT = "<script>alert(1)</script>"
IMG = '"><img src=x onerror=alert(1)>'
FS = Filesystem("/var/lib/docker", 10**9, 6 * 10**8, 100_000, 90_000)
ZERO = parse_policy('[containers]\nexited_after = "0s"\n[networks]\nunused_after = "0s"\n', "t")


def hostile_snapshot() -> Snapshot:
    return snapshot(
        containers=[
            container("web", state="running", size_rw=5_000, log_bytes=300,
                      labels={"evil": SCRIPT, "quote": IMG}),
            container("job", size_rw=7_000, log_bytes=200, labels={IMG: SCRIPT}),
        ],
        images=[
            image("sha256:a", "app:1", layers=["l1", "l2"], labels={"x": SCRIPT}),
            image("sha256:b", "app:2", layers=["l1", "l3"]),
        ],
        layers={"l1": 1000, "l2": 2000, "l3": 3000},
        volumes=[volume("data", bytes=4000, markers=["postgres: PG_VERSION"])],
        networks=[network(SCRIPT), network(IMG, labels={"n": SCRIPT})],
        filesystem=FS,
    )  # fmt: skip


def host_data(
    snap: Snapshot, policy: Policy = ZERO, samples: tuple[UsageSample, ...] = ()
) -> HostData:
    the_plan = plan(snap, policy, NOW)
    findings = diagnose(snap, the_plan, policy, samples, NOW)
    return HostData(snap, the_plan, findings, samples, (), policy.watch)


def page(*sections: Section) -> str:
    return render(sections, NOW, nonce="n0nce")


class Tags(HTMLParser):
    """Every start tag of a page, with its attributes."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))


def tags_of(html: str) -> list[tuple[str, dict[str, str | None]]]:
    parser = Tags()
    parser.feed(html)
    return parser.tags


def data_blocks(html: str) -> list[dict[str, object]]:
    blocks = re.findall(r'<script type="application/json" id="data-\d+">(.*?)</script>', html)
    return [json.loads(b) for b in blocks]


def test_hostile_names_and_labels_stay_text() -> None:
    html = page(section("host-1", "unix:///a.sock", host_data(hostile_snapshot())))
    assert SCRIPT not in html and "<img" not in html
    tags = [t for t, _ in tags_of(html)]
    assert tags.count("script") == 2  # the data block and the page's own script
    assert "img" not in tags
    # The JSON data block carries the names exactly, with < and > escaped.
    (data,) = data_blocks(html)
    names = [row[1] for row in data["items"]]  # type: ignore[index]
    assert SCRIPT in names and IMG in names
    assert f"evil={SCRIPT}" in data["strings"]  # type: ignore[operator]


def test_a_failed_host_error_is_escaped_too() -> None:
    html = page(failed_section("host-1", f"unix:///{SCRIPT}", f"engine said {IMG}"))
    assert SCRIPT not in html and "<img" not in html
    assert "engine said &#34;&gt;&lt;img" in html


def test_the_page_loads_nothing_and_runs_only_its_own_nonced_code() -> None:
    html = page(section("host-1", "unix:///a.sock", host_data(hostile_snapshot())))
    tags = tags_of(html)
    (csp,) = [a["content"] for t, a in tags if a.get("http-equiv") == "Content-Security-Policy"]
    assert csp is not None and "default-src 'none'" in csp
    assert "script-src 'nonce-n0nce'" in csp and "style-src 'nonce-n0nce'" in csp
    assert "unsafe-inline" not in csp
    for tag, attrs in tags:
        assert "src" not in attrs, tag  # no image, script or frame from anywhere
        assert "style" not in attrs, tag  # the CSP would refuse inline style attributes
        if tag == "a":
            assert (attrs.get("href") or "").startswith("#")
        if tag in {"style", "script"} and attrs.get("type") != "application/json":
            assert attrs.get("nonce") == "n0nce"
    assert not re.search(r"(?i)https?://|//[a-z]", html.replace("unix:///", ""))


def test_every_render_has_a_fresh_nonce() -> None:
    sections = [section("host-1", "h", host_data(hostile_snapshot()))]
    first, second = render(sections, NOW), render(sections, NOW)
    nonce = re.compile(r"'nonce-([^']+)'")
    assert nonce.search(first).group(1) != nonce.search(second).group(1)  # type: ignore[union-attr]


def test_a_host_of_10000_objects_fits_in_a_megabyte() -> None:
    snap = crowded_snapshot(10_000)
    objects = (len(snap.containers) + len(snap.images) + len(snap.volumes)
               + len(snap.networks) + len(snap.build_cache) + len(snap.orphans))  # fmt: skip
    assert objects >= 10_000 - 10
    html = page(section("host-1", "h", host_data(snap, DEFAULT_POLICY)))
    assert len(html.encode()) <= 1_000_000
    (data,) = data_blocks(html)
    assert len(data["items"]) >= objects  # type: ignore[arg-type]


def test_the_boxes_add_up_to_the_filesystem_with_shared_layers_once() -> None:
    snap = hostile_snapshot()
    the_plan = plan(snap, ZERO, NOW)
    found = items(snap, the_plan)
    boxed = [i for i in found if i.group is not None]
    assert sum(i.bytes for i in boxed) == FS.used_bytes
    images = [i for i in boxed if i.kind in {Kind.IMAGE.value, SHARED}]
    assert sum(i.bytes for i in images) == image_bytes(snap) == 6000
    (outside,) = [i for i in found if i.kind == OUTSIDE]
    assert outside.bytes == FS.used_bytes - 6000 - 12_000 - 500 - 4000


def test_every_action_and_every_kept_object_is_in_a_table_once() -> None:
    snap = hostile_snapshot()
    the_plan = plan(snap, ZERO, NOW)
    found = items(snap, the_plan)
    removed = [(i.kind, i.name) for i in found if i.verdict is Verdict.REMOVE]
    kept = [(i.kind, i.name) for i in found if i.verdict in {Verdict.KEEP, Verdict.PROTECT}]
    assert sorted(removed) == sorted((a.kind.value, a.name) for a in the_plan.actions)
    assert set(kept) >= {(k.kind.value, k.name) for k in the_plan.kept}
    by_name = {i.name: i for i in found if i.kind != "log"}
    assert by_name["data"].verdict is Verdict.PROTECT  # database files: protected data
    assert by_name["job"].plan_bytes == 7_200  # the action frees its log too
    assert [i.verdict for i in found if i.kind == "log" and i.name == "job"] == [Verdict.ALONG]


def test_a_removed_image_counts_what_the_plan_frees() -> None:
    snap = snapshot(
        images=[image("sha256:a", layers=["l1", "l2"]), image("sha256:b", "app:2", layers=["l1"])],
        layers={"l1": 1000, "l2": 2000},
        containers=[container("c", state="running", image_id="sha256:b")],
    )
    policy = parse_policy('[images]\ndangling_after = "0s"\n', "t")
    found = {i.name: i for i in items(snap, plan(snap, policy, NOW))}
    assert found["a"].verdict is Verdict.REMOVE and found["a"].bytes == 2000
    assert found["app:2"].verdict is Verdict.KEEP and found["app:2"].bytes == 1000


def test_the_fleet_overview_puts_the_worst_first_and_links_each_section() -> None:
    calm = section("host-1", "calm", host_data(snapshot(filesystem=FS)))
    full = Filesystem("/d", 10**9, 10**7, 100, 90)
    critical = section("host-2", "full", host_data(snapshot(filesystem=full)))
    broken = failed_section("host-3", "broken", "cannot connect to the engine")
    html = page(calm, critical, broken)
    overview = html[html.index('id="fleet"') : html.index('class="host"')]
    links = re.findall(r'<a href="#(host-\d)">', overview)
    assert links == ["host-3", "host-2", "host-1"]
    assert 'id="host-1"' in html and 'id="host-2"' in html and 'id="host-3"' in html
    assert "This host could not be read: cannot connect to the engine" in html


def test_a_single_host_has_no_fleet_overview() -> None:
    assert 'id="fleet"' not in page(section("host-1", "h", host_data(snapshot(filesystem=FS))))


def samples(used: list[int], step: timedelta = timedelta(hours=1)) -> tuple[UsageSample, ...]:
    start = NOW - step * (len(used) - 1)
    return tuple(
        UsageSample(ENGINE.host, start + step * n, 1000, 1000 - u, 100, 50)
        for n, u in enumerate(used)
    )


def test_the_chart_forecasts_to_full_with_the_watermarks() -> None:
    chart = usage_chart(samples([500, 600, 700]), {"high": 0.85, "low": 0.75}, 2400.0)
    assert chart is not None
    (_, end) = chart.forecast_points.split()
    assert float(end.split(",")[1]) == 10.0  # the top of the plot: 100 %
    assert "100 % in 3.0 hours" in chart.forecast_label
    assert [w.label for w in chart.watermarks] == ["high 85%", "low 75%"]
    assert len(chart.bytes_points.split()) == 3


def test_a_far_forecast_stops_at_twice_the_length_of_the_history() -> None:
    chart = usage_chart(samples([500, 501, 502]), {"high": 0.85}, 24.0)
    assert chart is not None
    (_, end) = chart.forecast_points.split()
    assert float(end.split(",")[1]) > 10.0
    assert "100 % in 20.8 days" in chart.forecast_label


def test_no_chart_without_two_samples_and_no_forecast_without_growth() -> None:
    assert usage_chart(samples([500]), {}, 10.0) is None
    chart = usage_chart(samples([500] * 1000, timedelta(minutes=1)), {}, None)
    assert chart is not None and chart.forecast_points == ""
    assert len(chart.bytes_points.split()) == 400


def test_the_history_section_is_drawn_from_the_samples() -> None:
    data = host_data(snapshot(filesystem=FS), samples=samples([300, 350, 400, 450]))
    html = page(section("host-1", "h", data))
    assert '<polyline class="used"' in html and '<polyline class="forecast"' in html


def test_a_host_that_cannot_be_read_is_a_page_with_its_error_and_exit_1(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "report.html"
    host = f"unix://{tmp_path}/no-engine.sock"
    argv = ["-H", host, "--state-dir", str(tmp_path / "s"), "report", "--html", str(out)]
    assert main(argv) == 1
    html = out.read_text()
    assert "This host could not be read:" in html and "no-engine.sock" in html
    assert f"bilge: error: {host}:" in capsys.readouterr().err


def test_the_report_goes_to_stdout_with_a_dash(capsys: pytest.CaptureFixture[str]) -> None:
    write_report(page(failed_section("host-1", "h", "down")), "-")
    assert capsys.readouterr().out.startswith("<!DOCTYPE html>")


def test_an_unwritable_report_is_one_usage_error(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match=r"cannot write the report to .*/missing/r\.html"):
        write_report("<p>", str(tmp_path / "missing" / "r.html"))


def test_docker_fills_the_map_and_shrinks_by_its_share_beside_outside_docker() -> None:
    snap = hostile_snapshot()
    found = items(snap, plan(snap, ZERO, NOW))
    data = payload(found)
    docker = sum(i.bytes for i in found if i.group is not None and i.kind != OUTSIDE)
    assert data["scale"] ** 2 == pytest.approx(docker / FS.used_bytes, rel=1e-5)
    kinds = data["kinds"]
    shares = {}
    for row in data["items"]:
        x, y, w, h = row[5:9]
        if kinds[row[0]] == OUTSIDE or row[2] == 0:
            assert x == -1 or w * h == 0
            continue
        assert x >= 0 and y >= 0 and x + w <= 10_000 and y + h <= 10_000
        shares[row[1], kinds[row[0]]] = (w * h / 10_000**2, row[2] / docker)
    for name, (area, share) in shares.items():
        assert area == pytest.approx(share, rel=0.01, abs=2e-4), name


@given(snapshots(), policies())
def test_every_plan_entry_is_one_row_and_the_boxes_count_images_as_the_planner(
    snap: Snapshot, policy: Policy
) -> None:
    the_plan = plan(snap, policy, NOW)
    found = items(snap, the_plan)
    removed = sorted((i.kind, i.name) for i in found if i.verdict is Verdict.REMOVE)
    assert removed == sorted((a.kind.value, a.name) for a in the_plan.actions)
    tabled = [i for i in found if i.verdict in {Verdict.KEEP, Verdict.PROTECT}]
    assert len([i for i in tabled if i.kind != SHARED]) == len(the_plan.kept)
    images = sum(i.bytes for i in found if i.kind in {Kind.IMAGE.value, SHARED})
    assert images == image_bytes(snap)
    assert all(i.bytes >= 0 for i in found)
