"""Which untagged manifests go (`untagged_after`). Pure: no I/O, no clock.

Every re-push of a tag leaves the manifest it pointed at untagged, holding
its blobs for ever: distribution 2.8's collector keeps every manifest the
storage has, and its `--delete-untagged` also deletes the platform manifests
of multi-arch images (distribution#3178), so bilge never uses it. Instead,
the plan deletes through the API the untagged manifests (read from the
storage: the API cannot list them) that

* were pushed longer ago than `untagged_after` (a push time unknown keeps it),
* no manifest that stays lists, at any depth (the platform images of a kept
  index, tagged or not),
* do not refer (OCI `subject`) to a manifest that stays,
* were not pulled within `keep_pulled_within`, carry no keep label, and are
  of a media type bilge knows.

Each rule can keep a manifest that makes another one stay, so they are
applied until nothing changes. An untagged index takes the untagged
manifests it lists along, after it (apply never leaves an index without its
children); a referrer follows what it refers to.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime

from bilge.config.units import duration_text, format_duration
from bilge.registry.ages import pulled_lately
from bilge.registry.model import Repository
from bilge.registry.policy import RegistryRule

_OLDEST = datetime.min.replace(tzinfo=UTC)
THROWAWAY_REASON = "throwaway manifest of an interrupted untag"


@dataclass(frozen=True)
class Untagged:
    """An untagged manifest to delete, with the untagged ones it lists."""

    digest: str
    reason: str
    children: tuple[str, ...] = ()
    #: The digest it refers to, when that one is deleted by the same plan.
    follows: str | None = None


def untagged_deletions(
    repo: Repository,
    rule: RegistryRule | None,
    now: datetime,
    keep_label: str,
    deleted: set[str],
) -> list[Untagged]:
    """The untagged manifests of `repo` to delete; `deleted`: the digests the
    plan deletes already (tagged ones and their children)."""
    if rule is None or rule.untagged_after is None or repo.storage is None:
        return []
    candidates = {
        d: why
        for d in sorted(repo.untagged() - deleted)
        if (why := _why_delete(repo, rule, d, now, keep_label))
    }
    everything = set(repo.manifests) | set(repo.untagged()) | set(repo.tags.values())
    stays = everything - deleted - set(candidates)
    while _keep_what_stays_needs(repo, candidates, stays):
        pass
    listed = {c: [x for x in descendants(repo, c) if x in candidates] for c in candidates}
    nested = {x for found in listed.values() for x in found}
    gone = deleted | set(candidates)
    out = [
        Untagged(d, candidates[d], tuple(listed[d]), _follows(repo, d, gone))
        for d in candidates
        if d not in nested
    ]
    pushed = repo.storage.pushed
    return sorted(
        out, key=lambda u: (u.follows is not None, pushed.get(u.digest, _OLDEST), u.digest)
    )


def _why_delete(
    repo: Repository, rule: RegistryRule, digest: str, now: datetime, keep_label: str
) -> str:
    """Why the untagged `digest` may go, or "" when it stays whatever else holds."""
    manifest = repo.manifests.get(digest)
    pushed = repo.storage.pushed.get(digest) if repo.storage else None
    if manifest is None or not manifest.supported or keep_label in manifest.labels:
        return ""
    if manifest.throwaway:
        return THROWAWAY_REASON
    limit = rule.untagged_after
    if pushed is None or limit is None or now - pushed < limit:
        return ""
    if pulled_lately(repo, rule, digest, now):
        return ""
    ago = format_duration(now - pushed)
    return f"untagged, pushed {ago} ago (untagged_after = {duration_text(limit)})"


def _keep_what_stays_needs(repo: Repository, candidates: dict[str, str], stays: set[str]) -> bool:
    """One round: candidates listed by, or referring to, a manifest that stays
    stay too. True when one did."""
    listed = {c for s in stays for c in descendants(repo, s)}
    keep = [
        d
        for d in candidates
        if d in listed or ((m := repo.manifests.get(d)) is not None and m.subject in stays)
    ]
    for d in keep:
        del candidates[d]
        stays.add(d)
    return bool(keep)


def _follows(repo: Repository, digest: str, gone: set[str]) -> str | None:
    manifest = repo.manifests.get(digest)
    subject = manifest.subject if manifest else None
    return subject if subject in gone else None


def descendants(repo: Repository, digest: str) -> Iterator[str]:
    """The manifests `digest` lists, at any depth, each once."""
    seen: set[str] = set()
    todo = list(_children(repo, digest))
    while todo:
        child = todo.pop()
        if child not in seen:
            seen.add(child)
            yield child
            todo += _children(repo, child)


def _children(repo: Repository, digest: str) -> tuple[str, ...]:
    manifest = repo.manifests.get(digest)
    return manifest.children if manifest else ()
