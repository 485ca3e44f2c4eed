"""libpod's API as bilge speaks it: its paths, and what its answers mean.

Shared by podman.py (the engine), connect.py (which tells Podman from Docker) and
the prefetch (whose readers ask the same).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from bilge.engine.base import JSONObject
from bilge.errors import EngineError, ObjectConflict, ObjectGone

#: The libpod API version bilge speaks; its paths must carry one (the bare path is 404).
LIBPOD = "/v4.0.0/libpod"
#: The Docker API version of Podman's compatible API: 1.41 in Podman 4 and 5 (every
#: answer says so in its Api-Version header), the oldest bilge speaks.
COMPATIBLE_API = "1.41"
#: libpod's listing of every container, in any state.
LIST_CONTAINERS, ALL_STATES = "/containers/json", {"all": "true"}
#: What Podman's 500 says when an object cannot go without force (Docker answers 409):
#: an image in use or with several tags, a running container, a volume in use, a
#: pod's infra container.
_CONFLICTS = (
    "more than one tag",
    "in use",
    "image used by",
    "has dependent",
    "state improper",
    "without force",
    "being used",
    "without removing the pod",
)


def is_podman(version: JSONObject) -> bool:
    """True when a /version answer is Podman's (its components name it)."""
    components = version.get("Components")
    if not isinstance(components, list):
        return False
    return any(isinstance(c, dict) and c.get("Name") == "Podman Engine" for c in components)


def section(doc: JSONObject, key: str) -> JSONObject:
    value = doc.get(key)
    return value if isinstance(value, dict) else {}


def objects(value: object) -> list[JSONObject]:
    """The JSON objects of a list in an answer; anything else in it, or instead of
    it, is left out (the planner never sees half-read entries as facts)."""
    return [v for v in value if isinstance(v, dict)] if isinstance(value, list) else []


def bare_id(image_id: str) -> str:
    return image_id.removeprefix("sha256:")


def with_prefix(ident: str) -> str:
    """Podman names images by bare hex ids; bilge's model (like Docker) by "sha256:..."."""
    is_hex = len(ident) == 64 and all(c in "0123456789abcdef" for c in ident)
    return f"sha256:{ident}" if is_hex else ident


def location_in(libpod_info: JSONObject) -> tuple[str, str, str]:
    """(graph root, driver, volume path) from libpod's /info."""
    store = section(libpod_info, "store")
    keys = ("graphRoot", "graphDriverName", "volumePath")
    return (
        str(store.get(keys[0]) or ""),
        str(store.get(keys[1]) or ""),
        str(store.get(keys[2]) or ""),
    )


@contextmanager
def conflicts() -> Iterator[None]:
    """Podman's 500 for "not without force" as Docker's 409: a refusal, not a failure."""
    try:
        yield
    except (ObjectGone, ObjectConflict):
        raise
    except EngineError as exc:
        if not any(phrase in str(exc) for phrase in _CONFLICTS):
            raise
        raise ObjectConflict(str(exc)) from exc


def compatible_container(
    item: JSONObject, mounts: tuple[tuple[str, str], ...], volume_path: str
) -> JSONObject:
    """One container of libpod's listing in the compatible listing's names, with
    its volume mounts (bind mounts are left out: nothing in bilge reads them)."""
    out: JSONObject = {
        key: item.get(key) for key in ("Id", "Names", "Image", "Created", "State", "Labels")
    }
    out["ImageID"] = with_prefix(str(item.get("ImageID") or ""))
    out["Status"] = ""
    networks = item.get("Networks")
    names = [n for n in networks if isinstance(n, str)] if isinstance(networks, list) else []
    out["NetworkSettings"] = {"Networks": {n: {} for n in names}}
    out["Mounts"] = [
        {
            "Type": "volume",
            "Name": name,
            "Source": f"{volume_path}/{name}/_data" if volume_path else "",
            "Destination": dest,
        }
        for name, dest in mounts
    ]
    out.update(libpod_extras(item))
    return out


def libpod_extras(item: JSONObject) -> JSONObject:
    """What libpod's listing says of a container that the compatible one does not:
    its finishing time (the compatible one has only "Exited (0) 5 minutes ago"), and
    the pod it is the infra container of (Podman refuses to remove that one alone)."""
    extras: JSONObject = {}
    exited = item.get("ExitedAt")
    if isinstance(exited, int) and exited > 0:
        extras["FinishedAt"] = exited
    if item.get("IsInfra") is True:
        extras["InfraOfPod"] = str(item.get("PodName") or item.get("Pod") or "?")
    return extras
