"""The guard's scheduled report ([watch] report, report_every) on a fake clock, and
the two keys' validation."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from bilge.clock import FakeClock
from bilge.config.policy import DEFAULT_POLICY, parse_policy, policy_to_toml
from bilge.errors import ConfigError
from bilge.guard.reporting import ScheduledReport
from bilge.session import Session
from bilge.state.store import StateStore
from tests.unit.fake_engine import FakeEngine

SCRIPT = "<script>alert(1)</script>"


class Events:
    def __init__(self) -> None:
        self.seen: list[tuple[str, dict[str, Any]]] = []

    def __call__(self, event: str, level: str = "info", **fields: Any) -> None:
        self.seen.append((event, fields))


def schedule(tmp_path: Path, clock: FakeClock, every: str = "1h") -> tuple[ScheduledReport, Events]:
    policy = parse_policy(
        f'[watch]\nreport = "{tmp_path / "r.html"}"\nreport_every = "{every}"\n', "t"
    )
    log = Events()
    return ScheduledReport(policy.watch, clock, log), log


def test_the_report_is_off_by_default(clock: FakeClock) -> None:
    report = ScheduledReport(DEFAULT_POLICY.watch, clock, Events())
    assert not report.due()
    assert not report.tick(iter(()))


def test_written_at_start_then_every_period(
    tmp_path: Path, clock: FakeClock, fake_engine: FakeEngine
) -> None:
    report, log = schedule(tmp_path, clock)
    fake_engine.network_list.append(
        {"Id": "n1", "Name": SCRIPT, "Driver": "bridge", "Scope": "local",
         "Created": "2025-01-01T00:00:00Z", "Labels": {}}
    )  # fmt: skip
    store = StateStore(tmp_path / "state", clock=clock)
    try:
        session = Session(fake_engine.host, DEFAULT_POLICY, store, engine=fake_engine, clock=clock)
        hosts = [(fake_engine.host, session), ("unix:///down.sock", None)]
        assert report.tick(hosts)
        page = (tmp_path / "r.html").read_text()
        assert SCRIPT not in page and "&lt;script&gt;" not in page  # in the JSON, escaped
        assert "\\u003cscript\\u003e" in page
        assert "the guard is not connected to unix:///down.sock" in page
        clock.advance(3599)
        assert not report.tick(hosts)
        clock.advance(1)
        assert report.tick(hosts)
    finally:
        store.close()
    assert [e for e, _ in log.seen] == ["report-written", "report-written"]
    assert log.seen[0][1]["failed"] == 1


def test_a_report_that_cannot_be_written_is_logged_and_tried_again_later(
    tmp_path: Path, clock: FakeClock
) -> None:
    policy = parse_policy(f'[watch]\nreport = "{tmp_path}/missing/r.html"\n', "t")
    log = Events()
    report = ScheduledReport(policy.watch, clock, log)
    assert not report.tick([("unix:///down.sock", None)])
    assert log.seen[0][0] == "report-failed"
    assert not report.due()
    clock.advance(3600)
    assert report.due()


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('report_every = "10s"', "watch.report_every: must be between 1m and 7d, got 10s"),
        ('report_every = "30d"', "watch.report_every: must be between 1m and 7d, got 30d"),
        ('report_every = "soon"', "watch.report_every: invalid duration 'soon'"),
        ("report = 1", "watch.report: expected a string"),
        ('report = "/var/www/"', "watch.report: expected a file, not a directory"),
        ('report = "a\\u0000b"', "watch.report: a file path cannot contain a NUL character"),
    ],
)
def test_bad_report_keys_are_refused_by_name(text: str, message: str) -> None:
    with pytest.raises(ConfigError, match="^t: " + message.replace("(", r"\(")):
        parse_policy(f"[watch]\n{text}\n", "t")


def test_the_report_keys_read_back_from_the_effective_policy() -> None:
    policy = parse_policy('[watch]\nreport = "/srv/bilge.html"\nreport_every = "15m"\n', "t")
    again = parse_policy(policy_to_toml(policy), "again")
    assert again.watch.report == "/srv/bilge.html"
    assert again.watch.report_every.total_seconds() == 900
    assert 'report = ""' in policy_to_toml(DEFAULT_POLICY)
