"""Saved plans read back: `apply --plan` and `registry apply --plan`.

A plan file drives deletions, so reading it trusts nothing. Both kinds of plan
("plan" from `bilge plan --out`, "registry-plan" from `bilge registry plan
--out`; their writers are bilge.report.json.plan_json and
bilge.registry.document.plan_json) are read the same way:

1. the file, refused unread above MAX_PLAN_FILE_BYTES, parsed by
   bilge.safejson (JSON nested thousands deep is bad JSON, not a crash);
2. schema version and kind, first: a wrong document should say so rather
   than list the keys it lacks;
3. a strict pydantic model of the document: every key present and no other,
   no coercion (true is not a size, "5" is not a number), sizes non-negative,
   timestamps ISO 8601 with a time zone;
4. what a model cannot say: total_bytes is the sum of what is removed.

Every problem is one PlanFileError line naming the file and the field:

    plan.json: plan file: actions[2].bytes: expected a non-negative integer, got -1
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any, Literal, NoReturn, TypeVar

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError
from pydantic_core import ErrorDetails

from bilge.errors import PlanFileError
from bilge.model import Action, Kept, Kind, Plan
from bilge.registry.model import DIGEST_RE, Deletion, KeptTag, RegistryPlan
from bilge.report.json import SCHEMA
from bilge.safejson import loads_json

#: A plan of a million actions takes about 400 MB: far beyond any host's; a
#: bigger file is not one bilge wrote.
MAX_PLAN_FILE_BYTES = 512 << 20

#: The registry's kinds live in the audit log only: a plan naming one is not
#: an engine plan, whoever wrote it.
_REGISTRY_KINDS = frozenset({Kind.REGISTRY_MANIFEST, Kind.REGISTRY_GC})
ENGINE_KINDS = tuple(k for k in Kind if k not in _REGISTRY_KINDS)


def read_plan(path: Path) -> Plan:
    """The engine plan saved at `path`, validated; any problem is one PlanFileError line."""
    doc = _read_document(path)
    try:
        return plan_from_document(doc)
    except PlanFileError as exc:
        raise PlanFileError(f"{path}: {exc}") from exc


def read_registry_plan(path: Path) -> RegistryPlan:
    """The registry plan saved at `path`, validated like `read_plan`."""
    doc = _read_document(path)
    try:
        return registry_plan_from_document(doc)
    except PlanFileError as exc:
        raise PlanFileError(f"{path}: {exc}") from exc


def plan_from_document(doc: object) -> Plan:
    """The plan a parsed "plan" document describes; PlanFileError names what is wrong."""
    parsed = _validate(_PlanDoc, doc, "plan")
    plan = Plan(
        created_at=parsed.created_at,
        host=parsed.host,
        actions=tuple(_action(a) for a in parsed.actions),
        kept=tuple(Kept(k.kind, k.id, k.name, k.reason, k.bytes) for k in parsed.kept),
    )
    if parsed.total_bytes != plan.total_bytes:
        _fail(
            "total_bytes",
            f"{parsed.total_bytes} is not the sum of the actions' bytes ({plan.total_bytes})",
        )
    return plan


def registry_plan_from_document(doc: object) -> RegistryPlan:
    """The plan a parsed "registry-plan" document describes; PlanFileError otherwise."""
    parsed = _validate(_RegistryPlanDoc, doc, "registry-plan")
    plan = RegistryPlan(
        created_at=parsed.created_at,
        registries=tuple(parsed.registries),
        deletions=tuple(_deletion(d) for d in parsed.deletions),
        kept=tuple(
            KeptTag(k.registry, k.repository, k.tag, k.digest, k.reason) for k in parsed.kept
        ),
        emptied=tuple((e.registry, e.repository) for e in parsed.emptied),
    )
    if parsed.total_bytes != plan.total_bytes:
        _fail(
            "total_bytes",
            f"{parsed.total_bytes} is not the sum of the deletions' bytes ({plan.total_bytes})",
        )
    for i, d in enumerate(plan.deletions):
        if d.registry not in plan.registries:
            _fail(f"deletions[{i}].registry", "not among registries")
    return plan


# -- the file ----------------------------------------------------------------------------


def _read_document(path: Path) -> object:
    try:
        with path.open("rb") as f:
            data = f.read(MAX_PLAN_FILE_BYTES + 1)
    except OSError as exc:
        raise PlanFileError(f"plan file {path}: {exc.strerror or exc}") from exc
    if len(data) > MAX_PLAN_FILE_BYTES:
        raise PlanFileError(f"plan file {path}: larger than {MAX_PLAN_FILE_BYTES >> 20} MiB")
    try:
        return loads_json(data)
    except ValueError as exc:
        raise PlanFileError(f"plan file {path}: not JSON ({exc})") from exc


# -- the documents -----------------------------------------------------------------------


def _timestamp(value: Any) -> datetime:
    # fromisoformat, not pydantic's parser: it reads what bilge writes, and a
    # time without a zone is refused rather than guessed.
    if not isinstance(value, str):
        raise ValueError(f"expected a string, got {_describe(value)}")
    try:
        at = datetime.fromisoformat(value)
    except ValueError:
        raise ValueError(f"expected an ISO 8601 timestamp, got {value!r}") from None
    if at.tzinfo is None:
        raise ValueError(f"timestamp {value!r} has no time zone (write e.g. 'Z')")
    return at.astimezone(UTC)


def _engine_kind(value: Any) -> Kind:
    if not isinstance(value, str):
        raise ValueError(f"expected a string, got {_describe(value)}")
    if value not in ENGINE_KINDS:
        known = ", ".join(ENGINE_KINDS)
        raise ValueError(f"unknown kind {value!r} (expected one of {known})")
    return Kind(value)


Timestamp = Annotated[datetime, BeforeValidator(_timestamp)]
EngineKind = Annotated[Kind, BeforeValidator(_engine_kind)]
Size = Annotated[int, Field(ge=0)]
Name = Annotated[str, Field(min_length=1)]
# Anchored: pydantic searches for a pattern, and "x<digest>y" is no digest.
Digest = Annotated[str, Field(pattern=f"^{DIGEST_RE.pattern}$")]


class _Strict(BaseModel):
    """No coercion and no unknown key: a plan file is bilge's own output or a forgery."""

    model_config = ConfigDict(frozen=True, extra="forbid", strict=True)


class _ActionDoc(_Strict):
    kind: EngineKind
    id: Name
    name: str
    reason: str
    bytes: Size
    precondition: str
    fingerprint: str
    tags: list[str]
    volumes: list[str]


class _KeptDoc(_Strict):
    kind: EngineKind
    id: Name
    name: str
    reason: str
    bytes: Size


class _PlanDoc(_Strict):
    # schema and kind are checked before the model (see _check_header).
    schema_: Literal[1] = Field(alias="schema")
    kind: Literal["plan"]
    created_at: Timestamp
    host: str
    engine: Literal["docker", "podman"] | None = None  # said, not trusted: the host decides
    total_bytes: Size
    actions: list[_ActionDoc]
    kept: list[_KeptDoc]


class _DeletionDoc(_Strict):
    registry: Name
    repository: Name
    digest: Digest
    media_type: str
    tags: list[Name]
    reason: str
    bytes: Size
    children: list[Digest]
    follows: Digest | None
    untag_only: bool = False
    disk_bytes: Size | None = None
    #: Written for people to read; derived again from the tags and digest.
    precondition: str


class _KeptTagDoc(_Strict):
    registry: Name
    repository: Name
    tag: Name
    digest: Digest
    reason: str


class _EmptiedDoc(_Strict):
    registry: Name
    repository: Name


class _RegistryPlanDoc(_Strict):
    schema_: Literal[1] = Field(alias="schema")
    kind: Literal["registry-plan"]
    created_at: Timestamp
    registries: list[Name]
    total_bytes: Size
    total_disk_bytes: Size | None = None
    deletions: list[_DeletionDoc]
    kept: list[_KeptTagDoc]
    emptied: list[_EmptiedDoc] = []


def _action(a: _ActionDoc) -> Action:
    return Action(
        kind=a.kind,
        id=a.id,
        name=a.name,
        reason=a.reason,
        bytes=a.bytes,
        precondition=a.precondition,
        fingerprint=a.fingerprint,
        tags=tuple(a.tags),
        volumes=tuple(a.volumes),
    )


def _kept_tag(k: _KeptTagDoc) -> KeptTag:
    return KeptTag(k.registry, k.repository, k.tag, k.digest, k.reason)


def _deletion(d: _DeletionDoc) -> Deletion:
    return Deletion(
        registry=d.registry,
        repository=d.repository,
        digest=d.digest,
        media_type=d.media_type,
        tags=tuple(d.tags),
        reason=d.reason,
        bytes=d.bytes,
        children=tuple(d.children),
        follows=d.follows,
        untag_only=d.untag_only,
        disk_bytes=d.disk_bytes,
    )


# -- validating, one line per problem ----------------------------------------------------


M = TypeVar("M", bound=_Strict)


def _validate(model: type[M], doc: object, kind: str) -> M:
    _check_header(doc, kind)
    try:
        return model.model_validate(doc)
    except ValidationError as exc:
        # Not chained: the line says it all, and pydantic's text is many lines.
        raise PlanFileError(f"plan file: {_one_line(exc)}") from None


def _check_header(doc: object, kind: str) -> None:
    """Schema and kind first: a wrong document should say so, not list its missing keys."""
    if not isinstance(doc, dict):
        _fail("", f"expected a JSON object, got {_describe(doc)}")
    if "schema" not in doc:
        _fail("", "no schema version: not a bilge plan")
    schema = doc["schema"]
    if type(schema) is not int or schema != SCHEMA:
        _fail("schema", f"version {_describe(schema)} is not supported (this bilge reads {SCHEMA})")
    if doc.get("kind") != kind:
        _fail("kind", f"expected {json.dumps(kind)}, got {_describe(doc.get('kind'))}")


def _fail(field: str, problem: str) -> NoReturn:
    raise PlanFileError(f"plan file: {field}: {problem}" if field else f"plan file: {problem}")


def _one_line(exc: ValidationError) -> str:
    errors = exc.errors(include_url=False)
    first = errors[0]
    field = _field(first["loc"])
    problem = "unknown key" if first["type"] == "extra_forbidden" else _problem(first)
    line = f"{field}: {problem}" if field else problem
    return line + (f" (and {len(errors) - 1} more)" if len(errors) > 1 else "")


def _field(loc: tuple[int | str, ...]) -> str:
    """actions[2].bytes, as the document is written (the alias, not schema_)."""
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else f".{part}" if out else part
    return out


_EXPECTED = {
    "model_type": "expected a JSON object",
    "list_type": "expected a list",
    "string_type": "expected a string",
    # The only integers in a plan are sizes; a negative one is the same mistake.
    "int_type": "expected a non-negative integer",
    "greater_than_equal": "expected a non-negative integer",
}


def _problem(error: ErrorDetails) -> str:
    kind = error["type"]
    if kind == "missing":
        return "missing"
    if kind == "value_error":
        return str(error.get("ctx", {}).get("error", error["msg"]))
    if kind in _EXPECTED:
        return f"{_EXPECTED[kind]}, got {_describe(error['input'])}"
    if kind == "string_too_short":
        return "must not be empty"
    msg = error["msg"]
    return msg[:1].lower() + msg[1:]


def _describe(value: object) -> str:
    """A value as an error message shows it: numbers and short strings as such."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    if isinstance(value, str) and len(value) <= 40:
        return json.dumps(value)
    names = {dict: "an object", list: "a list", str: "a string", bool: "a boolean"}
    return names.get(type(value), "null" if value is None else type(value).__name__)
