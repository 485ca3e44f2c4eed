"""JSON documents of the registry commands (schema 1, like the rest of bilge).

Kinds: "registry-plan" (`registry plan --json` and `--out`), "registry-outcome"
(`registry apply --json`) and "registry-gc" (`registry gc --json`). A saved
plan drives deletions, so `plan_from_json` trusts nothing: every problem is
one line naming the field ("plan file: deletions[2].digest: ...").
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from bilge.errors import PlanFileError
from bilge.model import Result
from bilge.registry.gc import GcReport
from bilge.registry.model import (
    DIGEST_RE,
    Deletion,
    KeptTag,
    RegistryOutcome,
    RegistryPlan,
)
from bilge.report.json import SCHEMA, Document

PLAN_KIND = "registry-plan"


def plan_json(plan: RegistryPlan) -> Document:
    return {
        "schema": SCHEMA,
        "kind": PLAN_KIND,
        "created_at": _time(plan.created_at),
        "registries": list(plan.registries),
        "total_bytes": plan.total_bytes,
        "deletions": [_deletion_doc(d) for d in plan.deletions],
        "kept": [_kept_doc(k) for k in plan.kept],
    }


def outcome_json(outcome: RegistryOutcome) -> Document:
    return {
        "schema": SCHEMA,
        "kind": "registry-outcome",
        "plan_created_at": _time(outcome.plan.created_at),
        "started_at": _time(outcome.started_at),
        "finished_at": _time(outcome.finished_at),
        "predicted_bytes": outcome.plan.total_bytes,
        "removed_bytes_predicted": outcome.removed_bytes_predicted,
        "counts": {r.value: outcome.count(r) for r in Result},
        "deletions": [
            _deletion_doc(r.deletion) | {"outcome": r.result.value, "detail": r.detail}
            for r in outcome.results
        ],
    }


def gc_json(report: GcReport) -> Document:
    return {
        "schema": SCHEMA,
        "kind": "registry-gc",
        "registry": report.registry,
        "dry_run": report.dry_run,
        "registry_version": report.version,
        "delete_untagged": report.delete_untagged,
        "started_at": _time(report.started_at),
        "finished_at": _time(report.finished_at),
        "blobs": list(report.blobs),
        "manifests": report.manifests,
        "bytes_eligible": report.bytes_eligible,
        "freed_bytes_measured": report.freed_bytes_measured,
        "notes": list(report.notes),
    }


def _time(at: datetime) -> str:
    return at.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _deletion_doc(d: Deletion) -> Document:
    return {
        "registry": d.registry,
        "repository": d.repository,
        "digest": d.digest,
        "media_type": d.media_type,
        "tags": list(d.tags),
        "reason": d.reason,
        "bytes": d.bytes,
        "children": list(d.children),
        "follows": d.follows,
        "precondition": d.precondition,
    }


def _kept_doc(k: KeptTag) -> Document:
    return {
        "registry": k.registry,
        "repository": k.repository,
        "tag": k.tag,
        "digest": k.digest,
        "reason": k.reason,
    }


# -- reading a saved plan ---------------------------------------------------------------

Digest = Annotated[str, Field(pattern=DIGEST_RE.pattern)]
Size = Annotated[int, Field(ge=0)]
Name = Annotated[str, Field(min_length=1)]


class _Strict(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", strict=True)


class _DeletionDoc(_Strict):
    registry: Name
    repository: Name
    digest: Digest
    media_type: str
    tags: tuple[Name, ...]
    reason: str
    bytes: Size
    children: tuple[Digest, ...]
    follows: Digest | None
    precondition: str


class _KeptDoc(_Strict):
    registry: Name
    repository: Name
    tag: Name
    digest: Digest
    reason: str


class _PlanDoc(_Strict):
    schema_: Literal[1] = Field(alias="schema")
    kind: Literal["registry-plan"]
    created_at: datetime
    registries: tuple[Name, ...]
    total_bytes: Size
    deletions: tuple[_DeletionDoc, ...]
    kept: tuple[_KeptDoc, ...]


def plan_from_json(text: str) -> RegistryPlan:
    """The plan a saved "registry-plan" document describes; PlanFileError otherwise."""
    try:
        doc = _PlanDoc.model_validate_json(text)
    except ValidationError as exc:
        raise PlanFileError(f"plan file: {_one_line(exc)}") from exc
    if doc.created_at.tzinfo is None:
        raise PlanFileError("plan file: created_at: the timestamp has no time zone")
    plan = RegistryPlan(
        created_at=doc.created_at,
        registries=doc.registries,
        deletions=tuple(_deletion(d) for d in doc.deletions),
        kept=tuple(KeptTag(**k.model_dump()) for k in doc.kept),
    )
    if doc.total_bytes != plan.total_bytes:
        raise PlanFileError(
            f"plan file: total_bytes: {doc.total_bytes} is not the sum of the deletions' "
            f"bytes ({plan.total_bytes})"
        )
    for i, d in enumerate(plan.deletions):
        if d.registry not in plan.registries:
            raise PlanFileError(f"plan file: deletions[{i}].registry: not among registries")
    return plan


def _deletion(d: _DeletionDoc) -> Deletion:
    fields = d.model_dump(exclude={"precondition"})
    return Deletion(**fields)


def _one_line(exc: ValidationError) -> str:
    error = exc.errors(include_url=False)[0]
    key = ""
    for part in error["loc"]:
        key += f"[{part}]" if isinstance(part, int) else f".{part}" if key else str(part)
    msg = error["msg"]
    if error["type"] == "extra_forbidden":
        msg = "unknown key"
    elif error["type"] == "json_invalid":
        msg = f"not JSON ({error.get('ctx', {}).get('error', '')})"
    text = f"{key}: {msg[:1].lower()}{msg[1:]}" if key else msg[:1].lower() + msg[1:]
    more = len(exc.errors()) - 1
    return text + (f" (and {more} more)" if more else "")
