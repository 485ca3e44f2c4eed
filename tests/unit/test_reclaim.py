"""Planning log truncation and orphaned layer removal: opt-in, with reasons."""

from __future__ import annotations

from dataclasses import replace

from bilge.config.policy import DEFAULT_POLICY, parse_policy, with_orphans
from bilge.model import Container, Kind, OrphanDir
from bilge.planner.core import plan
from tests.unit.snapshots import NOW, ago, container, snapshot

MB = 1000**2
LOGS = parse_policy('[logs]\nmax_size = "10MB"\n', "t")


def chatty(name: str, size: int, *, state: str = "running", driver: str = "json-file") -> Container:
    return replace(container(name, state=state), log_driver=driver, log_file_bytes=size)


def test_logs_are_left_alone_unless_max_size_is_set() -> None:
    snap = snapshot(containers=[chatty("web", 50 * MB)])
    assert not [a for a in plan(snap, DEFAULT_POLICY, NOW).actions if a.kind is Kind.LOG]


def test_a_log_over_max_size_is_truncated_running_container_included() -> None:
    snap = snapshot(containers=[chatty("web", 50 * MB), chatty("quiet", 5 * MB)])
    logs = [a for a in plan(snap, LOGS, NOW).actions if a.kind is Kind.LOG]
    assert [(a.id, a.bytes) for a in logs] == [("web-id", 50 * MB)]
    assert "over logs.max_size 10.0 MB" in logs[0].reason
    assert not [a for a in plan(snap, LOGS, NOW).actions if a.kind is Kind.CONTAINER]


def test_a_removed_container_takes_its_log_and_is_not_truncated_too() -> None:
    snap = snapshot(containers=[chatty("job", 50 * MB, state="exited")])
    kinds = [a.kind for a in plan(snap, LOGS, NOW).actions]
    assert kinds == [Kind.CONTAINER]


def test_only_json_file_logs_are_truncated() -> None:
    snap = snapshot(containers=[chatty("web", 50 * MB, driver="local")])
    p = plan(snap, LOGS, NOW)
    assert not [a for a in p.actions if a.kind is Kind.LOG]
    assert [k.reason for k in p.kept if k.kind is Kind.LOG] == [
        "log driver local cannot be truncated in place"
    ]


def test_orphans_are_removed_only_when_asked_and_old_enough() -> None:
    old, young = OrphanDir("old" * 10, 5 * MB, ago(days=3)), OrphanDir("new" * 10, MB, ago(hours=1))
    snap = replace(snapshot(), orphans=(old, young))
    off = plan(snap, DEFAULT_POLICY, NOW)
    assert not off.actions
    assert {k.reason for k in off.kept} == {"orphan removal is off (--orphans)"}
    on = plan(snap, with_orphans(DEFAULT_POLICY), NOW)
    assert [(a.kind, a.id, a.bytes) for a in on.actions] == [(Kind.ORPHAN, old.name, 5 * MB)]
    assert [k.reason for k in on.kept] == ["changed 1h ago (< 1d)"]
