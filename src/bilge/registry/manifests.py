"""Manifests and image configs as the registry sends them -> `Manifest`.

Registry answers are input like any other: checked, and anything malformed
is one `RegistryError` line naming the repository and digest. A manifest of a
media type bilge does not know is not an error: it becomes an unsupported
`Manifest`, which the planner never deletes.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime

from bilge.registry.errors import RegistryError
from bilge.registry.model import (
    DIGEST_RE,
    DOCKER_MANIFEST,
    INDEX_TYPES,
    OCI_MANIFEST,
    THROWAWAY_ANNOTATION,
    Blob,
    Manifest,
)
from bilge.safejson import loads_json
from bilge.timeparse import parse_time

IMAGE_CONFIG_TYPES = frozenset(
    {"application/vnd.oci.image.config.v1+json", "application/vnd.docker.container.image.v1+json"}
)
CREATED_ANNOTATION = "org.opencontainers.image.created"


def parse_manifest(where: str, digest: str, content_type: str, body: bytes) -> Manifest:
    """The manifest `body` (served as `content_type`) of `where` ("repo@digest")."""
    doc = _json_object(where, body)
    media_type = content_type.split(";", maxsplit=1)[0].strip() or str(doc.get("mediaType") or "")
    if media_type in INDEX_TYPES:
        return _index(where, digest, media_type, doc, len(body))
    if media_type in (OCI_MANIFEST, DOCKER_MANIFEST):
        return _image(where, digest, media_type, doc, len(body))
    return Manifest(digest, media_type or "(none)", len(body), supported=False)


def with_config(where: str, manifest: Manifest, body: bytes) -> Manifest:
    """`manifest` with the creation time and labels of its image config `body`."""
    doc = _json_object(where, body)
    config = doc.get("config")
    labels = config.get("Labels") if isinstance(config, dict) else None
    if not isinstance(labels, dict):
        labels = {}
    return replace(
        manifest,
        created=_time(where, doc.get("created")) or manifest.created,
        labels={str(k): str(v) for k, v in labels.items()},
    )


def with_children_time(manifest: Manifest, children: list[Manifest]) -> Manifest:
    """An index is as new as its newest platform image, unless it says itself."""
    if manifest.created is not None:
        return manifest
    times = [c.created for c in children if c.created is not None]
    return replace(manifest, created=max(times)) if times else manifest


def _index(where: str, digest: str, media_type: str, doc: dict[str, object], size: int) -> Manifest:
    entries = _list(where, doc, "manifests")
    children = tuple(_descriptor(where, e, f"manifests[{i}]").digest for i, e in enumerate(entries))
    nested = tuple(
        child
        for child, entry in zip(children, entries, strict=True)
        if isinstance(entry, dict) and entry.get("mediaType") in INDEX_TYPES
    )
    return Manifest(
        digest,
        media_type,
        size,
        children=children,
        nested=nested,
        subject=_subject(where, doc),
        created=_annotated_time(where, doc),
    )


def _image(where: str, digest: str, media_type: str, doc: dict[str, object], size: int) -> Manifest:
    config = _descriptor(where, doc.get("config"), "config")
    entries = _list(where, doc, "layers")
    layers = [_descriptor(where, e, f"layers[{i}]") for i, e in enumerate(entries)]
    # Only an image config says when the image was made; an artifact's does not.
    config_type = doc["config"].get("mediaType") if isinstance(doc["config"], dict) else None
    return Manifest(
        digest,
        media_type,
        size,
        blobs=(config, *layers),
        config=config if config_type in IMAGE_CONFIG_TYPES else None,
        subject=_subject(where, doc),
        created=_annotated_time(where, doc),
        throwaway=_is_throwaway(doc),
    )


def _is_throwaway(doc: dict[str, object]) -> bool:
    notes = doc.get("annotations")
    return isinstance(notes, dict) and THROWAWAY_ANNOTATION in notes


def _json_object(where: str, body: bytes) -> dict[str, object]:
    try:
        doc = loads_json(body)
    except ValueError as exc:
        raise RegistryError(f"{where}: the registry sent something that is not JSON") from exc
    if not isinstance(doc, dict):
        raise RegistryError(f"{where}: expected a JSON object from the registry")
    return doc


def _list(where: str, doc: dict[str, object], key: str) -> list[object]:
    value = doc.get(key)
    if value is None:
        return []
    if not isinstance(value, list):
        raise RegistryError(f"{where}: {key} is not a list")
    return value


def _descriptor(where: str, value: object, key: str) -> Blob:
    if not isinstance(value, dict):
        raise RegistryError(f"{where}: {key} is not a descriptor")
    digest, size = value.get("digest"), value.get("size")
    if not isinstance(digest, str) or not DIGEST_RE.fullmatch(digest):
        raise RegistryError(f"{where}: {key}.digest {digest!r} is not a sha256 digest")
    if isinstance(size, bool) or not isinstance(size, int) or size < 0:
        raise RegistryError(f"{where}: {key}.size {size!r} is not a size")
    return Blob(digest, size)


def _subject(where: str, doc: dict[str, object]) -> str | None:
    return _descriptor(where, doc["subject"], "subject").digest if doc.get("subject") else None


def _annotated_time(where: str, doc: dict[str, object]) -> datetime | None:
    notes = doc.get("annotations")
    return _time(where, notes.get(CREATED_ANNOTATION)) if isinstance(notes, dict) else None


def _time(where: str, value: object) -> datetime | None:
    try:
        return parse_time(value)
    except ValueError as exc:
        raise RegistryError(f"{where}: creation time {value!r} is not a time") from exc
