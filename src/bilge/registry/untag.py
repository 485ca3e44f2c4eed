"""Remove one tag, not its digest (`untag_shared = true`).

The Registry API deletes manifests, by digest, and with them every tag
pointing at them: a tag sharing its digest with a kept tag cannot be deleted
alone. So, the way regclient does it: the tag is pointed at a throwaway
manifest of its own (unique, so no other tag points at it), and that one is
deleted by digest; the tag goes with it, the shared digest and its other
tags stay.

Safety: nothing is pushed unless the registry deletes (a DELETE of a digest
that exists nowhere answers 404, not 405), the tag is resolved again just
before the push, and the throwaway is deleted whatever happens after it was
pushed (try/finally). A run killed in between leaves the throwaway: it
carries the THROWAWAY_ANNOTATION, and the next plan deletes it, whatever
the rules (planner.py). A registry that refuses the push (read-only) leaves
everything as it was.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping

from bilge.model import Result
from bilge.registry.client import RegistryClient
from bilge.registry.errors import RegistryError
from bilge.registry.model import OCI_MANIFEST, THROWAWAY_ANNOTATION, Deletion
from bilge.registry.writes import deletes_enabled, push_blob, push_manifest

#: The OCI "empty" descriptor's content: the throwaway's config and only layer.
EMPTY = b"{}"
EMPTY_TYPE = "application/vnd.oci.empty.v1+json"
ARTIFACT_TYPE = "application/vnd.bilge.untag.throwaway.v1"


def untag(
    client: RegistryClient, deletion: Deletion, tags_now: Mapping[str, str]
) -> tuple[Result, str]:
    """Remove `deletion`'s one tag, keeping its digest; (result, detail)."""
    repo, tag, digest = deletion.repository, deletion.tags[0], deletion.digest
    kept = sorted(t for t, d in tags_now.items() if d == digest and t != tag)
    if not kept:
        return Result.SKIPPED, f"no other tag points at {digest[:19]} now"
    try:
        if not deletes_enabled(client, repo):
            return Result.FAILED, "deletes disabled or registry read-only: tag left as it was"
        body = throwaway(client, repo, tag)
        now = client.resolve(repo, tag)
        if now is None:
            return Result.SKIPPED, "already gone"
        if now.digest != digest:
            return Result.SKIPPED, f"tag {tag!r} moved to {now.digest[:19]} since the plan"
        return _swap(client, deletion, body, kept[0])
    except RegistryError as exc:
        return Result.FAILED, str(exc)


def throwaway(client: RegistryClient, repository: str, tag: str) -> bytes:
    """A manifest no other could equal (a fresh id in its annotation), its blob pushed."""
    config = push_blob(client, repository, EMPTY)
    descriptor = {"mediaType": EMPTY_TYPE, "digest": config, "size": len(EMPTY)}
    doc = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "artifactType": ARTIFACT_TYPE,
        "config": descriptor,
        "layers": [descriptor],
        "annotations": {THROWAWAY_ANNOTATION: f"{tag} {uuid.uuid4()}"},
    }
    return json.dumps(doc, sort_keys=True).encode()


def _swap(client: RegistryClient, deletion: Deletion, body: bytes, kept: str) -> tuple[Result, str]:
    """Point the tag at the throwaway, then delete the throwaway (always)."""
    repo, tag = deletion.repository, deletion.tags[0]
    pushed = push_manifest(client, repo, tag, OCI_MANIFEST, body)
    try:
        still = client.resolve(repo, kept)
    finally:
        client.delete_manifest(repo, pushed)
    after = client.resolve(repo, tag)
    if after is not None:
        return Result.FAILED, f"tag {tag!r} still points at {after.digest[:19]}"
    if still is None or still.digest != deletion.digest:
        # Only the throwaway was touched; say what was seen, for the audit log.
        return Result.REMOVED, f"untagged; note: kept tag {kept!r} moved meanwhile"
    return Result.REMOVED, f"untagged only; {kept!r} still points at {deletion.digest[:19]}"
