"""bilge's JSON documents (`--json`, saved plans), schema version 1.

Every document is an object with `"schema": 1` and a `"kind"`: "status",
"plan", "outcome" or "history". Timestamps are ISO 8601 in UTC; sizes are
integers of bytes. Keys keep a fixed order so that output is stable.

A saved plan (`plan_json`) is read back by bilge.planfile, which trusts
nothing: a plan file drives deletions.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import asdict
from datetime import UTC, datetime

from bilge.model import (
    Action,
    AuditEntry,
    Filesystem,
    Kept,
    Kind,
    Outcome,
    Plan,
    Result,
    Snapshot,
    UsageSample,
)
from bilge.planner.doctor import Finding
from bilge.planner.summary import largest, usage_by_kind

SCHEMA = 1

Document = dict[str, object]


def dumps(doc: Mapping[str, object]) -> str:
    """The document as indented JSON; keys stay in the order they were built."""
    return json.dumps(doc, indent=2)


def status_json(snapshot: Snapshot, plan: Plan | None) -> Document:
    """`bilge status --json`: engine, filesystem, usage by kind, what is reclaimable.

    `reclaimable_bytes` is null when no plan was made (the usage rows then
    show 0 reclaimable).
    """
    return {
        "schema": SCHEMA,
        "kind": "status",
        "taken_at": _time(snapshot.taken_at),
        "engine": asdict(snapshot.engine),
        "filesystem": _filesystem_doc(snapshot.filesystem),
        "usage": [asdict(row) for row in usage_by_kind(snapshot, plan)],
        "reclaimable_bytes": plan.total_bytes if plan is not None else None,
        "counts": _counts(snapshot),
        "largest": [o._asdict() for o in largest(snapshot)],
    }


def doctor_json(snapshot: Snapshot, findings: Sequence[Finding]) -> Document:
    """`bilge doctor --json`: findings, most severe first."""
    return {
        "schema": SCHEMA,
        "kind": "doctor",
        "host": snapshot.engine.host,
        "engine": asdict(snapshot.engine),
        "taken_at": _time(snapshot.taken_at),
        "findings": [
            {
                "id": f.id,
                "severity": str(f.severity),
                "title": f.title,
                "evidence": dict(f.evidence),
                "fix": f.fix,
            }
            for f in findings
        ],
    }


def plan_json(plan: Plan, engine: str = "") -> Document:
    """`bilge plan --json` and `--out`: read back by `bilge.planfile.read_plan`.
    `engine` is the engine's kind ("docker", "podman") when known."""
    return {
        "schema": SCHEMA,
        "kind": "plan",
        "created_at": _time(plan.created_at),
        "host": plan.host,
        **({"engine": engine} if engine else {}),
        "total_bytes": plan.total_bytes,
        "actions": [_action_doc(a) for a in plan.actions],
        "kept": [_kept_doc(k) for k in plan.kept],
    }


def outcome_json(outcome: Outcome, engine: str = "") -> Document:
    """`bilge apply --json`: each action with its outcome, predicted and measured bytes;
    `engine` as for `plan_json`."""
    return {
        "schema": SCHEMA,
        "kind": "outcome",
        "host": outcome.plan.host,
        **({"engine": engine} if engine else {}),
        "plan_created_at": _time(outcome.plan.created_at),
        "started_at": _time(outcome.started_at),
        "finished_at": _time(outcome.finished_at),
        "predicted_bytes": outcome.plan.total_bytes,
        "removed_bytes_predicted": outcome.removed_bytes_predicted,
        "freed_bytes_measured": outcome.freed_bytes_measured,
        "counts": {r.value: outcome.count(r) for r in Result},
        "actions": [
            _action_doc(r.action) | {"outcome": r.result.value, "detail": r.detail}
            for r in outcome.results
        ],
    }


def history_json(entries: Sequence[AuditEntry], samples: Sequence[UsageSample]) -> Document:
    """`bilge history --json`: audit log entries and usage samples, in the order given."""
    return {
        "schema": SCHEMA,
        "kind": "history",
        "entries": [_entry_doc(e) for e in entries],
        "samples": [_sample_doc(s) for s in samples],
    }


def plan_from_json(doc: object) -> Plan:
    """The plan a parsed `plan_json` document describes: `bilge.planfile.plan_from_document`.

    Kept for callers not yet moved to bilge.planfile, which reads saved plans
    (imported here, not at the top, since planfile imports this module's SCHEMA).
    """
    from bilge.planfile import plan_from_document

    return plan_from_document(doc)


# -- writing -----------------------------------------------------------------


def _time(at: datetime) -> str:
    """ISO 8601 in UTC; a naive datetime is taken to be UTC already."""
    utc = at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)
    return utc.isoformat().replace("+00:00", "Z")


def _action_doc(a: Action) -> Document:
    return {
        "kind": a.kind.value,
        "id": a.id,
        "name": a.name,
        "reason": a.reason,
        "bytes": a.bytes,
        "precondition": a.precondition,
        "fingerprint": a.fingerprint,
        "tags": list(a.tags),
        "volumes": list(a.volumes),
    }


def _kept_doc(k: Kept) -> Document:
    return {"kind": k.kind.value, "id": k.id, "name": k.name, "reason": k.reason, "bytes": k.bytes}


def _filesystem_doc(fs: Filesystem | None) -> Document | None:
    return None if fs is None else {"path": fs.path} | _usage_numbers(fs)


def _usage_numbers(fs: Filesystem) -> Document:
    return {
        "total_bytes": fs.total_bytes,
        "free_bytes": fs.free_bytes,
        "used_bytes": fs.used_bytes,
        "bytes_used_ratio": round(fs.bytes_ratio, 4),
        "total_inodes": fs.total_inodes,
        "free_inodes": fs.free_inodes,
        "used_inodes": fs.used_inodes,
        "inodes_used_ratio": round(fs.inodes_ratio, 4),
    }


def _counts(snapshot: Snapshot) -> Document:
    return {
        Kind.CONTAINER.value: len(snapshot.containers),
        Kind.IMAGE.value: len(snapshot.images),
        Kind.VOLUME.value: len(snapshot.volumes),
        Kind.NETWORK.value: len(snapshot.networks),
        Kind.BUILD_CACHE.value: len(snapshot.build_cache),
    }


def _entry_doc(e: AuditEntry) -> Document:
    return {
        "id": e.id,
        "host": e.host,
        "at": _time(e.at),
        "kind": e.kind.value,
        "object_id": e.object_id,
        "name": e.name,
        "reason": e.reason,
        "bytes": e.bytes,
        "outcome": e.outcome.value if e.outcome is not None else None,
        "detail": e.detail,
    }


def _sample_doc(s: UsageSample) -> Document:
    fs = Filesystem("", s.total_bytes, s.free_bytes, s.total_inodes, s.free_inodes)
    return {"host": s.host, "at": _time(s.at)} | _usage_numbers(fs)
