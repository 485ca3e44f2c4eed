"""What bilge knows about a registry, what it plans to delete, and what happened.

`collect` turns the registry's answers into these frozen dataclasses and the
planner sees nothing else. Manifests are keyed by digest: content-addressed,
so what was read once is true for ever.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime

from bilge.model import Result

OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"

#: Sent as Accept on every manifest request: a registry that is not offered the
#: index types answers a multi-arch tag with one of its children (or 404).
MANIFEST_TYPES = (OCI_INDEX, OCI_MANIFEST, DOCKER_LIST, DOCKER_MANIFEST)
INDEX_TYPES = frozenset({OCI_INDEX, DOCKER_LIST})

DIGEST_RE = re.compile(r"sha256:[0-9a-f]{64}")
#: distribution's grammar for repository names (path components, no "..").
REPOSITORY_RE = re.compile(
    r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*"
)
#: Tags of the OCI referrers tag schema ("sha256-<hex>", cosign adds ".sig",
#: ".att", ...): attached to the manifest whose digest they name.
REFERRER_TAG_RE = re.compile(r"sha256-([0-9a-f]{64})(?:\..*)?")
#: The annotation that marks the throwaway manifest untag.py pushes (its value
#: says which run pushed it, so that each one is unique).
THROWAWAY_ANNOTATION = "dev.bilge.untag.throwaway"


@dataclass(frozen=True)
class Blob:
    digest: str
    size: int


@dataclass(frozen=True)
class Manifest:
    """A manifest as read (by digest). `supported` is False for a media type
    bilge does not understand: tags pointing at it are never deleted."""

    digest: str
    media_type: str
    size: int
    #: Config and layers of an image manifest; empty for an index.
    blobs: tuple[Blob, ...] = ()
    #: The image config, to read for creation time and labels (None for an
    #: index, or an artifact whose config is not an image's).
    config: Blob | None = None
    #: Digests of the manifests an index lists.
    children: tuple[str, ...] = ()
    #: Those of `children` that are indexes themselves (their descriptor says so).
    nested: tuple[str, ...] = ()
    #: The manifest this one refers to (OCI `subject`: signatures, SBOMs, ...).
    subject: str | None = None
    created: datetime | None = None
    labels: Mapping[str, str] = field(default_factory=dict, hash=False)
    supported: bool = True
    #: A manifest bilge pushed to take a tag away (untag.py), left by a run
    #: that was interrupted: deleted by the next plan, whatever the rules say.
    throwaway: bool = False

    @property
    def is_index(self) -> bool:
        return self.media_type in INDEX_TYPES


@dataclass(frozen=True)
class RepoStorage:
    """One repository as its filesystem storage has it (storage.py)."""

    #: digest -> push time (mtime of its revision link): every manifest pushed
    #: and not deleted, tagged or not.
    pushed: Mapping[str, datetime] = field(default_factory=dict, hash=False)
    #: digest -> disk usage of its revision link file (it goes with the DELETE).
    revision_disk: Mapping[str, int] = field(default_factory=dict, hash=False)
    #: tag -> disk usage of the tag's directory (it goes with the DELETE).
    tag_disk: Mapping[str, int] = field(default_factory=dict, hash=False)


@dataclass(frozen=True)
class Repository:
    name: str
    #: tag -> digest, as HEAD resolved it.
    tags: Mapping[str, str]
    #: Every manifest read: the tagged ones and the children of indexes (and,
    #: with storage access, the untagged ones).
    manifests: Mapping[str, Manifest]
    #: None when bilge cannot read the registry's storage.
    storage: RepoStorage | None = None
    #: digest -> when it was last pulled (from the registry's notifications).
    pulled: Mapping[str, datetime] = field(default_factory=dict, hash=False)

    def untagged(self) -> set[str]:
        """Manifests in the storage no tag points at (children of indexes too)."""
        pushed = self.storage.pushed if self.storage else {}
        return set(pushed) - set(self.tags.values())

    def tags_of(self, digest: str) -> tuple[str, ...]:
        return tuple(sorted(t for t, d in self.tags.items() if d == digest))


@dataclass(frozen=True)
class RegistrySnapshot:
    url: str
    taken_at: datetime
    repositories: tuple[Repository, ...]
    #: blob digest -> disk usage of its data file and directory, when the
    #: storage is readable (None otherwise): what the collector frees.
    blob_disk: Mapping[str, int] | None = field(default=None, hash=False)


@dataclass(frozen=True)
class Deletion:
    """One manifest to delete (DELETE /v2/<repository>/manifests/<digest>).

    `tags` are every tag that pointed at the digest when planned: deleting the
    digest deletes them all. `children` are the manifests of a deleted index
    that nothing kept lists; they are deleted after it, so that a failure
    never leaves a kept index without its children. `bytes` counts the blobs
    only this deletion holds: what no kept manifest references.
    """

    registry: str
    repository: str
    digest: str
    media_type: str
    tags: tuple[str, ...]
    reason: str
    bytes: int
    children: tuple[str, ...] = ()
    #: For a referrer (a signature, an SBOM): the digest it refers to, deleted
    #: earlier in the plan. Apply deletes the referrer only if that one went.
    follows: str | None = None
    #: Only the tag goes (its digest stays, another tag keeps it): untag.py.
    untag_only: bool = False
    #: What the filesystem gains (du), files and directories that go included;
    #: None without access to the storage.
    disk_bytes: int | None = None

    @property
    def name(self) -> str:
        return f"{self.repository}:{','.join(self.tags)}" if self.tags else self.repository

    @property
    def precondition(self) -> str:
        if self.untag_only:
            return f"tag {self.tags[0]} still points at {self.digest}, and a kept tag too"
        if not self.tags:
            return f"no tag points at {self.digest}"
        return f"tags {', '.join(self.tags)} still point at {self.digest}, and no other tag does"


@dataclass(frozen=True)
class KeptTag:
    registry: str
    repository: str
    tag: str
    digest: str
    reason: str


@dataclass(frozen=True)
class RegistryPlan:
    created_at: datetime
    registries: tuple[str, ...]
    deletions: tuple[Deletion, ...]
    kept: tuple[KeptTag, ...] = ()
    #: (registry, repository) left with no manifest at all by the plan.
    emptied: tuple[tuple[str, str], ...] = ()

    @property
    def total_bytes(self) -> int:
        return sum(d.bytes for d in self.deletions)

    @property
    def total_disk_bytes(self) -> int | None:
        """What the filesystem gains, when every deletion's storage was read."""
        sizes = [d.disk_bytes for d in self.deletions]
        return None if not sizes or None in sizes else sum(s or 0 for s in sizes)


@dataclass(frozen=True)
class DeletionOutcome:
    deletion: Deletion
    result: Result
    detail: str = ""


@dataclass(frozen=True)
class RegistryOutcome:
    plan: RegistryPlan
    results: tuple[DeletionOutcome, ...]
    started_at: datetime
    finished_at: datetime

    def count(self, result: Result) -> int:
        return sum(1 for r in self.results if r.result is result)

    @property
    def removed_bytes_predicted(self) -> int:
        return sum(r.deletion.bytes for r in self.results if r.result is Result.REMOVED)
