"""Registry JSON documents: a saved plan reads back exactly (its malformed variants:
tests/unit/test_planfile.py)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from bilge.planfile import read_registry_plan
from bilge.registry.document import plan_json
from bilge.registry.model import Deletion, KeptTag, RegistryPlan
from bilge.report.json import dumps

URL = "https://r.test"
D1, D2, D3 = ("sha256:" + c * 64 for c in "123")

PLAN = RegistryPlan(
    created_at=datetime(2026, 5, 1, 12, tzinfo=UTC),
    registries=(URL,),
    deletions=(
        Deletion(
            URL,
            "app",
            D1,
            "application/vnd.oci.image.index.v1+json",
            ("old",),
            "created 40d ago",
            1234,
            children=(D2,),
        ),
        Deletion(
            URL,
            "app",
            D3,
            "application/vnd.oci.image.manifest.v1+json",
            ("sha256-1111.sig",),
            "refers to deleted",
            10,
            follows=D1,
        ),
    ),
    kept=(KeptTag(URL, "app", "latest", D2, "'latest' (keep_latest = true)"),),
)


def test_plan_json_shape() -> None:
    doc = plan_json(PLAN)
    assert list(doc) == [
        "schema", "kind", "created_at", "registries", "total_bytes", "total_disk_bytes",
        "deletions", "kept", "emptied",
    ]  # fmt: skip
    assert (doc["schema"], doc["kind"], doc["created_at"]) == (
        1,
        "registry-plan",
        "2026-05-01T12:00:00Z",
    )
    assert doc["total_bytes"] == 1244
    assert doc["deletions"][1] == {  # type: ignore[index]
        "registry": URL,
        "repository": "app",
        "digest": D3,
        "media_type": "application/vnd.oci.image.manifest.v1+json",
        "tags": ["sha256-1111.sig"],
        "reason": "refers to deleted",
        "bytes": 10,
        "children": [],
        "follows": D1,
        "untag_only": False,
        "disk_bytes": None,
        "precondition": f"tags sha256-1111.sig still point at {D3}, and no other tag does",
    }


def test_plan_round_trips(tmp_path: Path) -> None:
    path = tmp_path / "plan.json"
    path.write_text(dumps(plan_json(PLAN)))
    assert read_registry_plan(path) == PLAN
