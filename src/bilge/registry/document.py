"""JSON documents of the registry commands (schema 1, like the rest of bilge).

Kinds: "registry-plan" (`registry plan --json` and `--out`), "registry-outcome"
(`registry apply --json`) and "registry-gc" (`registry gc --json`). A saved
plan is read back by bilge.planfile, like the engine's.
"""

from __future__ import annotations

from datetime import UTC, datetime

from bilge.model import Result
from bilge.registry.gc import GcReport
from bilge.registry.model import (
    Deletion,
    KeptTag,
    RegistryOutcome,
    RegistryPlan,
)
from bilge.report.json import SCHEMA, Document

PLAN_KIND = "registry-plan"


def plan_json(plan: RegistryPlan) -> Document:
    """`registry plan --json` and `--out`: read back by `bilge.planfile.read_registry_plan`."""
    return {
        "schema": SCHEMA,
        "kind": PLAN_KIND,
        "created_at": _time(plan.created_at),
        "registries": list(plan.registries),
        "total_bytes": plan.total_bytes,
        "total_disk_bytes": plan.total_disk_bytes,
        "deletions": [_deletion_doc(d) for d in plan.deletions],
        "kept": [_kept_doc(k) for k in plan.kept],
        "emptied": [{"registry": url, "repository": name} for url, name in plan.emptied],
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
        "emptied": [{"registry": url, "repository": name} for url, name in outcome.plan.emptied],
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
        "untag_only": d.untag_only,
        "disk_bytes": d.disk_bytes,
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
