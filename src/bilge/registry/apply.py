"""RegistryPlan -> RegistryOutcome: delete manifests, re-checking each one.

Deleting a digest deletes every tag pointing at it, and the registry gives no
way to say "only if nothing changed". So, per repository, before its first
deletion, bilge reads the repository again (every tag resolved, what every
index lists), and then for each deletion:

1. the audit log records the attempt (if it cannot, nothing is deleted);
2. no tag outside the planned ones points at the digest now, and no index
   still there lists it (one the plan deletes counts until it is deleted: its
   own deletion may be skipped);
3. just before the DELETE, each planned tag is resolved again: a tag moved to
   another digest means the plan is stale for it, and it is skipped;
4. DELETE /v2/<name>/manifests/<digest>: 404 is "already gone" (a skip), 405
   stops the run (deletes disabled or registry read-only), 401/403 fail the
   deletion naming the permission;
5. the children of a deleted index that nothing else lists go after it.

Untagged manifests (`untagged_after`) come last in their repository, which
is read again just before them: one that a tag, or an index still there,
points at now is skipped. A tag planned "untag only" goes alone, through a
throwaway manifest (untag.py).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from itertools import groupby

from bilge.applier.core import AuditLog
from bilge.clock import SYSTEM_CLOCK, Clock
from bilge.errors import StateError
from bilge.model import Action, Kind, Result
from bilge.registry.client import RegistryClient
from bilge.registry.collect import resolve_tags
from bilge.registry.errors import RegistryError, RegistryReadOnly
from bilge.registry.model import (
    INDEX_TYPES,
    Deletion,
    DeletionOutcome,
    RegistryOutcome,
    RegistryPlan,
)
from bilge.registry.untag import untag


class Skip(Exception):
    """The deletion's precondition no longer holds; skipped with this reason."""


def apply(
    plan: RegistryPlan,
    clients: Mapping[str, RegistryClient],
    audit: AuditLog,
    *,
    on_result: Callable[[DeletionOutcome], None] | None = None,
    clock: Clock = SYSTEM_CLOCK,
) -> RegistryOutcome:
    """Carry out `plan` with one client per registry URL; `clock` times the run."""
    started = clock.now()
    run = _Run(plan, audit, on_result)
    for (url, name), group in groupby(plan.deletions, key=lambda d: (d.registry, d.repository)):
        run.repository(clients[url], name, list(group))
    return RegistryOutcome(plan, tuple(run.results), started, clock.now())


class _Run:
    def __init__(
        self,
        plan: RegistryPlan,
        audit: AuditLog,
        on_result: Callable[[DeletionOutcome], None] | None,
    ) -> None:
        self.plan = plan
        self.audit = audit
        self.on_result = on_result
        self.results: list[DeletionOutcome] = []
        #: (registry, repository, digest) of the manifests this run deleted.
        self.deleted: set[tuple[str, str, str]] = set()
        #: registry URL -> why the rest of it is not attempted (a 405 holds for it all).
        self.stopped: dict[str, str] = {}

    def repository(self, client: RegistryClient, name: str, deletions: list[Deletion]) -> None:
        view: _View | None = None
        stale: _View | None = None
        fresh_for_untagged = False
        for deletion in deletions:
            if stopped := self.stopped.get(deletion.registry):
                self._record(DeletionOutcome(deletion, Result.SKIPPED, stopped))
                continue
            if not deletion.tags and not fresh_for_untagged:
                # Untagged ones come last: read the repository again just before,
                # so that a tag pushed onto one meanwhile keeps it.
                stale, view, fresh_for_untagged = view, None, True
            try:
                view = view or _View.read(client, name, stale)
            except RegistryError as exc:
                self._record(DeletionOutcome(deletion, Result.FAILED, f"not re-checked: {exc}"))
                continue
            if deletion.follows and not self._went(deletion, deletion.follows):
                detail = f"refers to {deletion.follows[:19]}, which was not deleted"
                self._record(DeletionOutcome(deletion, Result.SKIPPED, detail))
                continue
            deleter = _Deleter(client, view, self.audit)
            self._record(deleter.run(deletion))
            if deleter.read_only:
                self.stopped[deletion.registry] = f"not attempted: {deleter.read_only}"

    def _went(self, deletion: Deletion, digest: str) -> bool:
        return (deletion.registry, deletion.repository, digest) in self.deleted

    def _record(self, outcome: DeletionOutcome) -> None:
        d = outcome.deletion
        if outcome.result is Result.REMOVED or outcome.detail == "already gone":
            self.deleted.add((d.registry, d.repository, d.digest))
        self.results.append(outcome)
        if self.on_result is not None:
            self.on_result(outcome)


@dataclass
class _View:
    """A repository as it is now: its tags, what its indexes list, and what this
    run deleted from it so far."""

    tags: dict[str, str]
    #: digest -> {digest of an index listing it (at any depth): a tag of that index}
    listed_by: dict[str, dict[str, str]] = field(default_factory=dict)
    gone: set[str] = field(default_factory=set)

    @classmethod
    def read(cls, client: RegistryClient, name: str, before: _View | None = None) -> _View:
        resolved = resolve_tags(client, name)
        view = cls({tag: r.digest for tag, r in resolved.items()})
        if before is not None:
            view.gone |= before.gone
        # Every index counts, those the plan deletes too: until one is really
        # deleted (its own deletion may be skipped), what it lists must stay.
        for tag, r in sorted(resolved.items()):
            if r.media_type in INDEX_TYPES:
                view._list_children(client, name, r.digest, r.digest, tag)
        return view

    def _list_children(
        self, client: RegistryClient, name: str, root: str, digest: str, tag: str
    ) -> None:
        index = client.manifest(name, digest)
        for child in index.children:
            self.listed_by.setdefault(child, {}).setdefault(root, tag)
        for nested in index.nested:
            self._list_children(client, name, root, nested, tag)

    def tags_of(self, digest: str) -> set[str]:
        return {t for t, d in self.tags.items() if d == digest}

    def owner(self, digest: str) -> str | None:
        """A tag of an index still there that lists `digest`, if any."""
        owners = self.listed_by.get(digest, {})
        return next((tag for index, tag in owners.items() if index not in self.gone), None)


class _Deleter:
    def __init__(self, client: RegistryClient, view: _View, audit: AuditLog) -> None:
        self.client = client
        self.view = view
        self.audit = audit
        #: The registry's 405, when it refused the deletion.
        self.read_only = ""

    def run(self, deletion: Deletion) -> DeletionOutcome:
        try:
            entry = self.audit.record_attempt(deletion.registry, audit_action(deletion))
        except StateError as exc:
            return DeletionOutcome(deletion, Result.FAILED, f"not attempted: audit log: {exc}")
        result, detail = self._attempt(deletion)
        try:
            self.audit.record_outcome(entry, result, detail)
        except StateError as exc:
            detail = f"{detail} (audit log: {exc})".strip()
        return DeletionOutcome(deletion, result, detail)

    def _attempt(self, deletion: Deletion) -> tuple[Result, str]:
        if deletion.untag_only:
            return untag(self.client, deletion, self.view.tags)
        try:
            self._check(deletion)
            deleted = self.client.delete_manifest(deletion.repository, deletion.digest)
            self.view.gone.add(deletion.digest)
            if not deleted:
                return Result.SKIPPED, "already gone"
        except Skip as exc:
            return Result.SKIPPED, str(exc)
        except RegistryReadOnly as exc:
            self.read_only = str(exc)
            return Result.FAILED, str(exc)
        except RegistryError as exc:
            return Result.FAILED, str(exc)
        return Result.REMOVED, self._children(deletion)

    def _check(self, deletion: Deletion) -> None:
        others = self.view.tags_of(deletion.digest) - set(deletion.tags)
        if others:
            raise Skip(f"now also tagged {', '.join(sorted(others))}")
        if owner := self.view.owner(deletion.digest):
            raise Skip(f"listed by index {owner!r}, which is still there")
        # Last, just before the DELETE: the planned tags themselves.
        for tag in deletion.tags:
            now = self.client.resolve(deletion.repository, tag)
            if now is not None and now.digest != deletion.digest:
                raise Skip(f"tag {tag!r} moved to {now.digest[:19]} since the plan")

    def _children(self, deletion: Deletion) -> str:
        """Delete the children of a deleted index; what was left, for the detail."""
        left: list[str] = []
        for child in deletion.children:
            if self.view.owner(child) or self.view.tags_of(child):
                left.append(f"{child[:19]} (still listed or tagged)")
                continue
            try:
                self.client.delete_manifest(deletion.repository, child)
                self.view.gone.add(child)
            except RegistryError as exc:
                left.append(f"{child[:19]} ({exc})")
        if not left:
            return ""
        return f"{len(left)} of {len(deletion.children)} child manifests left: {'; '.join(left)}"


def audit_action(deletion: Deletion) -> Action:
    """The audit log's record of a deletion: a registry manifest, on the registry's "host"."""
    return Action(
        kind=Kind.REGISTRY_MANIFEST,
        id=f"{deletion.repository}@{deletion.digest}",
        name=deletion.name,
        reason=deletion.reason,
        bytes=deletion.bytes,
        precondition=deletion.precondition,
        fingerprint="",
    )
