from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from bilge.model import (
    Action,
    ActionOutcome,
    AuditEntry,
    EngineInfo,
    Filesystem,
    Kept,
    Kind,
    Outcome,
    Plan,
    Result,
    Snapshot,
    UsageSample,
    Volume,
    VolumeContents,
)
from bilge.report.json import (
    dumps,
    history_json,
    outcome_json,
    plan_from_json,
    plan_json,
    status_json,
)

T0 = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)
ENGINE = EngineInfo("unix:///d.sock", "1.41", "20.10.24", "/var/lib/docker", "overlay2", True)

ACTIONS = (
    Action(Kind.CONTAINER, "c1", "old-job", "exited 3d ago", 1200, "still exited", "fp1"),
    Action(Kind.VOLUME, "v1", "3f9a", "anonymous, unreferenced", 5000, "unmounted", "fp2"),
    Action(Kind.IMAGE, "sha256:i1", "app:1", "unused 9d", 700, "no container", "fp3", ("app:1",)),
)
PLAN = Plan(
    created_at=T0,
    host="unix:///d.sock",
    actions=ACTIONS,
    kept=(Kept(Kind.VOLUME, "pgdata", "pgdata", "holds data: postgres: PG_VERSION", 9000),),
)


def plan_doc() -> dict[str, Any]:
    return json.loads(dumps(plan_json(PLAN)))  # type: ignore[no-any-return]


# -- plan round trip ---------------------------------------------------------


def test_plan_json_shape() -> None:
    doc = plan_doc()
    assert doc["schema"] == 1
    assert doc["kind"] == "plan"
    assert doc["created_at"] == "2026-11-01T12:00:00Z"
    assert doc["total_bytes"] == 6900
    assert doc["actions"][2] == {
        "kind": "image",
        "id": "sha256:i1",
        "name": "app:1",
        "reason": "unused 9d",
        "bytes": 700,
        "precondition": "no container",
        "fingerprint": "fp3",
        "tags": ["app:1"],
        "volumes": [],
    }


def test_plan_round_trips_through_text() -> None:
    assert plan_from_json(json.loads(dumps(plan_json(PLAN)))) == PLAN


def test_other_time_zones_are_written_as_utc() -> None:
    cet = timezone(timedelta(hours=1))
    plan = Plan(created_at=datetime(2026, 11, 1, 13, 0, tzinfo=cet), host="h", actions=())
    assert plan_json(plan)["created_at"] == "2026-11-01T12:00:00Z"
    assert plan_from_json(plan_json(plan)) == plan


# Reading plans back, every malformed document included: tests/unit/test_planfile.py.


# -- other documents ---------------------------------------------------------


def test_status_json() -> None:
    snap = Snapshot(
        taken_at=T0,
        engine=ENGINE,
        volumes=(Volume("3f9a", "local", True, T0, "/v", VolumeContents(True, 5000)),),
        filesystem=Filesystem("/var/lib/docker", 20_000, 5_000, 1000, 900),
    )
    doc = status_json(snap, PLAN)
    assert doc["schema"] == 1
    assert doc["kind"] == "status"
    assert doc["engine"] == {
        "host": "unix:///d.sock",
        "api_version": "1.41",
        "server_version": "20.10.24",
        "data_root": "/var/lib/docker",
        "storage_driver": "overlay2",
        "local": True,
        "kind": "docker",
    }
    assert doc["filesystem"] == {
        "path": "/var/lib/docker",
        "total_bytes": 20_000,
        "free_bytes": 5_000,
        "used_bytes": 15_000,
        "bytes_used_ratio": 0.75,
        "total_inodes": 1000,
        "free_inodes": 900,
        "used_inodes": 100,
        "inodes_used_ratio": 0.1,
    }
    assert doc["usage"][3] == {  # type: ignore[index]
        "kind": "volumes",
        "count": 1,
        "bytes": 5000,
        "reclaimable_bytes": 5000,
        "reclaimable_count": 1,
    }
    assert doc["reclaimable_bytes"] == 6900
    assert doc["counts"] == {
        "container": 0,
        "image": 0,
        "volume": 1,
        "network": 0,
        "build-cache": 0,
    }
    assert json.loads(dumps(doc)) == doc


def test_status_json_without_plan_or_filesystem() -> None:
    doc = status_json(Snapshot(taken_at=T0, engine=ENGINE), None)
    assert doc["filesystem"] is None
    assert doc["reclaimable_bytes"] is None


def test_outcome_json() -> None:
    outcome = Outcome(
        plan=PLAN,
        results=(
            ActionOutcome(ACTIONS[0], Result.REMOVED),
            ActionOutcome(ACTIONS[1], Result.SKIPPED, "in use by a new container"),
            ActionOutcome(ACTIONS[2], Result.FAILED, "engine: 500"),
        ),
        started_at=T0,
        finished_at=T0 + timedelta(seconds=2),
        freed_bytes_measured=None,
    )
    doc = outcome_json(outcome)
    assert doc["kind"] == "outcome"
    assert doc["started_at"] == "2026-11-01T12:00:00Z"
    assert doc["finished_at"] == "2026-11-01T12:00:02Z"
    assert doc["predicted_bytes"] == 6900
    assert doc["removed_bytes_predicted"] == 1200
    assert doc["freed_bytes_measured"] is None
    assert doc["counts"] == {"removed": 1, "skipped": 1, "failed": 1}
    row = doc["actions"][1]  # type: ignore[index]
    assert row["outcome"] == "skipped"
    assert row["detail"] == "in use by a new container"
    assert row["id"] == "v1"


def test_history_json() -> None:
    entry = AuditEntry(1, "h", T0, Kind.VOLUME, "v1", "3f9a", "anonymous", 5000, None, "")
    sample = UsageSample("h", T0, 100, 25, 10, 5)
    doc = history_json([entry], [sample])
    assert doc["kind"] == "history"
    assert doc["entries"] == [
        {
            "id": 1,
            "host": "h",
            "at": "2026-11-01T12:00:00Z",
            "kind": "volume",
            "object_id": "v1",
            "name": "3f9a",
            "reason": "anonymous",
            "bytes": 5000,
            "outcome": None,
            "detail": "",
        }
    ]
    assert doc["samples"][0]["used_bytes"] == 75  # type: ignore[index]
    assert doc["samples"][0]["bytes_used_ratio"] == 0.75  # type: ignore[index]
    assert doc["samples"][0]["at"] == "2026-11-01T12:00:00Z"  # type: ignore[index]


def test_dumps_is_stable() -> None:
    assert dumps(plan_json(PLAN)) == dumps(plan_json(PLAN))
    assert dumps({"b": 1, "a": 2}).index('"b"') < dumps({"b": 1, "a": 2}).index('"a"')
