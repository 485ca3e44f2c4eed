"""`bilge report --html` for a cluttered private engine, opened in a real browser:
Debian's chromium, headless, driven by selenium through /usr/bin/chromedriver
(`scripts/sandbox-engine install` installs both; nothing is downloaded).

The page must work offline with no console error and no request for anything
but itself, its treemap boxes must be as large on screen as their bytes say,
the largest objects must be findable by name, and names and labels that hold
markup must stay text: their scripts would set `window.__pwned`.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.integration.bilge_cli import ZERO_GRACE, make_bilge
from tests.integration.helpers import (
    Sandbox,
    build_image,
    make_dangling,
    make_volume,
    run_container,
)

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
MB = 1_000_000
#: A network name and label values that are markup; a keep label too, so that a
#: kept container's reason ("labelled ...") carries markup as well.
NET = '<script>window.__pwned = "net"</script>'
IMG = '"><img src=x onerror="window.__pwned = \'label\'">'
KEEP = "<script>window.__pwned++</script>"
#: Set BILGE_REPORT_SCREENSHOT=docs/report.png to keep the screenshot.
SHOT_ENV = "BILGE_REPORT_SCREENSHOT"

pytestmark = pytest.mark.skipif(
    not (os.access(CHROMIUM, os.X_OK) and os.access(CHROMEDRIVER, os.X_OK)),
    reason="Debian's chromium and chromium-driver (scripts/sandbox-engine install)",
)


def clutter(sb: Sandbox) -> dict[str, str]:
    """A neglected host; returns the three largest objects' names by kind."""
    run_container(sb, name="big-job", write={"/scratch/blob": 24 * MB})
    make_volume(sb, "db-data", files={"PG_VERSION": b"16\n", "base/1/big": 16 * MB})
    build_image(sb, "app:1", size=10 * MB)
    build_image(sb, "app:2", size=3 * MB)
    make_dangling(sb, "tool:1", 2 * MB)
    run_container(sb, name="web", image="app:2", state="running")
    run_container(sb, name="db", volumes=["db-data:/var/lib/postgresql/data"], state="running")
    run_container(sb, name="job-1", volumes=["/out"], write={"/out/r": 4 * MB})
    run_container(sb, name="chatty", command="head -c 600000 /dev/urandom | od -x")
    run_container(sb, name="never-ran", state="created")
    run_container(sb, name="labelled", labels={"note": IMG, KEEP: "1"}, write={"/f": 1 * MB})
    sb.docker("network", "create", "--internal", NET)
    return {"container": "big-job", "volume": "db-data", "image": "app:1"}


@pytest.fixture
def browser(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    # Selenium Manager must never look for (or download) a driver or a browser.
    monkeypatch.setenv("SE_OFFLINE", "true")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    profile = tempfile.mkdtemp(prefix="bilge-chromium-")
    for flag in (
        "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
        "--disable-quic", "--no-first-run", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--window-size=1300,1000",
        f"--user-data-dir={profile}",
    ):  # fmt: skip
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL", "performance": "ALL"})
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    try:
        driver.execute_cdp_cmd("Network.enable", {})
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


def requested_urls(driver: Any, page: str) -> list[str]:
    """Every URL asked of the network stack (CDP Network events) by the page or
    for anything but the browser's own chrome:// pages (its start page)."""
    import json

    urls = []
    for entry in driver.get_log("performance"):
        message = json.loads(entry["message"])["message"]
        if message["method"] == "Network.requestWillBeSent":
            params = message["params"]
            url = params["request"]["url"]
            if params.get("documentURL") == page or not url.startswith("chrome://"):
                urls.append(url)
    return urls


def boxes(driver: Any) -> list[dict[str, Any]]:
    """Every object the treemap of the first host shows: its name, kind, bytes and
    on-screen share of the map (outside Docker is drawn in two parts: added up)."""
    return list(
        driver.execute_script(
            """
            const map = document.querySelector(".treemap").getBoundingClientRect();
            const shown = {};
            for (const b of document.querySelectorAll(".treemap .box:not([hidden])")) {
              const r = b.getBoundingClientRect(), key = b.dataset.kind + " " + b.dataset.name;
              shown[key] = shown[key] || {name: b.dataset.name, kind: b.dataset.kind,
                                          bytes: Number(b.dataset.bytes), share: 0};
              shown[key].share += (r.width * r.height) / (map.width * map.height);
            }
            return Object.values(shown);
            """
        )
    )


def assert_areas_follow_bytes(browser: Any, *, docker_only: bool) -> None:
    groups = browser.execute_script(
        "return JSON.parse(document.getElementById('data-0').textContent).groups"
    )
    total = sum(g[1] for g in (groups[:-1] if docker_only else groups))
    shown = boxes(browser)
    big = [b for b in shown if b["bytes"] >= total * 0.02]
    assert len(big) >= 3
    assert any(b["kind"] == "outside-docker" for b in big) is not docker_only
    for box in big:
        assert box["share"] == pytest.approx(box["bytes"] / total, rel=0.03), box["name"]


def test_the_report_opens_offline_and_shows_what_fills_the_disk(
    disk_engine: Sandbox, tmp_path: Path, browser: Any
) -> None:
    largest = clutter(disk_engine)
    bilge = make_bilge(
        disk_engine,
        tmp_path,
        ZERO_GRACE.replace("[containers]", f"keep_label = {KEEP!r}\n[containers]"),
    )
    assert bilge("status", "--json").code == 0  # a first usage sample, for the history chart
    report = tmp_path / "report.html"
    run = bilge("report", "--html", str(report))
    assert run.code == 0, run.err
    assert report.stat().st_size < 1_000_000

    browser.get("about:blank")
    browser.get_log("performance")  # what the browser did before: not the report's
    browser.get(report.as_uri())
    assert browser.title.startswith("bilge report")
    errors = [e for e in browser.get_log("browser") if e["level"] in {"SEVERE", "WARNING"}]
    assert errors == []
    assert requested_urls(browser, report.as_uri()) == [report.as_uri()]
    resources = browser.execute_script("return performance.getEntriesByType('resource').length")
    assert resources == 0

    assert_areas_follow_bytes(browser, docker_only=False)
    toggle = browser.find_element("css selector", ".docker-only")
    toggle.click()  # Docker's objects alone, scaled to fill the map
    assert_areas_follow_bytes(browser, docker_only=True)
    toggle.click()

    shown = [b for b in boxes(browser) if b["kind"] != "outside-docker"]
    top3 = sorted(shown, key=lambda b: -b["bytes"])[:3]
    assert {b["name"] for b in top3} == set(largest.values())
    for kind, name in largest.items():
        selector = f'.treemap .box[data-name="{name}"][data-kind="{kind}"]'
        (element,) = browser.find_elements("css selector", selector)
        assert name in element.text
        element.click()
        details = browser.find_element("css selector", ".details").text
        assert name in details and "Reason" in details

    assert_hostile_names_stay_text(browser)
    assert_tables_sort_and_filter(browser)
    screenshot(browser, tmp_path)
    printed(browser, tmp_path)


def assert_hostile_names_stay_text(browser: Any) -> None:
    # The network: a row of the plan, its name shown as text.
    search = browser.find_element("css selector", '[data-table="plan"] input')
    search.send_keys("__pwned")
    rows = browser.find_elements("css selector", '[data-table="plan"] tbody tr')
    assert any(NET in row.text for row in rows)
    search.clear()
    search.send_keys(" ")  # an input event: the filter is cleared
    # The container whose labels are markup: kept by its (markup) keep label.
    (box,) = browser.find_elements(
        "css selector", '.treemap .box[data-name="labelled"][data-kind="container"]'
    )
    browser.execute_script("arguments[0].scrollIntoView()", box)
    box.send_keys("\n")  # Enter on the focused box shows its details
    details = browser.find_element("css selector", ".details").text
    assert f"note={IMG}" in details and f"labelled {KEEP}" in details
    assert browser.execute_script("return window.__pwned") is None
    assert browser.find_elements("css selector", "img, main script:not([type])") == []


def assert_tables_sort_and_filter(browser: Any) -> None:
    table = '[data-table="kept"]'
    search = browser.find_element("css selector", f"{table} input")
    search.clear()
    search.send_keys("running")
    names = [
        r.text for r in browser.find_elements("css selector", f"{table} tbody tr td:nth-child(2)")
    ]
    assert {"web", "db"} <= set(names)
    header = browser.find_element("css selector", f"{table} th:nth-child(2) button")
    header.click()
    names = [
        r.text for r in browser.find_elements("css selector", f"{table} tbody tr td:nth-child(2)")
    ]
    assert names == sorted(names, key=str.lower)


def screenshot(browser: Any, tmp_path: Path) -> None:
    height = browser.execute_script("return document.documentElement.scrollHeight")
    browser.set_window_size(1300, min(int(height) + 100, 5000))
    browser.execute_script("window.scrollTo(0, 0)")
    shot = tmp_path / "report.png"
    assert browser.save_screenshot(str(shot))
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 10_000
    keep = os.environ.get(SHOT_ENV)
    if keep:
        shutil.copyfile(shot, keep)


def printed(browser: Any, tmp_path: Path) -> None:
    """The page printed to PDF, as a print dialog would: the host's section starts a
    page of its own, after the title."""
    import base64
    import re

    printing = browser.execute_cdp_cmd("Page.printToPDF", {"printBackground": True})
    pdf = base64.b64decode(printing["data"])
    (tmp_path / "report.pdf").write_bytes(pdf)
    assert pdf.startswith(b"%PDF")
    assert len(re.findall(rb"/Type\s*/Page[^s]", pdf)) >= 2


def test_the_guard_writes_the_report_with_the_audit_log(engine: Sandbox, tmp_path: Path) -> None:
    run_container(engine, name="done-job", write={"/out": 200_000})
    page = tmp_path / "www" / "bilge.html"
    page.parent.mkdir()
    policy = ZERO_GRACE + f'[watch]\nreport = "{page}"\nreport_every = "1h"\n'
    bilge = make_bilge(engine, tmp_path, policy)
    applied = bilge("apply", "--yes")
    assert applied.code == 0, applied.err
    watched = bilge("watch", "--once", "--log-format", "json")
    assert watched.code == 0, watched.err
    assert '"event": "report-written"' in watched.out
    html = page.read_text()
    audit = html[html.index("Recent removals (audit log)") :]
    assert "done-job" in audit and ">removed<" in audit
    assert oct(page.stat().st_mode & 0o777) == "0o644"


def test_a_fleet_report_lists_a_failed_host_first_and_reports_the_others(
    engine: Sandbox, tmp_path: Path
) -> None:
    run_container(engine, name="fleet-job")
    bilge = make_bilge(engine, tmp_path)
    down = f"unix://{tmp_path}/nothing-here.sock"
    page = tmp_path / "fleet.html"
    run = bilge("-H", down, "report", "--html", str(page))  # after the sandbox's own -H
    assert run.code == 0, run.err  # one host was read
    assert f"bilge: error: {down}:" in run.err
    html = page.read_text()
    overview = html[html.index('id="fleet"') : html.index('class="host"')]
    assert overview.index(down) < overview.index(engine.host)
    assert "This host could not be read" in html and "fleet-job" in html
