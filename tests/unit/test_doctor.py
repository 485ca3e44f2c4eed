"""Each doctor finding, present and absent, on hand-made snapshots and samples."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest

from bilge.config.policy import DEFAULT_POLICY, Policy, parse_policy
from bilge.model import Container, Filesystem, OrphanDir, Snapshot, UsageSample
from bilge.planner.core import plan
from bilge.planner.doctor import Finding, Severity, diagnose
from tests.unit.snapshots import (
    ENGINE,
    NOW,
    PG_MARKER,
    ago,
    cache,
    container,
    snapshot,
    volume,
)

GB = 1000**3
MB = 1000**2


def fs(*, used: float = 0.5, inodes_used: float = 0.1, total: int = 100 * GB) -> Filesystem:
    return Filesystem(
        path="/var/lib/docker",
        total_bytes=total,
        free_bytes=int(total * (1 - used)),
        total_inodes=1_000_000,
        free_inodes=int(1_000_000 * (1 - inodes_used)),
    )


def findings(
    snap: Snapshot, policy: Policy = DEFAULT_POLICY, samples: tuple[UsageSample, ...] = ()
) -> dict[str, Finding]:
    found = diagnose(snap, plan(snap, policy, NOW), policy, samples, NOW)
    assert len({f.id for f in found}) == len(found)
    return {f.id: f for f in found}


def logged(name: str, *, driver: str = "json-file", max_size: str = "", size: int = 0) -> Container:
    return replace(
        container(name, state="running"),
        log_driver=driver,
        log_max_size=max_size,
        log_file_bytes=size,
        log_path=f"/var/lib/docker/containers/{name}-id/{name}-id-json.log",
    )


def test_every_finding_is_always_there_most_severe_first() -> None:
    found = diagnose(snapshot(filesystem=fs(used=0.99)), plan(snapshot(), DEFAULT_POLICY, NOW),
                     DEFAULT_POLICY, (), NOW)  # fmt: skip
    assert {f.id for f in found} == {
        "disk-bytes", "disk-inodes", "space-holders", "time-to-full", "logs-unbounded",
        "logs-large", "build-cache", "dangling-volumes", "exited-containers",
        "orphaned-layers", "data-at-risk", "data-root-on-root-fs",
    }  # fmt: skip
    ranks = [list(Severity).index(f.severity) for f in found]
    assert found[0].id == "disk-bytes" and found[0].severity is Severity.CRITICAL
    assert [r for r in ranks if r != 0] == sorted((r for r in ranks if r != 0), reverse=True)


@pytest.mark.parametrize(
    ("used", "severity"),
    [
        (0.5, Severity.OK),
        (0.86, Severity.WARNING),
        (0.96, Severity.CRITICAL),
        (1.0, Severity.CRITICAL),
    ],
)  # fmt: skip
def test_disk_bytes_against_the_watermark(used: float, severity: Severity) -> None:
    got = findings(snapshot(filesystem=fs(used=used)))["disk-bytes"]
    assert got.severity is severity
    assert got.evidence["used_ratio"] == pytest.approx(used, abs=0.001)
    assert (got.fix != "") == (severity is not Severity.OK)


def test_a_full_disk_points_at_bilge_apply_with_what_it_frees() -> None:
    snap = snapshot(containers=[container("job", size_rw=3 * GB)], filesystem=fs(used=1.0))
    got = findings(snap)["disk-bytes"]
    assert got.severity is Severity.CRITICAL and "bilge apply (frees 3.0 GB" in got.fix


def test_inodes_are_named_as_the_cause_when_bytes_are_free() -> None:
    snap = snapshot(filesystem=fs(used=0.3, inodes_used=1.0))
    got = findings(snap)["disk-inodes"]
    assert got.severity is Severity.CRITICAL
    assert got.title.startswith("inodes exhausted") and "are free" in got.title
    assert findings(snapshot(filesystem=fs(inodes_used=0.2)))["disk-inodes"].severity is Severity.OK


def test_no_filesystem_is_said_plainly() -> None:
    got = findings(snapshot())
    assert got["disk-bytes"].severity is Severity.OK and "not readable" in got["disk-bytes"].title


def test_space_holders_name_the_biggest_kind_and_objects() -> None:
    snap = snapshot(volumes=[volume("big", bytes=7 * GB)], filesystem=fs())
    got = findings(snap)["space-holders"]
    assert "volumes" in got.title
    assert got.evidence["largest"][0]["name"] == "big"  # type: ignore[index]


def _samples(
    per_day: float, days: float, n: int = 8, free_now: int = 10 * GB
) -> tuple[UsageSample, ...]:
    out = []
    for i in range(n):
        t = NOW - timedelta(days=days) + timedelta(days=days) * i / (n - 1)
        used_then = 100 * GB - free_now - int(per_day * (NOW - t).total_seconds() / 86400)
        out.append(UsageSample(ENGINE.host, t, 100 * GB, 100 * GB - used_then, 10**6, 10**5))
    return tuple(out)


def test_time_to_full_from_the_usage_history() -> None:
    snap = snapshot(filesystem=fs(used=0.9))
    got = findings(snap, samples=_samples(per_day=5 * GB, days=2))["time-to-full"]
    assert got.severity is Severity.WARNING
    assert got.title.startswith("at +5.0 GB/day, full in about 2.0 days")
    soon = findings(snap, samples=_samples(per_day=40 * GB, days=1))["time-to-full"]
    assert soon.severity is Severity.CRITICAL


def test_time_to_full_says_when_it_cannot_tell() -> None:
    snap = snapshot(filesystem=fs())
    few = findings(snap, samples=_samples(per_day=GB, days=2, n=2))["time-to-full"]
    assert few.severity is Severity.OK and few.title.startswith("not enough history")
    short = findings(snap, samples=_samples(per_day=GB, days=0.01))["time-to-full"]
    assert short.title.startswith("not enough history")
    shrinking = findings(snap, samples=_samples(per_day=-GB, days=2))["time-to-full"]
    assert shrinking.title.startswith("usage is not growing")


def test_logs_without_max_size_are_found_with_the_daemon_fix() -> None:
    snap = snapshot(containers=[logged("chatty", size=5 * MB), logged("tidy", max_size="10m")])
    got = findings(snap)["logs-unbounded"]
    assert got.severity is Severity.WARNING and got.evidence["names"] == ["chatty"]
    assert '"max-size"' in got.fix and "daemon.json" in got.fix
    calm = findings(snapshot(containers=[logged("tidy", max_size="10m")]))["logs-unbounded"]
    assert calm.severity is Severity.OK


def test_large_logs_are_found_and_the_policy_fix_named() -> None:
    snap = snapshot(containers=[logged("chatty", size=300 * MB), logged("quiet", size=MB)])
    got = findings(snap)["logs-large"]
    assert got.severity is Severity.WARNING and "chatty" in got.title
    assert "[logs] max_size" in got.fix
    limited = parse_policy('[logs]\nmax_size = "100MB"\n', "t")
    assert "truncates" in findings(snap, limited)["logs-large"].fix
    small = snapshot(containers=[logged("quiet", size=MB)])
    assert findings(small)["logs-large"].severity is Severity.OK


def test_build_cache_over_keep_storage() -> None:
    big = snapshot(build_cache=[cache("a", size=12 * GB)])
    assert findings(big)["build-cache"].severity is Severity.WARNING
    small = snapshot(build_cache=[cache("a", size=GB)])
    assert findings(small)["build-cache"].severity is Severity.OK


def test_dangling_volumes_and_stopped_containers() -> None:
    snap = snapshot(
        containers=[container("job", volumes=["anon-1"], size_rw=MB)],
        volumes=[volume("anon-1", anonymous=True), volume("anon-2", anonymous=True, bytes=MB)],
    )
    got = findings(snap)
    assert got["dangling-volumes"].evidence["volumes"] == 1
    assert got["exited-containers"].severity is Severity.WARNING
    clean = findings(snapshot(containers=[container("web", state="running")]))
    assert clean["dangling-volumes"].severity is Severity.OK
    assert clean["exited-containers"].severity is Severity.OK


def test_orphaned_layers() -> None:
    snap = snapshot(filesystem=fs())
    snap = replace(snap, orphans=(OrphanDir("abc", 5 * MB, ago(days=3)),))
    got = findings(snap)["orphaned-layers"]
    assert got.severity is Severity.WARNING and "--orphans" in got.fix
    assert findings(snapshot())["orphaned-layers"].severity is Severity.OK
    remote = replace(snapshot(), engine=replace(ENGINE, local=False))
    assert "not visible" in findings(remote)["orphaned-layers"].title


def test_database_files_in_an_anonymous_volume_of_a_stopped_container() -> None:
    snap = snapshot(
        containers=[container("old-postgres", volumes=["anon-pg"])],
        volumes=[volume("anon-pg", anonymous=True, markers=[PG_MARKER], bytes=30 * MB)],
    )
    got = findings(snap)["data-at-risk"]
    assert got.severity is Severity.CRITICAL and "old-postgres" in got.title
    assert "docker volume create old-postgres-data" in got.fix
    running = snapshot(
        containers=[container("pg", state="running", volumes=["anon-pg"])],
        volumes=[volume("anon-pg", anonymous=True, markers=[PG_MARKER])],
    )
    assert findings(running)["data-at-risk"].severity is Severity.OK


def test_data_root_on_the_root_filesystem() -> None:
    shared = replace(snapshot(), on_root_fs=True)
    assert findings(shared)["data-root-on-root-fs"].severity is Severity.WARNING
    own = replace(snapshot(), on_root_fs=False)
    assert findings(own)["data-root-on-root-fs"].severity is Severity.OK


def test_on_podman_the_fixes_name_podman_and_its_configuration_files() -> None:
    podman = replace(ENGINE, kind="podman", storage_driver="overlay")
    snap = replace(
        snapshot(
            containers=[
                container("old-postgres", volumes=["anon-pg"]),
                logged("chatty", driver="k8s-file", size=200 * MB),
            ],
            volumes=[volume("anon-pg", anonymous=True, markers=[PG_MARKER])],
        ),
        engine=podman,
        on_root_fs=True,
    )
    got = findings(snap)
    at_risk = got["data-at-risk"]
    assert "podman rm -v" in at_risk.title and "podman volume create" in at_risk.fix
    assert "docker" not in at_risk.fix
    root_fs = got["data-root-on-root-fs"]
    assert "Podman" in root_fs.title and "/etc/containers/storage.conf" in root_fs.fix
    assert "daemon.json" not in root_fs.fix
    assert "containers.conf" in got["logs-unbounded"].fix
    assert "daemon.json" not in got["logs-unbounded"].fix
    large = got["logs-large"]
    assert large.severity is Severity.WARNING and "log_size_max" in large.fix
