"""Registry JSON documents: a saved plan reads back exactly, and nothing else does."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from bilge.errors import PlanFileError
from bilge.registry.document import plan_from_json, plan_json
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


def text(doc: object) -> str:
    return dumps(doc)  # type: ignore[arg-type]


def test_plan_round_trips() -> None:
    assert plan_from_json(text(plan_json(PLAN))) == PLAN


def edited(**changes: object) -> str:
    doc = plan_json(PLAN)
    doc.update(changes)
    return text(doc)


def first_deletion(**changes: object) -> str:
    doc = json.loads(text(plan_json(PLAN)))
    doc["deletions"][0].update(changes)
    return text(doc)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{", "plan file: not JSON"),
        (edited(kind="plan"), "plan file: kind: input should be 'registry-plan'"),
        (edited(schema=2), "plan file: schema: input should be 1"),
        (edited(total_bytes=5), "plan file: total_bytes: 5 is not the sum of the deletions' bytes"),
        (edited(surprise=1), "plan file: surprise: unknown key"),
        (edited(created_at="2026-05-01T12:00:00"), "plan file: created_at: the timestamp has no"),
        (first_deletion(digest="sha256:abc"), "plan file: deletions[0].digest: string should"),
        (first_deletion(bytes=-1), "plan file: deletions[0].bytes: input should be greater"),
        (first_deletion(tags="old"), "plan file: deletions[0].tags: input should be a valid"),
        (first_deletion(registry="https://other"), "plan file: deletions[0].registry: not among"),
    ],
)
def test_bad_plan_files_are_one_line(content: str, message: str) -> None:
    with pytest.raises(PlanFileError) as err:
        plan_from_json(content)
    assert str(err.value).startswith(message)
    assert "\n" not in str(err.value)
