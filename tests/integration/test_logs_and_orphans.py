"""Beyond the engine's objects, on the real engine: truncating the log of a running
container, and finding and removing orphaned layer directories without ever touching
a live layer (image, container, or BuildKit's cache)."""

from __future__ import annotations

import os
import secrets
import time
from pathlib import Path

from tests.integration.bilge_cli import ZERO_GRACE, make_bilge
from tests.integration.helpers import Sandbox, build_image, run_container

LOGS = ZERO_GRACE + '[logs]\nmax_size = "1MB"\n'
# 2 MB of log at once, then a line every 0.1 s for as long as it runs.
LOGGER = (
    "dd if=/dev/zero bs=1024 count=2048 2>/dev/null | tr '\\0' x | fold -w 100; "
    "i=0; while true; do i=$((i+1)); echo tick-$i; sleep 0.1; done"
)
DAYS_AGO_3 = time.time() - 3 * 86400


def _log_path(sb: Sandbox, cid: str) -> Path:
    return Path(sb.docker("inspect", "-f", "{{.LogPath}}", cid).stdout.strip())


def _wait_for_size(path: Path, size: int) -> None:
    for _ in range(100):
        if path.stat().st_size >= size:
            return
        time.sleep(0.1)
    raise AssertionError(f"{path} never reached {size} bytes")


def test_a_running_containers_log_is_truncated_and_it_keeps_logging(
    engine: Sandbox, tmp_path: Path
) -> None:
    cid = run_container(engine, name="chatty", state="running", command=LOGGER)
    log = _log_path(engine, cid)
    _wait_for_size(log, 2_000_000)
    bilge = make_bilge(engine, tmp_path, LOGS)

    doctor = {f["id"]: f for f in bilge("doctor", "--json").json()["findings"]}
    assert "chatty" in doctor["logs-unbounded"]["evidence"]["names"]
    assert doctor["logs-large"]["severity"] == "warning"

    run = bilge("apply", "--yes", "--json")
    assert run.code == 0, run.err
    results = run.json()["actions"]
    assert [(r["kind"], r["outcome"]) for r in results if r["id"] == cid] == [("log", "removed")]
    assert log.stat().st_size < 1_000_000
    assert engine.docker("inspect", "-f", "{{.State.Running}}", cid).stdout.strip() == "true"
    time.sleep(1)
    logs = engine.docker("logs", "--tail", "5", cid)
    assert "tick-" in logs.stdout and log.stat().st_size > 0


def test_logs_under_the_limit_or_without_a_policy_are_left_alone(
    engine: Sandbox, tmp_path: Path
) -> None:
    cid = run_container(engine, state="running", command=LOGGER)
    log = _log_path(engine, cid)
    _wait_for_size(log, 2_000_000)
    run = make_bilge(engine, tmp_path).__call__("apply", "--yes", "--json")
    assert run.code == 0 and log.stat().st_size >= 2_000_000


def _plant_orphan(sb: Sandbox, *, old: bool) -> str:
    """A layer directory nothing references, shaped like overlay2's, with its link."""
    name = secrets.token_hex(32)
    layer = sb.data_root / "overlay2" / name
    (layer / "diff" / "etc").mkdir(parents=True)
    (layer / "diff" / "etc" / "blob").write_bytes(os.urandom(300_000))
    (layer / "work").mkdir()
    short = secrets.token_hex(13).upper()[:26]
    (layer / "link").write_text(short)
    (sb.data_root / "overlay2" / "l" / short).symlink_to(f"../{name}/diff")
    if old:
        for path in (layer / "diff" / "etc" / "blob", layer / "diff" / "etc", layer / "diff",
                     layer / "work", layer / "link", layer):  # fmt: skip
            os.utime(path, (DAYS_AGO_3, DAYS_AGO_3))
    return name


def _layer_dirs(sb: Sandbox) -> set[str]:
    return {p.name for p in (sb.data_root / "overlay2").iterdir()}


def test_orphaned_layers_are_found_and_removed_only_with_orphans(
    engine: Sandbox, tmp_path: Path
) -> None:
    # Live layers of every kind: images (classic and BuildKit, whose cache lives in the
    # same folder), a running and an exited container with their init layers.
    build_image(engine, "live/classic:1", size=100_000)
    build_image(engine, "live/buildkit:1", size=100_000, buildkit=True)
    run_container(engine, name="up", state="running", write={"/layer": 50_000})
    run_container(engine, name="down", write={"/layer": 50_000})
    old, young = _plant_orphan(engine, old=True), _plant_orphan(engine, old=False)
    live = _layer_dirs(engine) - {old, young}
    # The default policy: every live object here is too young to go, so whatever
    # disappears from the driver's folder is the orphan removal's doing.
    bilge = make_bilge(engine, tmp_path, "")

    doctor = {f["id"]: f for f in bilge("doctor", "--json").json()["findings"]}
    assert set(doctor["orphaned-layers"]["evidence"]["names"]) == {old, young}

    planned = bilge("plan", "--json").json()
    assert not [a for a in planned["actions"] if a["kind"] == "orphaned-layer"]

    run = bilge("apply", "--yes", "--orphans", "--json")
    assert run.code == 0, run.err
    removed = [r["id"] for r in run.json()["actions"] if r["kind"] == "orphaned-layer"]
    assert removed == [old]
    assert old not in _layer_dirs(engine) and young in _layer_dirs(engine)
    assert live <= _layer_dirs(engine)
    links = {os.readlink(p) for p in (engine.data_root / "overlay2" / "l").iterdir()}
    assert f"../{old}/diff" not in links and f"../{young}/diff" in links
    # The engine still works with every layer it had.
    engine.docker("run", "--rm", "--network", "none", "live/buildkit:1", "true")
    engine.docker("start", "-a", "down")


def test_an_orphan_referenced_again_before_apply_is_skipped(
    engine: Sandbox, tmp_path: Path
) -> None:
    name = _plant_orphan(engine, old=True)
    bilge = make_bilge(engine, tmp_path, "[orphans]\nremove = true\n")
    assert bilge("plan", "--out", str(tmp_path / "plan.json")).code == 0
    # Touch it, as a pull writing into it would: the saved plan is refused for it.
    (engine.data_root / "overlay2" / name / "diff" / "new").write_text("x")
    run = bilge("apply", "--yes", "--plan", str(tmp_path / "plan.json"), "--json")
    assert run.code == 0, run.err
    (outcome,) = [r for r in run.json()["actions"] if r["id"] == name]
    assert outcome["outcome"] == "skipped"
    assert (engine.data_root / "overlay2" / name).is_dir()
