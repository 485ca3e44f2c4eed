"""Which reader serves an engine's storage: chosen by what the engine says it is.

`Capabilities.storage` names the layout: a dockerd data-root (dataroot.py) or
Podman's containers/storage (cstorage.py). Both answer the same questions
(`Storage`), so collect and apply never look at which engine they have.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import Protocol

from bilge.collect.cstorage import ContainersStorage
from bilge.collect.dataroot import ContainerFiles, DataRoot, VolumeScan
from bilge.engine.base import Capabilities


class Storage(Protocol):
    """What bilge reads beside the API from a local engine's storage."""

    path: Path
    driver: str

    def adopt(
        self, containers: Mapping[str, ContainerFiles], volumes: Mapping[str, VolumeScan | None]
    ) -> None: ...
    def container(self, container_id: str) -> ContainerFiles: ...
    def image_layers(self, image_id: str) -> tuple[str, ...] | None: ...
    def layer_bytes(self, chain_id: str) -> int | None: ...
    def image_meta_bytes(self, image_id: str) -> int: ...
    def scan_volume(self, name: str, mountpoint: str) -> VolumeScan | None: ...
    def orphans(self) -> list[tuple[str, int, datetime]] | None: ...
    def orphan_modified(self, name: str) -> datetime | None: ...
    def orphan_still_unused(self, name: str) -> str: ...
    def remove_orphan(self, name: str) -> None: ...


def readable(caps: Capabilities, path: str) -> bool:
    """True when this process can read the storage at `path` of such an engine."""
    if not path:
        return False
    if caps.storage == "containers-storage":
        return ContainersStorage.readable(path)
    return DataRoot.readable(path)


def open_storage(caps: Capabilities, path: str, driver: str, volume_path: str = "") -> Storage:
    """The reader for this engine's storage at `path`."""
    if caps.storage == "containers-storage":
        return ContainersStorage(path, driver, volume_path)
    return DataRoot(path, driver)
