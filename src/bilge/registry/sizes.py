"""What each deletion frees, predicted. Pure.

A blob is freed only when no manifest that stays references it, in any
repository of the registry (distribution stores each blob once), and it is
counted once, for the first deletion that frees it. Two figures:

* `bytes`, the apparent size of those blobs as the manifests give them (the
  manifests themselves included): what any registry tells;
* `disk_bytes`, with the storage readable (storage.py): what the filesystem
  gains, as du counts it. Each freed blob's data file and its directory
  (block rounding included: a 300-byte config holds a 4 KiB block), and the
  registry's own files that go with each deleted manifest: its revision link
  (at the DELETE) and the directory of each of its tags. Measured on
  distribution 2.8.2 (docs/registry.md): the collector removes
  blobs/sha256/HE/HEX and nothing else, and leaves the emptied revision
  directories and the layer links in place, so those are not counted.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import replace

from bilge.registry.model import Deletion, RegistrySnapshot, Repository
from bilge.registry.untagged import descendants


def with_bytes(snap: RegistrySnapshot, deletions: Sequence[Deletion]) -> list[Deletion]:
    """`deletions` (of `snap`'s registry, in plan order) with their bytes."""
    gone = {
        (d.repository, x) for d in deletions if not d.untag_only for x in (d.digest, *d.children)
    }
    repos = {r.name: r for r in snap.repositories}
    kept: set[str] = set()
    for repo in snap.repositories:
        for digest in _manifests_of(repo):
            if (repo.name, digest) not in gone:
                kept |= set(reachable(repo, digest))
    counted = set(kept)
    out: list[Deletion] = []
    for d in deletions:
        repo = repos[d.repository]
        if d.untag_only:
            # The tag's directory goes, but the throwaway leaves a revision
            # directory and a blob of its own: nothing worth counting either way.
            out.append(
                replace(d, bytes=0, disk_bytes=None if _tag_disk(snap, repo, ()) is None else 0)
            )
            continue
        blobs = {b: s for b, s in reachable(repo, d.digest).items() if b not in counted}
        counted |= set(blobs)
        out.append(replace(d, bytes=sum(blobs.values()), disk_bytes=_disk(snap, repo, d, blobs)))
    return out


def _disk(
    snap: RegistrySnapshot, repo: Repository, d: Deletion, blobs: Iterable[str]
) -> int | None:
    if snap.blob_disk is None or repo.storage is None:
        return None
    links = repo.storage.revision_disk
    own = sum(links.get(x, 0) for x in (d.digest, *d.children))
    return sum(snap.blob_disk.get(b, 0) for b in blobs) + own + (_tag_disk(snap, repo, d.tags) or 0)


def _tag_disk(snap: RegistrySnapshot, repo: Repository, tags: Iterable[str]) -> int | None:
    if snap.blob_disk is None or repo.storage is None:
        return None
    return sum(repo.storage.tag_disk.get(t, 0) for t in tags)


def _manifests_of(repo: Repository) -> Iterator[str]:
    yield from repo.manifests
    yield from repo.tags.values()
    yield from repo.untagged()


def reachable(repo: Repository, digest: str) -> dict[str, int]:
    """Blob digest -> size of everything `digest` holds: the manifest itself, its
    config and layers, and those of the manifests it lists."""
    out: dict[str, int] = {}
    for d in (digest, *descendants(repo, digest)):
        manifest = repo.manifests.get(d)
        if manifest is not None:
            out[d] = manifest.size
            out.update((b.digest, b.size) for b in manifest.blobs)
    return out


def emptied(snap: RegistrySnapshot, deletions: Sequence[Deletion]) -> list[str]:
    """Repositories whose every manifest the plan deletes (known only from the
    storage: the API does not list untagged manifests)."""
    gone: Mapping[str, set[str]] = {r.name: set() for r in snap.repositories}
    for d in deletions:
        if not d.untag_only:
            gone[d.repository].update((d.digest, *d.children))
    return [
        r.name
        for r in snap.repositories
        if r.storage is not None and gone[r.name] and set(_manifests_of(r)) <= gone[r.name]
    ]
