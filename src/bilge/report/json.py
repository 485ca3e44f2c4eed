"""bilge's JSON documents (`--json`, saved plans), schema version 1.

Every document is an object with `"schema": 1` and a `"kind"`: "status",
"plan", "outcome" or "history". Timestamps are ISO 8601 in UTC; sizes are
integers of bytes. Keys keep a fixed order so that output is stable.

A saved plan is read back by `plan_from_json`, which trusts nothing: a plan
file drives deletions, so anything unexpected is refused with one line that
names the offending field, e.g. "plan file: actions[3].bytes: expected a
non-negative integer, got -1".
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import asdict
from datetime import UTC, datetime
from typing import NoReturn

from bilge.errors import PlanFileError
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

_PLAN_KEYS = ("schema", "kind", "created_at", "host", "total_bytes", "actions", "kept")
_ACTION_KEYS = (
    "kind",
    "id",
    "name",
    "reason",
    "bytes",
    "precondition",
    "fingerprint",
    "tags",
    "volumes",
)
_KEPT_KEYS = ("kind", "id", "name", "reason", "bytes")


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


def plan_json(plan: Plan) -> Document:
    """`bilge plan --json` and `--out`: read back with `plan_from_json`."""
    return {
        "schema": SCHEMA,
        "kind": "plan",
        "created_at": _time(plan.created_at),
        "host": plan.host,
        "total_bytes": plan.total_bytes,
        "actions": [_action_doc(a) for a in plan.actions],
        "kept": [_kept_doc(k) for k in plan.kept],
    }


def outcome_json(outcome: Outcome) -> Document:
    """`bilge apply --json`: each action with its outcome, predicted and measured bytes."""
    return {
        "schema": SCHEMA,
        "kind": "outcome",
        "host": outcome.plan.host,
        "plan_created_at": _time(outcome.plan.created_at),
        "started_at": _time(outcome.started_at),
        "finished_at": _time(outcome.finished_at),
        "predicted_bytes": outcome.plan.total_bytes,
        "removed_bytes_predicted": outcome.predicted_bytes_removed,
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
    """The plan a `plan_json` document describes; PlanFileError names what is wrong.

    Everything is checked: schema and kind, every key present and no other,
    types, kinds, non-negative sizes, timestamps with a time zone, and that
    total_bytes is the sum of the actions' bytes.
    """
    top = _object(doc, "")
    _check_header(top)
    _check_keys(top, _PLAN_KEYS, "")
    actions = tuple(
        _action(item, f"actions[{i}]") for i, item in enumerate(_list(top, "actions", ""))
    )
    kept = tuple(_kept(item, f"kept[{i}]") for i, item in enumerate(_list(top, "kept", "")))
    plan = Plan(
        created_at=_timestamp(top, "created_at", ""),
        host=_str(top, "host", ""),
        actions=actions,
        kept=kept,
    )
    total = _size(top, "total_bytes", "")
    if total != plan.total_bytes:
        _fail("total_bytes", f"{total} is not the sum of the actions' bytes ({plan.total_bytes})")
    return plan


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


# -- reading -----------------------------------------------------------------


def _fail(path: str, problem: str) -> NoReturn:
    raise PlanFileError(f"plan file: {path}: {problem}" if path else f"plan file: {problem}")


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _describe(value: object) -> str:
    """A value as an error message shows it: numbers and short strings as such."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    if isinstance(value, str) and len(value) <= 40:
        return json.dumps(value)
    names = {dict: "an object", list: "a list", str: "a string", bool: "a boolean"}
    return names.get(type(value), "null" if value is None else type(value).__name__)


def _object(value: object, path: str) -> dict[str, object]:
    if not isinstance(value, dict):
        _fail(path, f"expected a JSON object, got {_describe(value)}")
    return value


def _check_header(top: dict[str, object]) -> None:
    """Schema and kind first: a wrong document should say so, not list its missing keys."""
    if "schema" not in top:
        _fail("", "no schema version: not a bilge plan")
    schema = top["schema"]
    if type(schema) is not int or schema != SCHEMA:
        _fail("schema", f"version {_describe(schema)} is not supported (this bilge reads {SCHEMA})")
    if top.get("kind") != "plan":
        _fail("kind", f'expected "plan", got {_describe(top.get("kind"))}')


def _check_keys(obj: dict[str, object], keys: Sequence[str], path: str) -> None:
    for key in keys:
        if key not in obj:
            _fail(_join(path, key), "missing")
    for key in obj:
        if key not in keys:
            _fail(_join(path, key), "unknown key")


def _str(obj: dict[str, object], key: str, path: str) -> str:
    value = obj[key]
    if not isinstance(value, str):
        _fail(_join(path, key), f"expected a string, got {_describe(value)}")
    return value


def _id(obj: dict[str, object], path: str) -> str:
    value = _str(obj, "id", path)
    if not value:
        _fail(_join(path, "id"), "must not be empty")
    return value


def _size(obj: dict[str, object], key: str, path: str) -> int:
    value = obj[key]
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        _fail(_join(path, key), f"expected a non-negative integer, got {_describe(value)}")
    return value


def _list(obj: dict[str, object], key: str, path: str) -> list[object]:
    value = obj[key]
    if not isinstance(value, list):
        _fail(_join(path, key), f"expected a list, got {_describe(value)}")
    return value


def _kind(obj: dict[str, object], path: str) -> Kind:
    value = _str(obj, "kind", path)
    try:
        return Kind(value)
    except ValueError:
        known = ", ".join(k.value for k in Kind)
        _fail(_join(path, "kind"), f"unknown kind {value!r} (expected one of {known})")


def _timestamp(obj: dict[str, object], key: str, path: str) -> datetime:
    value = _str(obj, key, path)
    try:
        at = datetime.fromisoformat(value)
    except ValueError:
        _fail(_join(path, key), f"expected an ISO 8601 timestamp, got {value!r}")
    if at.tzinfo is None:
        _fail(_join(path, key), f"timestamp {value!r} has no time zone (write e.g. 'Z')")
    return at.astimezone(UTC)


def _strings(obj: dict[str, object], key: str, path: str) -> tuple[str, ...]:
    items = _list(obj, key, path)
    for i, item in enumerate(items):
        if not isinstance(item, str):
            _fail(f"{_join(path, key)}[{i}]", f"expected a string, got {_describe(item)}")
    return tuple(str(item) for item in items)


def _action(item: object, path: str) -> Action:
    obj = _object(item, path)
    _check_keys(obj, _ACTION_KEYS, path)
    return Action(
        kind=_kind(obj, path),
        id=_id(obj, path),
        name=_str(obj, "name", path),
        reason=_str(obj, "reason", path),
        bytes=_size(obj, "bytes", path),
        precondition=_str(obj, "precondition", path),
        fingerprint=_str(obj, "fingerprint", path),
        tags=_strings(obj, "tags", path),
        volumes=_strings(obj, "volumes", path),
    )


def _kept(item: object, path: str) -> Kept:
    obj = _object(item, path)
    _check_keys(obj, _KEPT_KEYS, path)
    return Kept(
        kind=_kind(obj, path),
        id=_id(obj, path),
        name=_str(obj, "name", path),
        reason=_str(obj, "reason", path),
        bytes=_size(obj, "bytes", path),
    )
