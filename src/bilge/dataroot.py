"""Reading the engine's data-root directly, when bilge runs on the host as root.

The Engine API cannot say how many bytes removing an object frees on disk,
nor what a volume holds. The data-root can: these functions read the layer
database, container directories and volume contents. Every function returns
None (or an empty answer) when the files are not there, so callers fall
back to the engine's own figures.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from bilge.datafiles import DirScan, scan_dir
from bilge.timeparse import parse_time


@dataclass(frozen=True)
class ContainerFiles:
    """What a container's directories hold on disk."""

    dir_bytes: int  # containers/<id>: logs, config, hostname, ...
    layer_bytes: int | None  # its writable layer (and init layer) in the driver's folder
    finished: datetime | None
    log_path: str


#: A volume's content and the bytes of its own folders.
VolumeScan = tuple[DirScan, int]


class DataRoot:
    """The data-root of a local engine using `driver` (e.g. overlay2)."""

    def __init__(self, path: str, driver: str) -> None:
        self.path = Path(path)
        self.driver = driver
        self._layerdb = self.path / "image" / driver / "layerdb"
        self._known_containers: Mapping[str, ContainerFiles] = {}
        self._known_volumes: Mapping[str, VolumeScan | None] = {}

    def adopt(
        self, containers: Mapping[str, ContainerFiles], volumes: Mapping[str, VolumeScan | None]
    ) -> None:
        """Answers already read (by prefetch.py's child) for these containers and volumes."""
        self._known_containers, self._known_volumes = containers, volumes

    @staticmethod
    def readable(path: str) -> bool:
        """True when this process can read the data-root (same host, enough rights)."""
        root = Path(path)
        return (root / "containers").is_dir() and os.access(root / "containers", os.R_OK | os.X_OK)

    def container(self, container_id: str) -> ContainerFiles:
        if container_id in self._known_containers:
            return self._known_containers[container_id]
        cdir = self.path / "containers" / container_id
        finished, log_path = _read_container_config(cdir / "config.v2.json")
        return ContainerFiles(
            dir_bytes=du(cdir),
            layer_bytes=self._container_layer_bytes(container_id),
            finished=finished,
            log_path=log_path,
        )

    def _container_layer_bytes(self, container_id: str) -> int | None:
        mount_id = _read_text(self._layerdb / "mounts" / container_id / "mount-id")
        if not mount_id:
            return None
        layer_dir = self.path / self.driver / mount_id
        return (
            du(layer_dir)
            + du(layer_dir.with_name(mount_id + "-init"))
            + du(self._layerdb / "mounts" / container_id)
        )

    def image_layers(self, image_id: str) -> tuple[str, ...] | None:
        """Chain ids of the image's layers, bottom first."""
        hex_id = image_id.removeprefix("sha256:")
        config = self.path / "image" / self.driver / "imagedb" / "content" / "sha256" / hex_id
        try:
            doc = json.loads(config.read_bytes())
            diff_ids = [str(d) for d in doc["rootfs"]["diff_ids"]]
        except (OSError, ValueError, KeyError, TypeError):
            return None
        return chain_ids(diff_ids)

    def layer_bytes(self, chain_id: str) -> int | None:
        """Disk usage of one layer: its directory in the driver's folder and its
        record in the layer database."""
        ldir = self._layerdb / "sha256" / chain_id.removeprefix("sha256:")
        cache_id = _read_text(ldir / "cache-id")
        if cache_id and (self.path / self.driver / cache_id).is_dir():
            return du(self.path / self.driver / cache_id) + du(ldir)
        size = _read_text(ldir / "size")
        return int(size) if size and size.isdigit() else None

    def image_meta_bytes(self, image_id: str) -> int:
        """Disk usage of the image's own records: its config and metadata."""
        hex_id = image_id.removeprefix("sha256:")
        imagedb = self.path / "image" / self.driver / "imagedb"
        return du(imagedb / "content" / "sha256" / hex_id) + du(
            imagedb / "metadata" / "sha256" / hex_id
        )

    def volume_dir(self, name: str) -> Path:
        return self.path / "volumes" / name

    def scan_volume(self, name: str, mountpoint: str) -> VolumeScan | None:
        """Scan a local volume's content; also returns the bytes of its own folders."""
        data = Path(mountpoint)
        vdir = self.volume_dir(name)
        if name in self._known_volumes and data == vdir / "_data":
            return self._known_volumes[name]
        if data.parent != vdir or not data.is_dir():
            return None
        return scan_dir(data), _own_blocks(vdir) + _own_blocks(data)


def chain_ids(diff_ids: list[str]) -> tuple[str, ...]:
    """Layer chain ids from diff ids, as the layer store names them."""
    chain: list[str] = []
    for diff in diff_ids:
        if not chain:
            chain.append(diff)
            continue
        text = f"{chain[-1]} {diff}"
        chain.append("sha256:" + hashlib.sha256(text.encode()).hexdigest())
    return tuple(chain)


def du(path: Path) -> int:
    """Bytes `path` and everything under it occupy on disk (0 when missing)."""
    if not path.exists():
        return 0
    return scan_dir(path, max_depth=0).bytes + _own_blocks(path)


def _own_blocks(path: Path) -> int:
    try:
        return path.lstat().st_blocks * 512
    except OSError:
        return 0


def _read_text(path: Path) -> str:
    try:
        return path.read_text().strip()
    except OSError:
        return ""


def _read_container_config(path: Path) -> tuple[datetime | None, str]:
    try:
        doc = json.loads(path.read_bytes())
        state = doc.get("State") or {}
        return parse_time(state.get("FinishedAt")), str(doc.get("LogPath") or "")
    except (OSError, ValueError, AttributeError):
        return None, ""
