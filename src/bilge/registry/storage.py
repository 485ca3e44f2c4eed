"""What a registry's filesystem storage tells that its API does not.

The Registry API v2 lists tags, never the manifests no tag points at, and
says nothing of when anything was pushed. distribution's filesystem storage
keeps both (docker/registry/v2 under `storage.filesystem.rootdirectory`):

    repositories/REPO/_manifests/revisions/sha256/HEX/link   one per manifest pushed
    repositories/REPO/_manifests/tags/TAG/...                one directory per tag
    blobs/sha256/HE/HEX/data                                 every blob, manifests too

A revision link is written when its manifest is pushed (again), so its mtime
is the push time; a deleted manifest loses its link file, its directory
stays. Disk usage is counted as du counts it (st_blocks * 512): what the
filesystem gains when the file goes, block rounding included.

Only read here, never written: deletions go through the API. Whatever cannot
be read is an error that names the path, since a manifest bilge did not see
could be one a kept image needs.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml

from bilge.errors import ConfigError
from bilge.registry.errors import RegistryError
from bilge.registry.model import DIGEST_RE, OCI_INDEX, OCI_MANIFEST, REPOSITORY_RE, RepoStorage
from bilge.registry.policy import RegistryConfig
from bilge.report.text import printable

V2 = Path("docker/registry/v2")
#: A manifest in the storage is a blob like any other; distribution refuses
#: manifests above 4 MiB.
MAX_MANIFEST_BYTES = 4 << 20


def storage_root(config: RegistryConfig) -> Path:
    """The storage directory `[registry.gc] config` names; ConfigError when
    there is none to read (another storage driver, no such file)."""
    where = f"registry {config.label}"
    if config.gc is None:
        raise ConfigError(f"{where}: reading its storage needs a [registry.gc] table")
    path = Path(config.gc.config)
    try:
        doc: Any = yaml.safe_load(path.read_bytes())
    except OSError as exc:
        raise ConfigError(f"{where}: registry config {path}: {exc.strerror or exc}") from exc
    except yaml.YAMLError as exc:
        first = str(exc).splitlines()[0]
        raise ConfigError(f"{where}: registry config {path}: not YAML: {first}") from exc
    storage = doc.get("storage") if isinstance(doc, dict) else None
    fs = storage.get("filesystem") if isinstance(storage, dict) else None
    root = fs.get("rootdirectory") if isinstance(fs, dict) else None
    if not isinstance(root, str) or not root:
        raise ConfigError(
            f"{where}: registry config {path} has no storage.filesystem.rootdirectory: "
            "untagged manifests and push times are read from filesystem storage only"
        )
    if not (Path(root) / V2).is_dir():
        raise ConfigError(f"{where}: storage {root}: no {V2} directory, or not readable")
    return Path(root)


def read_repository(root: Path, repository: str) -> RepoStorage:
    """Revisions (with push times) and tag directories of `repository`."""
    if not REPOSITORY_RE.fullmatch(repository):
        # The name comes from the registry's catalog: never a path out of the storage.
        raise RegistryError(f"storage: {printable(repository)!r} is not a repository name")
    base = root / V2 / "repositories" / repository / "_manifests"
    pushed: dict[str, datetime] = {}
    links: dict[str, int] = {}
    for digest, link in _revision_links(base / "revisions" / "sha256"):
        st = _lstat(link)
        if st is not None:
            pushed[digest] = datetime.fromtimestamp(st.st_mtime, UTC)
            links[digest] = st.st_blocks * 512
    tags: dict[str, int] = {}
    for entry in _entries(base / "tags"):
        if entry.is_dir(follow_symlinks=False):
            tags[entry.name] = disk_usage(Path(entry.path))
    return RepoStorage(pushed, links, tags)


def _revision_links(directory: Path) -> Iterator[tuple[str, Path]]:
    for entry in _entries(directory):
        digest = f"sha256:{entry.name}"
        link = Path(entry.path) / "link"
        if not DIGEST_RE.fullmatch(digest):
            continue
        try:
            said = link.read_text(encoding="ascii").strip()
        except FileNotFoundError:
            continue  # a deleted manifest: distribution leaves its directory
        except (OSError, UnicodeError) as exc:
            raise RegistryError(f"storage: cannot read {link}: {exc}") from exc
        if said != digest:
            raise RegistryError(f"storage: {link} says {said[:80]!r}, not {digest}")
        yield digest, link


def blob_disk(root: Path, digest: str) -> int | None:
    """Disk usage of a blob's data file and its own directory (both go when the
    registry's garbage collector deletes it); None when it is not there."""
    directory = _blob_dir(root, digest)
    data = _lstat(directory / "data")
    own = _lstat(directory)
    if data is None or own is None:
        return None
    return (data.st_blocks + own.st_blocks) * 512


def read_blob(root: Path, digest: str, limit: int = MAX_MANIFEST_BYTES) -> bytes:
    """A small blob (a manifest, an image config), checked against its digest."""
    path = _blob_dir(root, digest) / "data"
    try:
        with path.open("rb") as f:
            body = f.read(limit + 1)
    except OSError as exc:
        raise RegistryError(f"storage: cannot read {path}: {exc.strerror or exc}") from exc
    if len(body) > limit:
        raise RegistryError(f"storage: {path}: larger than {limit} bytes")
    if "sha256:" + hashlib.sha256(body).hexdigest() != digest:
        raise RegistryError(f"storage: {path}: content does not match its digest")
    return body


def media_type_of(doc: Mapping[str, object]) -> str:
    """A stored manifest's type: its own `mediaType`, else (OCI makes it
    optional) what its fields say it is."""
    said = doc.get("mediaType")
    if isinstance(said, str) and said:
        return said
    if "manifests" in doc:
        return OCI_INDEX
    return OCI_MANIFEST if "config" in doc else ""


def disk_usage(path: Path) -> int:
    """du of `path`: its own blocks and those of everything under it."""
    st = _lstat(path)
    total = st.st_blocks * 512 if st is not None else 0
    stack = [path] if st is not None and os.path.isdir(path) else []
    while stack:
        for entry in _entries(stack.pop()):
            total += entry.stat(follow_symlinks=False).st_blocks * 512
            if entry.is_dir(follow_symlinks=False):
                stack.append(Path(entry.path))
    return total


def _blob_dir(root: Path, digest: str) -> Path:
    hexa = digest.removeprefix("sha256:")
    return root / V2 / "blobs" / "sha256" / hexa[:2] / hexa


def _lstat(path: Path) -> os.stat_result | None:
    try:
        return path.lstat()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise RegistryError(f"storage: cannot read {path}: {exc.strerror or exc}") from exc


def _entries(directory: Path) -> list[os.DirEntry[str]]:
    try:
        with os.scandir(directory) as it:
            return sorted(it, key=lambda e: e.name)
    except FileNotFoundError:
        return []
    except OSError as exc:
        raise RegistryError(f"storage: cannot read {directory}: {exc.strerror or exc}") from exc
