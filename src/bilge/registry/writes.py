"""The few writes bilge makes to a registry besides DELETE: what `untag`
needs (client.py holds the reads and the DELETE, and stays under 400 lines).

Each goes through the client's own request path, so with its deadline, size
limit, authentication and one-line errors (client.py's docstring).
"""

from __future__ import annotations

import hashlib
from urllib.parse import urlsplit

from bilge.registry.client import RegistryClient
from bilge.registry.errors import RegistryError, RegistryReadOnly

#: No manifest has this digest (it is not the hash of anything known): a
#: DELETE of it asks whether deletes are enabled without deleting anything.
NO_SUCH_DIGEST = "sha256:" + "0" * 64


def deletes_enabled(client: RegistryClient, repository: str) -> bool:
    """Whether the registry deletes manifests, asked without deleting one:
    distribution answers 404 for an unknown manifest when deletes are enabled,
    405 when they are not (or it is read-only)."""
    what = f"check that {repository} accepts deletes"
    response = client._send("DELETE", f"/v2/{repository}/manifests/{NO_SUCH_DIGEST}", what)
    if response.status_code == 405:
        return False
    client._check(response, what, "delete", ok=(404, 202))
    return True


def push_blob(client: RegistryClient, repository: str, data: bytes) -> str:
    """Upload a small blob in one request (skipped when it is there); its digest."""
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    what = f"push blob {digest[:19]} to {repository}"
    there = client._send("HEAD", f"/v2/{repository}/blobs/{digest}", what)
    if there.status_code == 200:
        return digest
    started = client._send("POST", f"/v2/{repository}/blobs/uploads/", what)
    client._check(started, what, "push", ok=(202,))
    location = started.headers.get("location", "")
    if not location:
        raise RegistryError(f"registry {client.label}: {what}: no upload location")
    target = urlsplit(str(started.url.join(location)))
    if target.netloc != started.url.netloc.decode():
        raise RegistryError(f"registry {client.label}: {what}: upload on another host")
    query = f"{target.query}&" if target.query else ""
    done = client._send(
        "PUT",
        f"{target.path}?{query}digest={digest}",
        what,
        headers={"Content-Type": "application/octet-stream"},
        content=data,
    )
    client._check(done, what, "push", ok=(201,))
    return digest


def push_manifest(
    client: RegistryClient, repository: str, reference: str, media_type: str, body: bytes
) -> str:
    """PUT a manifest as `reference` (a tag); its digest. RegistryReadOnly when
    the registry takes no pushes."""
    what = f"push a manifest to {repository}:{reference}"
    response = client._send(
        "PUT",
        f"/v2/{repository}/manifests/{reference}",
        what,
        headers={"Content-Type": media_type},
        content=body,
    )
    if response.status_code == 405:
        raise RegistryReadOnly(f"registry {client.label} refused to {what} (405): read-only")
    client._check(response, what, "push", ok=(201,))
    return "sha256:" + hashlib.sha256(body).hexdigest()
