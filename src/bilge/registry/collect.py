"""Registry -> RegistrySnapshot: the catalog, every tag resolved, every manifest read.

In phases, each in parallel (a bounded pool; the client is thread-safe):
list the catalog, list each repository's tags, resolve each tag (HEAD), read
each distinct manifest once (GET by digest, then the children of indexes),
and read the image configs of the repositories a rule applies to (creation
time and labels: what the rules order by). Every repository is read, ruled
or not, because a blob is freed only when no manifest anywhere references it.

Names come from the registry's answers. One with an ASCII control character
(an ESC, a newline) is no valid repository name or tag, and no request URL
can carry it: such a name stops plan (and apply) with one line that shows it
escaped. Leaving it out instead would be unsafe: an unseen tag on a digest
is deleted along with it. Any other name is read like the rest; the report
shows it escaped.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from pathlib import Path
from typing import TypeVar

from bilge.registry.client import RegistryClient, Resolved
from bilge.registry.errors import RegistryError
from bilge.registry.manifests import parse_manifest, with_children_time, with_config
from bilge.registry.model import Manifest, RegistrySnapshot, Repository, RepoStorage
from bilge.registry.policy import RegistryConfig
from bilge.registry.storage import blob_disk, media_type_of, read_blob, read_repository
from bilge.report.text import printable
from bilge.safejson import loads_json

WORKERS = 8

T = TypeVar("T")
R = TypeVar("R")

#: (repository, digest)
Key = tuple[str, str]

#: What a URL cannot carry (httpx refuses to send it): C0 controls and DEL.
_UNSENDABLE = re.compile(r"[\x00-\x1f\x7f]")


def collect(
    client: RegistryClient,
    config: RegistryConfig,
    now: datetime,
    *,
    root: Path | None = None,
    pulled: Mapping[str, Mapping[str, datetime]] | None = None,
) -> RegistrySnapshot:
    """Read the whole registry behind `client`; with `root` (its filesystem
    storage, storage.py) the untagged manifests, push times and disk usage
    too; `pulled` is repository -> digest -> last pull (listen.py)."""
    with ThreadPoolExecutor(max_workers=WORKERS) as pool:
        reader = _Reader(client, pool, root)
        names = client.repositories()
        for name in names:
            _check_name(client, name, "the catalog lists repository")
        resolved = reader.resolve_all(names)
        tags = {repo: {t: r.digest for t, r in by_tag.items()} for repo, by_tag in resolved.items()}
        stored = reader.read_storage(names)
        _check_storage(client, tags, stored)
        manifests = reader.read_manifests(tags, stored)
        ruled = {n for n in names if config.rule_for(n) is not None}
        manifests = reader.add_times(manifests, ruled)
        blob_disk = reader.blob_disk(manifests) if root is not None else None
    repos = tuple(
        Repository(
            name,
            tags[name],
            {d: m for (repo, d), m in manifests.items() if repo == name},
            storage=stored.get(name),
            pulled=(pulled or {}).get(name, {}),
        )
        for name in sorted(names)
    )
    return RegistrySnapshot(config.url, now, repos, blob_disk)


def resolve_tags(client: RegistryClient, repository: str) -> dict[str, Resolved]:
    """Every tag of one repository and what it points at now (apply's view)."""
    _check_name(client, repository, "the plan names repository")
    with ThreadPoolExecutor(max_workers=WORKERS) as pool:
        return _Reader(client, pool).resolve_all([repository])[repository]


class _Reader:
    def __init__(
        self, client: RegistryClient, pool: ThreadPoolExecutor, root: Path | None = None
    ) -> None:
        self.client = client
        self.pool = pool
        #: The filesystem storage: manifests and configs are read from it, not
        #: asked of the registry, and the untagged ones are only found there.
        self.root = root

    def _map(self, fn: Callable[[T], R], items: Iterable[T]) -> list[R]:
        return list(self.pool.map(fn, items))

    def resolve_all(self, names: list[str]) -> dict[str, dict[str, Resolved]]:
        """repository -> tag -> what it points at; a tag deleted meanwhile is left out."""
        listed = dict(zip(names, self._map(self.client.tags, names), strict=True))
        for repo, tags in listed.items():
            for tag in tags:
                _check_name(self.client, tag, f"repository {printable(repo)} lists tag")
        pairs = [(repo, tag) for repo, tags in listed.items() for tag in tags]
        found = self._map(lambda p: self.client.resolve(*p), pairs)
        out: dict[str, dict[str, Resolved]] = {name: {} for name in names}
        for (repo, tag), resolved in zip(pairs, found, strict=True):
            if resolved is not None:
                out[repo][tag] = resolved
        return out

    def read_storage(self, names: list[str]) -> dict[str, RepoStorage]:
        root = self.root
        if root is None:
            return {}
        return dict(zip(names, self._map(lambda n: read_repository(root, n), names), strict=True))

    def blob_disk(self, manifests: Mapping[Key, Manifest]) -> dict[str, int]:
        """Disk usage of every blob a manifest read references (manifests included)."""
        root = self.root
        digests = sorted(
            {d for _, d in manifests} | {b.digest for m in manifests.values() for b in m.blobs}
        )
        if root is None:
            return {}
        sizes = self._map(lambda d: blob_disk(root, d), digests)
        return {d: s for d, s in zip(digests, sizes, strict=True) if s is not None}

    def read_manifests(
        self, tags: Mapping[str, Mapping[str, str]], stored: Mapping[str, RepoStorage]
    ) -> dict[Key, Manifest]:
        """Every tagged manifest (and every one the storage has) and, level by
        level, the children of indexes."""
        manifests: dict[Key, Manifest] = {}
        todo = sorted(
            {(repo, d) for repo, by_tag in tags.items() for d in by_tag.values()}
            | {(repo, d) for repo, found in stored.items() for d in found.pushed}
        )
        while todo:
            for key, manifest in zip(todo, self._map(self._manifest, todo), strict=True):
                manifests[key] = manifest
            todo = sorted(
                {(repo, child) for (repo, _), m in manifests.items() for child in m.children}
                - manifests.keys()
            )
        return manifests

    def _manifest(self, key: Key) -> Manifest:
        if self.root is None or not self._stored(key[1]):
            return self.client.manifest(*key)
        where = f"{self.client.label}: {key[0]}@{key[1]}"
        body = read_blob(self.root, key[1])
        try:
            doc = loads_json(body)
        except ValueError as exc:
            raise RegistryError(f"{where}: the stored manifest is not JSON") from exc
        kind = media_type_of(doc) if isinstance(doc, dict) else ""
        return parse_manifest(where, key[1], kind, body)

    def _stored(self, digest: str) -> bool:
        return self.root is not None and blob_disk(self.root, digest) is not None

    def add_times(self, manifests: dict[Key, Manifest], ruled: set[str]) -> dict[Key, Manifest]:
        """Creation times from image configs (each config read once), then for
        indexes from their children."""
        configs = sorted(
            {(repo, m.config.digest) for (repo, _), m in manifests.items() if m.config}
        )
        configs = [(repo, digest) for repo, digest in configs if repo in ruled]
        bodies = dict(zip(configs, self._map(self._blob, configs), strict=True))
        out = {key: self._with_config(key[0], m, bodies) for key, m in manifests.items()}
        for (repo, digest), m in out.items():
            if m.is_index:
                children = [out[(repo, c)] for c in m.children if (repo, c) in out]
                out[(repo, digest)] = with_children_time(m, children)
        return out

    def _blob(self, key: Key) -> bytes:
        if self.root is not None and self._stored(key[1]):
            return read_blob(self.root, key[1])
        return self.client.blob(*key)

    def _with_config(self, repo: str, manifest: Manifest, bodies: Mapping[Key, bytes]) -> Manifest:
        key = (repo, manifest.config.digest if manifest.config else "")
        if key not in bodies:
            return manifest
        return with_config(f"{self.client.label}: {repo}@{key[1]}", manifest, bodies[key])


def _check_storage(
    client: RegistryClient,
    tags: Mapping[str, Mapping[str, str]],
    stored: Mapping[str, RepoStorage],
) -> None:
    """The storage must be this registry's: every manifest a tag points at (read
    before the storage, so a push in between adds, never removes) is in it. Another
    registry's storage would make its manifests look untagged here."""
    for repo, found in sorted(stored.items()):
        missing = sorted(set(tags.get(repo, {}).values()) - set(found.pushed))
        if missing:
            raise RegistryError(
                f"registry {client.label}: its storage has no manifest {missing[0][:19]} "
                f"that a tag of {printable(repo)} points at: is [registry.gc] config this "
                "registry's configuration? Nothing deleted"
            )


def _check_name(client: RegistryClient, name: str, listed: str) -> None:
    """Refuse a name no request can carry: see the module's docstring."""
    if _UNSENDABLE.search(name):
        raise RegistryError(
            f'registry {client.label}: {listed} "{printable(name)}", with control '
            "characters: not a valid name, and no request can carry it; stopped, nothing deleted"
        )
