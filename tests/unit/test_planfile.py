"""Saved plans read back (bilge.planfile): what bilge wrote reads back exactly, and
anything else is refused with one line naming the file and the field."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bilge import planfile
from bilge.errors import PlanFileError
from bilge.model import Action, Kept, Kind, Plan
from bilge.planfile import (
    ENGINE_KINDS,
    plan_from_document,
    read_plan,
    read_registry_plan,
    registry_plan_from_document,
)
from bilge.registry.document import plan_json as registry_plan_json
from bilge.registry.model import Deletion, KeptTag, RegistryPlan
from bilge.report.json import dumps, plan_json

T0 = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)
PLAN = Plan(
    created_at=T0,
    host="unix:///d.sock",
    actions=(
        Action(Kind.CONTAINER, "c1", "old-job", "exited 3d ago", 1200, "still exited", "fp1"),
        Action(Kind.VOLUME, "v1", "3f9a", "anonymous, unreferenced", 5000, "unmounted", "fp2"),
        Action(
            Kind.IMAGE, "sha256:i1", "app:1", "unused 9d", 700, "no container", "fp3", ("app:1",)
        ),
    ),
    kept=(Kept(Kind.VOLUME, "pgdata", "pgdata", "holds data: postgres: PG_VERSION", 9000),),
)

URL = "https://r.test"
D1, D2, D3 = ("sha256:" + c * 64 for c in "123")
REGISTRY_PLAN = RegistryPlan(
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


def plan_doc() -> dict[str, Any]:
    return json.loads(dumps(plan_json(PLAN)))  # type: ignore[no-any-return]


def registry_doc() -> dict[str, Any]:
    return json.loads(dumps(registry_plan_json(REGISTRY_PLAN)))  # type: ignore[no-any-return]


# -- round trips -------------------------------------------------------------------------


def test_plan_round_trips_through_text() -> None:
    assert plan_from_document(plan_doc()) == PLAN


def test_other_time_zones_are_written_as_utc_and_read_back() -> None:
    cet = timezone(timedelta(hours=1))
    plan = Plan(created_at=datetime(2026, 11, 1, 13, 0, tzinfo=cet), host="h", actions=())
    assert plan_from_document(plan_json(plan)) == plan


def test_registry_plan_round_trips_through_text() -> None:
    assert registry_plan_from_document(registry_doc()) == REGISTRY_PLAN


texts = st.text(max_size=20)
sizes = st.integers(min_value=0, max_value=2**62)
times = st.datetimes(
    min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(UTC)
)
actions = st.builds(
    Action,
    kind=st.sampled_from(ENGINE_KINDS),
    id=st.text(min_size=1, max_size=20),
    name=texts,
    reason=texts,
    bytes=sizes,
    precondition=texts,
    fingerprint=texts,
    tags=st.lists(texts, max_size=3).map(tuple),
)
kepts = st.builds(
    Kept,
    kind=st.sampled_from(ENGINE_KINDS),
    id=st.text(min_size=1, max_size=20),
    name=texts,
    reason=texts,
    bytes=sizes,
)
plans = st.builds(
    Plan,
    created_at=times,
    host=texts,
    actions=st.lists(actions, max_size=5).map(tuple),
    kept=st.lists(kepts, max_size=5).map(tuple),
)


@given(plans)
def test_any_plan_round_trips(plan: Plan) -> None:
    assert plan_from_document(json.loads(dumps(plan_json(plan)))) == plan


# -- malformed engine plans --------------------------------------------------------------


Where = tuple[str | int, ...]
Edit = Callable[[dict[str, Any]], object]


def put(where: Where, value: object) -> Edit:
    """An edit that sets the value at `where` in a plan document."""

    def edit(doc: dict[str, Any]) -> object:
        parent: Any = doc
        for step in where[:-1]:
            parent = parent[step]
        parent[where[-1]] = value
        return doc

    return edit


def drop(where: Where) -> Edit:
    """An edit that removes the key at `where` from a plan document."""

    def edit(doc: dict[str, Any]) -> object:
        parent: Any = doc
        for step in where[:-1]:
            parent = parent[step]
        del parent[where[-1]]
        return doc

    return edit


MALFORMED: list[tuple[Edit, str]] = [
    (lambda doc: [doc], "plan file: expected a JSON object, got a list"),
    (put(("schema",), 2), "plan file: schema: version 2 is not supported (this bilge reads 1)"),
    (put(("schema",), True), "plan file: schema: version a boolean is not supported"),
    (drop(("schema",)), "plan file: no schema version: not a bilge plan"),
    (put(("kind",), "status"), 'plan file: kind: expected "plan", got "status"'),
    (put(("kind",), "registry-plan"), 'plan file: kind: expected "plan", got "registry-plan"'),
    (drop(("actions", 1, "fingerprint")), "plan file: actions[1].fingerprint: missing"),
    (put(("actions", 0, "force"), True), "plan file: actions[0].force: unknown key"),
    (put(("surprise",), 1), "plan file: surprise: unknown key"),
    (put(("actions", 2, "kind"), "pod"), "plan file: actions[2].kind: unknown kind 'pod'"),
    # The registry's kinds are audit-log kinds: no engine plan holds one.
    (
        put(("actions", 2, "kind"), "registry-manifest"),
        "plan file: actions[2].kind: unknown kind 'registry-manifest' (expected one of "
        "container, volume, image, network, build-cache, log, orphaned-layer)",
    ),
    (put(("kept", 0, "kind"), "registry-gc"), "plan file: kept[0].kind: unknown kind"),
    (put(("actions", 2, "kind"), 3), "plan file: actions[2].kind: expected a string, got 3"),
    (
        put(("actions", 2, "bytes"), -1),
        "plan file: actions[2].bytes: expected a non-negative integer, got -1",
    ),
    (
        put(("actions", 0, "bytes"), True),
        "plan file: actions[0].bytes: expected a non-negative integer, got a boolean",
    ),
    (
        put(("actions", 0, "bytes"), "5"),
        'plan file: actions[0].bytes: expected a non-negative integer, got "5"',
    ),
    (
        put(("kept", 0, "bytes"), 1.5),
        "plan file: kept[0].bytes: expected a non-negative integer, got 1.5",
    ),
    (
        put(("created_at",), "yesterday"),
        "plan file: created_at: expected an ISO 8601 timestamp, got 'yesterday'",
    ),
    (
        put(("created_at",), "2026-11-01T12:00:00"),
        "plan file: created_at: timestamp '2026-11-01T12:00:00' has no time zone",
    ),
    (put(("created_at",), 5), "plan file: created_at: expected a string, got 5"),
    (put(("actions",), {"0": {}}), "plan file: actions: expected a list, got an object"),
    (put(("actions", 1), "c1"), 'plan file: actions[1]: expected a JSON object, got "c1"'),
    (put(("actions", 0, "id"), ""), "plan file: actions[0].id: must not be empty"),
    (
        put(("actions", 2, "tags"), ["app:1", 7]),
        "plan file: actions[2].tags[1]: expected a string, got 7",
    ),
    (
        put(("total_bytes",), 1),
        "plan file: total_bytes: 1 is not the sum of the actions' bytes (6900)",
    ),
    (put(("host",), None), "plan file: host: expected a string, got null"),
]


@pytest.mark.parametrize(("edit", "message"), MALFORMED)
def test_malformed_plan_is_refused_naming_the_problem(edit: Edit, message: str) -> None:
    with pytest.raises(PlanFileError) as excinfo:
        plan_from_document(edit(plan_doc()))
    text = str(excinfo.value)
    assert text.startswith(message)
    assert "\n" not in text


def test_several_problems_are_one_line_counting_the_others() -> None:
    doc = plan_doc()
    doc["host"], doc["total_bytes"] = 5, -1
    with pytest.raises(PlanFileError) as excinfo:
        plan_from_document(doc)
    assert str(excinfo.value) == "plan file: host: expected a string, got 5 (and 1 more)"


def test_validation_does_not_modify_the_document() -> None:
    doc = plan_doc()
    before = copy.deepcopy(doc)
    plan_from_document(doc)
    assert doc == before


# -- malformed registry plans ------------------------------------------------------------


def registry_edited(**changes: object) -> dict[str, Any]:
    doc = registry_doc()
    doc.update(changes)
    return doc


def first_deletion(**changes: object) -> dict[str, Any]:
    doc = registry_doc()
    doc["deletions"][0].update(changes)
    return doc


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        (registry_edited(kind="plan"), 'plan file: kind: expected "registry-plan", got "plan"'),
        (registry_edited(schema=2), "plan file: schema: version 2 is not supported"),
        (registry_edited(total_bytes=5), "plan file: total_bytes: 5 is not the sum of the dele"),
        (registry_edited(surprise=1), "plan file: surprise: unknown key"),
        (
            registry_edited(created_at="2026-05-01T12:00:00"),
            "plan file: created_at: timestamp '2026-05-01T12:00:00' has no time zone",
        ),
        (first_deletion(digest="sha256:abc"), "plan file: deletions[0].digest: string should"),
        # A pattern is searched for: a digest with more around it is no digest.
        (first_deletion(digest=f"x{D1}"), "plan file: deletions[0].digest: string should"),
        (first_deletion(children=[D2 + "0"]), "plan file: deletions[0].children[0]: string"),
        (first_deletion(follows=5), "plan file: deletions[0].follows: expected a string, got 5"),
        (
            first_deletion(bytes=-1),
            "plan file: deletions[0].bytes: expected a non-negative integer, got -1",
        ),
        (first_deletion(tags="old"), 'plan file: deletions[0].tags: expected a list, got "old"'),
        (first_deletion(tags=[""]), "plan file: deletions[0].tags[0]: must not be empty"),
        (first_deletion(registry="https://other"), "plan file: deletions[0].registry: not among"),
    ],
)
def test_bad_registry_plans_are_one_line(doc: dict[str, Any], message: str) -> None:
    with pytest.raises(PlanFileError) as err:
        registry_plan_from_document(doc)
    assert str(err.value).startswith(message)
    assert "\n" not in str(err.value)


def test_the_precondition_written_is_not_read_back() -> None:
    # It is derived from the tags and digest: what a file says there changes nothing.
    doc = first_deletion(precondition="anything at all")
    assert registry_plan_from_document(doc) == REGISTRY_PLAN


# -- files -------------------------------------------------------------------------------


def test_files_of_both_kinds_read_back(tmp_path: Path) -> None:
    engine, registry = tmp_path / "plan.json", tmp_path / "registry-plan.json"
    engine.write_text(dumps(plan_json(PLAN)))
    registry.write_text(dumps(registry_plan_json(REGISTRY_PLAN)))
    assert read_plan(engine) == PLAN
    assert read_registry_plan(registry) == REGISTRY_PLAN


def test_a_problem_names_the_file_then_the_field(tmp_path: Path) -> None:
    path = tmp_path / "plan.json"
    path.write_text(json.dumps(put(("actions", 2, "bytes"), -1)(plan_doc())))
    with pytest.raises(PlanFileError) as err:
        read_plan(path)
    assert str(err.value) == (
        f"{path}: plan file: actions[2].bytes: expected a non-negative integer, got -1"
    )


def test_one_kind_of_plan_is_not_read_as_the_other(tmp_path: Path) -> None:
    path = tmp_path / "plan.json"
    path.write_text(dumps(plan_json(PLAN)))
    with pytest.raises(PlanFileError, match='kind: expected "registry-plan", got "plan"'):
        read_registry_plan(path)


@pytest.mark.parametrize("read", [read_plan, read_registry_plan])
@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "not JSON"),
        (b"{", "not JSON"),
        (b"\xff\xfe", "not JSON"),
        (b"[" * 100_000 + b"]" * 100_000, "not JSON (JSON nested too deeply)"),
        (b'{"schema": 1' + b"0" * 5000 + b"}", "not JSON"),
    ],
)
def test_what_is_not_json_is_refused(
    tmp_path: Path, read: Callable[[Path], object], content: bytes, message: str
) -> None:
    path = tmp_path / "plan.json"
    path.write_bytes(content)
    with pytest.raises(PlanFileError) as err:
        read(path)
    assert str(err.value).startswith(f"plan file {path}: {message}")
    assert "\n" not in str(err.value)


@pytest.mark.parametrize("read", [read_plan, read_registry_plan])
def test_a_missing_file_is_refused(tmp_path: Path, read: Callable[[Path], object]) -> None:
    path = tmp_path / "nope.json"
    with pytest.raises(PlanFileError, match="No such file or directory"):
        read(path)


@pytest.mark.parametrize("read", [read_plan, read_registry_plan])
def test_a_file_over_the_cap_is_refused_unread(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, read: Callable[[Path], object]
) -> None:
    monkeypatch.setattr(planfile, "MAX_PLAN_FILE_BYTES", 2 << 20)
    path = tmp_path / "plan.json"
    path.write_bytes(b" " * ((2 << 20) + 1))
    with pytest.raises(PlanFileError) as err:
        read(path)
    assert str(err.value) == f"plan file {path}: larger than 2 MiB"


def test_the_cap_is_512_mib() -> None:
    assert planfile.MAX_PLAN_FILE_BYTES == 512 << 20


def test_a_plan_file_may_name_its_engine_and_is_read_back_the_same() -> None:
    from datetime import UTC, datetime

    from bilge.model import Plan
    from bilge.planfile import plan_from_document
    from bilge.report.json import plan_json

    plan = Plan(datetime(2026, 1, 2, tzinfo=UTC), "unix:///run/podman/podman.sock", ())
    doc = plan_json(plan, "podman")
    assert doc["engine"] == "podman"
    assert plan_from_document(doc) == plan
    assert "engine" not in plan_json(plan)
