"""plan(snapshots, registries, now) -> RegistryPlan. Pure: no I/O, no clock.

Tags are decided first, by the repository's rule (the first whose glob
matches; a repository no rule matches keeps everything). Deleting happens by
digest, and a digest takes every tag pointing at it along, so then:

* a digest is deleted only when every tag pointing at it is to be deleted; a
  tag sharing its digest with a kept tag is kept, and says so;
* a manifest listed by a kept index (a platform image of a multi-arch tag) is
  never deleted;
* a referrer (a manifest with a `subject`, or a "sha256-<hex>" tag) goes only
  with the manifest it refers to, and stays while that one stays.

Each rule above can keep a tag the one before would have deleted, so they are
applied until nothing changes. Bytes are what only the deletion holds: blobs
no kept manifest of the same registry (any repository) references, each
counted once.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from bilge.config.units import duration_text, format_duration
from bilge.registry.ages import age_time, age_word, pulled_lately
from bilge.registry.model import (
    REFERRER_TAG_RE,
    Deletion,
    KeptTag,
    Manifest,
    RegistryPlan,
    RegistrySnapshot,
    Repository,
)
from bilge.registry.policy import RegistryConfig, RegistryRule
from bilge.registry.sizes import emptied, reachable, with_bytes
from bilge.registry.untagged import THROWAWAY_REASON, Untagged, descendants, untagged_deletions
from bilge.registry.versions import version_key

_OLDEST = datetime.min.replace(tzinfo=UTC)


@dataclass(frozen=True)
class Decision:
    delete: bool
    reason: str
    #: Kept as a digest, but the tag itself goes (untag_shared: untag.py).
    untag: bool = False


def keep(reason: str) -> Decision:
    return Decision(False, reason)


def plan(
    snapshots: Sequence[RegistrySnapshot],
    registries: Mapping[str, RegistryConfig],
    now: datetime,
    keep_label: str = "bilge.keep",
) -> RegistryPlan:
    """What to delete from each snapshot's registry under its configured rules;
    an image labelled `keep_label` (the policy's) is never deleted."""
    deletions: list[Deletion] = []
    kept: list[KeptTag] = []
    empty: list[tuple[str, str]] = []
    for snap in snapshots:
        config = registries[snap.url]
        decided = {
            r.name: decide(r, config.rule_for(r.name), now, keep_label) for r in snap.repositories
        }
        found = _deletions(snap, decided, config, now, keep_label)
        deletions += found
        empty += [(snap.url, name) for name in emptied(snap, found)]
        kept += [
            KeptTag(snap.url, repo.name, tag, repo.tags[tag], d.reason)
            for repo in snap.repositories
            for tag, d in sorted(decided[repo.name].items())
            if not d.delete and not d.untag
        ]
    urls = tuple(s.url for s in snapshots)
    return RegistryPlan(now, urls, tuple(deletions), tuple(kept), tuple(empty))


def decide(
    repo: Repository, rule: RegistryRule | None, now: datetime, keep_label: str = "bilge.keep"
) -> dict[str, Decision]:
    """Every tag of `repo`, deleted or kept, with the reason."""
    if rule is None:
        decisions = {tag: keep("no rule matches this repository") for tag in repo.tags}
    else:
        decisions = _by_rule(repo, rule, now, keep_label)
    for tag, digest in repo.tags.items():
        manifest = repo.manifests.get(digest)
        if manifest is not None and manifest.throwaway:
            decisions[tag] = Decision(True, THROWAWAY_REASON)
    untag = rule is not None and rule.untag_shared
    for _ in range(2 * len(decisions) + 1):  # each round changes a tag at most twice
        if not _settle(repo, decisions, untag):
            break
    return decisions


# -- the rule ---------------------------------------------------------------------------


def _by_rule(
    repo: Repository, rule: RegistryRule, now: datetime, keep_label: str
) -> dict[str, Decision]:
    decisions: dict[str, Decision] = {}
    candidates: list[str] = []
    for tag in sorted(repo.tags):
        manifest = repo.manifests.get(repo.tags[tag])
        why = _kept_by_rule(rule, tag, manifest, keep_label)
        why = why or pulled_lately(repo, rule, repo.tags[tag], now)
        if why:
            decisions[tag] = keep(why)
        else:
            candidates.append(tag)
    for rank, tag in enumerate(_newest_first(repo, rule, candidates)):
        decisions[tag] = _by_age(rule, tag, age_time(repo, rule, repo.tags[tag]), rank, now)
    return decisions


def _kept_by_rule(rule: RegistryRule, tag: str, manifest: Manifest | None, keep_label: str) -> str:
    """Why the rule keeps `tag` whatever its age, or ""."""
    return next(_keep_reasons(rule, tag, manifest, keep_label), "")


def _keep_reasons(
    rule: RegistryRule, tag: str, manifest: Manifest | None, keep_label: str
) -> Iterator[str]:
    """The reasons to keep `tag`, the strongest first."""
    if manifest is None:
        yield "its manifest could not be read"
        return
    if not manifest.supported:
        yield f"manifest type {manifest.media_type!r} is not one bilge deletes"
    if keep_label in manifest.labels:
        yield f"labelled {keep_label}"
    if subject := referred(tag, manifest):
        yield f"refers to {subject}, which is kept"
    if tag == "latest" and rule.keep_latest:
        yield "'latest' (keep_latest = true)"
    if pattern := next((p for p in rule.keep_matching if _search(p, tag)), None):
        yield f"matches keep_matching {pattern!r}"
    if not any(_search(p, tag) for p in rule.delete_matching):
        yield "matches no delete_matching pattern"
    if rule.order == "semver" and version_key(tag) is None:
        yield "not a semantic version (order = semver)"


def _search(pattern: str, tag: str) -> bool:
    return re.search(pattern, tag) is not None


def _newest_first(repo: Repository, rule: RegistryRule, tags: list[str]) -> list[str]:
    if rule.order == "semver":
        return sorted(tags, key=lambda t: (version_key(t), t), reverse=True)
    return sorted(
        tags, key=lambda t: (age_time(repo, rule, repo.tags[t]) or _OLDEST, t), reverse=True
    )


def _by_age(
    rule: RegistryRule, tag: str, since: datetime | None, rank: int, now: datetime
) -> Decision:
    by = "highest versions" if rule.order == "semver" else "newest"
    if rank < rule.keep_recent:
        return keep(f"one of the {rule.keep_recent} {by} (keep_recent = {rule.keep_recent})")
    age = now - since if since else None
    if rule.older_than > timedelta(0):
        limit = f"older_than = {duration_text(rule.older_than)}"
        if age is None:
            return keep(f"{_time_word(rule)} unknown ({limit})")
        if age < rule.older_than:
            return keep(f"{age_word(rule)} {format_duration(age)} ago ({limit})")
    what = f"version {tag}" if rule.order == "semver" else _age_text(rule, age)
    if rule.keep_recent:
        return Decision(True, f"{what}; not one of the {rule.keep_recent} {by}")
    # Nothing is kept for being recent: say which settings let it go, not "0 newest".
    older = f"older_than = {duration_text(rule.older_than)}, " if rule.older_than else ""
    return Decision(True, f"{what} ({older}keep_recent = 0)")


def _age_text(rule: RegistryRule, age: timedelta | None) -> str:
    if age is None:
        return f"{_time_word(rule)} unknown"
    return f"{age_word(rule)} {format_duration(age)} ago"


def _time_word(rule: RegistryRule) -> str:
    return "push time" if rule.age == "pushed" else "creation time"


# -- what deleting by digest implies ----------------------------------------------------


def referred(tag: str, manifest: Manifest) -> str | None:
    """The digest `tag` (or its manifest) is attached to, when it is a referrer."""
    if manifest.subject:
        return manifest.subject
    match = REFERRER_TAG_RE.fullmatch(tag)
    return f"sha256:{match.group(1)}" if match else None


def _settle(repo: Repository, decisions: dict[str, Decision], untag: bool = False) -> bool:
    """One round of the digest rules; True when a decision changed. With
    `untag`, a tag sharing its digest with a kept tag goes alone."""
    changed = False
    gone = deleted_digests(repo, decisions)
    kept_tags = {t: repo.tags[t] for t, d in decisions.items() if not d.delete}
    owners = _index_owners(repo, kept_tags)
    for tag, decision in decisions.items():
        digest = repo.tags[tag]
        new = decision
        if decision.delete and digest not in gone:
            other = next(t for t, d in kept_tags.items() if d == digest and not decisions[t].untag)
            shares = f"shares digest {digest[:19]} with kept tag {other!r}"
            new = Decision(False, f"untag only: {shares}", untag=True) if untag else keep(shares)
        elif decision.delete and digest in owners:
            new = keep(f"a manifest of kept index {owners[digest]!r}")
        elif (subject := _subject(repo, tag)) is not None:
            new = _follow(subject, gone, decision)
        if new != decision:
            decisions[tag] = new
            changed = True
    return changed


def _subject(repo: Repository, tag: str) -> str | None:
    manifest = repo.manifests.get(repo.tags[tag])
    # What bilge cannot read stays, even when it refers to something deleted.
    return referred(tag, manifest) if manifest and manifest.supported else None


def _follow(subject: str, gone: set[str], decision: Decision) -> Decision:
    """A referrer goes with its subject, and stays while its subject stays."""
    if subject in gone:
        return decision if decision.delete else Decision(True, f"refers to deleted {subject}")
    return keep(f"refers to {subject}, which is kept") if decision.delete else decision


def deleted_digests(repo: Repository, decisions: Mapping[str, Decision]) -> set[str]:
    """Digests every tag of which is to be deleted."""
    kept = {repo.tags[t] for t, d in decisions.items() if not d.delete}
    return {repo.tags[t] for t, d in decisions.items() if d.delete} - kept


def _index_owners(repo: Repository, kept_tags: Mapping[str, str]) -> dict[str, str]:
    """Manifests listed (at any depth) by a kept index -> a kept tag of that index."""
    owners: dict[str, str] = {}
    for tag, digest in sorted(kept_tags.items()):
        for child in _descendants(repo, digest):
            owners.setdefault(child, tag)
    return owners


def _descendants(repo: Repository, digest: str) -> Iterator[str]:
    return descendants(repo, digest)


# -- deletions ------------------------------------------------------------------------


def _deletions(
    snap: RegistrySnapshot,
    decided: Mapping[str, Mapping[str, Decision]],
    config: RegistryConfig,
    now: datetime,
    keep_label: str,
) -> list[Deletion]:
    kept_reach: set[str] = set()
    for repo in snap.repositories:
        for tag, decision in decided[repo.name].items():
            if not decision.delete:
                kept_reach |= set(reachable(repo, repo.tags[tag]))
    out: list[Deletion] = []
    for repo in snap.repositories:
        decisions = decided[repo.name]
        gone = deleted_digests(repo, decisions)
        claimed = gone | {repo.tags[t] for t in decisions} | kept_reach | _untagged_own(repo, gone)
        deleted = set(gone)
        for digest in _deletion_order(repo, gone):
            children = tuple(c for c in _descendants(repo, digest) if c not in claimed)
            claimed |= set(children)
            deleted |= set(children)
            out.append(_deletion(snap.url, repo, digest, decisions, children))
        out += [
            _deletion(snap.url, repo, repo.tags[t], decisions, (), untag=t)
            for t, d in sorted(decisions.items())
            if d.untag
        ]
        rule = config.rule_for(repo.name)
        out += [
            _untagged(snap.url, repo, u)
            for u in untagged_deletions(repo, rule, now, keep_label, deleted)
        ]
    return with_bytes(snap, out)


def _untagged_own(repo: Repository, gone: set[str]) -> set[str]:
    """What the untagged indexes of `repo` list, those the deleted ones list
    aside: an untagged index decides for its own children (untagged.py)."""
    listed_by_gone = {c for d in gone for c in _descendants(repo, d)}
    roots = repo.untagged() - listed_by_gone
    return {c for r in roots for c in _descendants(repo, r)}


def _untagged(url: str, repo: Repository, u: Untagged) -> Deletion:
    media_type = repo.manifests[u.digest].media_type
    return Deletion(url, repo.name, u.digest, media_type, (), u.reason, 0, u.children, u.follows)


def _deletion(
    url: str,
    repo: Repository,
    digest: str,
    decisions: Mapping[str, Decision],
    children: tuple[str, ...],
    *,
    untag: str = "",
) -> Deletion:
    tags = (untag,) if untag else repo.tags_of(digest)
    return Deletion(
        registry=url,
        repository=repo.name,
        digest=digest,
        media_type=repo.manifests[digest].media_type,
        tags=tags,
        reason=decisions[tags[0]].reason,
        bytes=0,
        children=children,
        follows=None if untag else _follows(repo, digest),
        untag_only=bool(untag),
    )


def _deletion_order(repo: Repository, gone: set[str]) -> list[str]:
    """Oldest first; but an index before the manifests it lists (apply keeps what
    an index still there lists), and a referrer after what it refers to."""
    listed = {c for d in gone for c in _descendants(repo, d)}
    return sorted(
        gone,
        key=lambda d: (_follows(repo, d) is not None, d in listed, _manifest_time(repo, d), d),
    )


def _follows(repo: Repository, digest: str) -> str | None:
    """The digest a referrer `digest` refers to, when it is one."""
    return next((s for t in repo.tags_of(digest) if (s := _subject(repo, t))), None)


def _manifest_time(repo: Repository, digest: str) -> datetime:
    manifest = repo.manifests.get(digest)
    return (manifest.created if manifest else None) or _OLDEST
