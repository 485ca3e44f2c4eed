"""Reading Podman's storage (containers/storage) directly, when bilge runs on the host.

The same questions as dataroot.py asks of a dockerd data-root, answered from
containers/storage's own records under the graphRoot (/var/lib/containers/storage
for root, ~/.local/share/containers/storage rootless): `overlay-layers/layers.json`
(every layer, with its parent), `overlay-images/images.json` (each image's top layer),
`overlay-containers/containers.json` (each container's writable layer), the layers'
directories under `overlay/` (`vfs-*` and `vfs/dir/` with the vfs driver that rootless
Podman may use), and the volumes under the volume path (NAME/_data).
Every answer is None (or empty) when the files are not there, so callers fall back
to the engine's figures, and a volume not read whole "may hold data" as on Docker.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bilge.collect.datafiles import scan_dir
from bilge.collect.dataroot import (
    ContainerFiles,
    ReadAhead,
    VolumeScan,
    du,
    link_usage,
    mount_points,
    newest_mtime,
    own_blocks,
    read_bytes,
    remove_layer_dir,
    usage,
)
from bilge.safejson import loads_json

#: The graph drivers whose layout is read, and where each keeps its layers' folders:
#: overlay (rootful, and rootless on recent kernels) and vfs (rootless without overlay).
#: With another driver, sizes come from the API.
LAYER_FOLDERS = {"overlay": "overlay", "vfs": "vfs/dir"}


class ContainersStorage(ReadAhead):
    """The graphRoot of a local Podman, using the overlay driver."""

    def __init__(self, path: str, driver: str, volume_path: str = "") -> None:
        super().__init__()
        self.path = Path(path)
        self.driver = driver
        self.volume_path = Path(volume_path) if volume_path else self.path / "volumes"
        self._layers: dict[str, Any] | None = None
        self._images: dict[str, Any] | None = None
        self._containers: dict[str, Any] | None = None

    @staticmethod
    def readable(path: str) -> bool:
        """True when this process can read the storage's records here."""
        for driver in LAYER_FOLDERS:
            records = Path(path) / f"{driver}-layers"
            if records.is_dir() and os.access(records, os.R_OK | os.X_OK):
                return True
        return False

    @property
    def layer_folder(self) -> Path:
        return self.path / LAYER_FOLDERS.get(self.driver, self.driver)

    def container_ids(self) -> list[str]:
        """Every container the storage's records name."""
        return list(self._container_records())

    def _records(self, folder: str, name: str) -> dict[str, Any]:
        try:
            doc = loads_json(read_bytes(self.path / folder / name))
        except (OSError, ValueError):
            return {}
        items = doc if isinstance(doc, list) else []
        return {str(i["id"]): i for i in items if isinstance(i, dict) and "id" in i}

    def layers(self) -> dict[str, Any]:
        if self._layers is None:
            self._layers = self._records(f"{self.driver}-layers", "layers.json")
            self._layers.update(self._records(f"{self.driver}-layers", "volatile-layers.json"))
        return self._layers

    def _image_records(self) -> dict[str, Any]:
        if self._images is None:
            self._images = self._records(f"{self.driver}-images", "images.json")
        return self._images

    def _container_records(self) -> dict[str, Any]:
        if self._containers is None:
            folder = f"{self.driver}-containers"
            self._containers = self._records(folder, "containers.json")
            self._containers.update(self._records(folder, "volatile-containers.json"))
        return self._containers

    def _layer_usage(self, layer_id: str) -> tuple[int, int]:
        """Bytes and inodes of a layer's directory, its short link and its tar-split."""
        ldir = os.path.join(self.layer_folder, layer_id)
        split = self.path / f"{self.driver}-layers" / f"{layer_id}.tar-split.gz"
        parts = (usage(ldir), link_usage(ldir), usage(split))
        return sum(b for b, _ in parts), sum(i for _, i in parts)

    def container(self, container_id: str) -> ContainerFiles:
        if container_id in self._known_containers:
            return self._known_containers[container_id]
        record = self._container_records().get(container_id) or {}
        cdir = os.path.join(self.path, f"{self.driver}-containers", container_id)
        dir_bytes, dir_inodes = usage(cdir)
        layer_id = str(record.get("layer") or "")
        layer = self._layer_usage(layer_id) if layer_id else None
        log_path = os.path.join(cdir, "userdata", "ctr.log")
        has_log = os.path.lexists(log_path)
        return ContainerFiles(
            dir_bytes=dir_bytes,
            layer_bytes=layer[0] if layer else None,
            inodes=dir_inodes + (layer[1] if layer else 0),
            finished=None,  # libpod's database has it; the engine's listing gives it
            log_path=log_path if has_log else "",
            log_driver="k8s-file" if has_log else "",
            log_file_bytes=own_blocks(log_path) if has_log else 0,
        )

    def image_layers(self, image_id: str) -> tuple[str, ...] | None:
        """The image's layer ids, bottom first (from its top layer, parent by parent)."""
        record = self._image_records().get(image_id.removeprefix("sha256:"))
        if record is None:
            return None
        layers, chain = self.layers(), []
        layer = str(record.get("layer") or "")
        while layer and layer not in chain:
            chain.append(layer)
            layer = str((layers.get(layer) or {}).get("parent") or "")
        return tuple(f"layer:{lid}" for lid in reversed(chain))

    def layer_bytes(self, chain_id: str) -> int | None:
        layer_id = chain_id.removeprefix("layer:")
        if not os.path.isdir(os.path.join(self.layer_folder, layer_id)):
            size = (self.layers().get(layer_id) or {}).get("diff-size")
            return size if isinstance(size, int) else None
        return self._layer_usage(layer_id)[0]

    def image_meta_bytes(self, image_id: str) -> int:
        """Its folder under overlay-images: manifest, config and signatures."""
        return du(self.path / f"{self.driver}-images" / image_id.removeprefix("sha256:"))

    def volume_dir(self, name: str) -> Path:
        return self.volume_path / name

    def scan_volume(self, name: str, mountpoint: str) -> VolumeScan | None:
        data = Path(mountpoint)
        vdir = self.volume_dir(name)
        if name in self._known_volumes and data == vdir / "_data":
            return self._known_volumes[name]
        if data != vdir / "_data" or not data.is_dir():
            return None
        return scan_dir(data), own_blocks(vdir) + own_blocks(data)

    # --- orphaned layer directories -------------------------------------------------

    def layer_references(self) -> frozenset[str] | None:
        """Every layer id the storage's records name; None when they cannot be read."""
        try:
            read_bytes(self.path / f"{self.driver}-layers" / "layers.json")
        except OSError:
            return None
        self._layers = None
        return frozenset(self.layers())

    def orphans(self) -> list[tuple[str, int, datetime]] | None:
        """(name, bytes, last modified) of each directory under overlay/ that no layer
        record names; None when the records cannot be read."""
        refs = self.layer_references()
        if refs is None or self.driver not in LAYER_FOLDERS:
            return None
        folder = self.layer_folder
        try:
            names = sorted(
                e.name
                for e in os.scandir(folder)
                if e.is_dir(follow_symlinks=False) and e.name != "l" and e.name not in refs
            )
        except OSError:
            return None
        out = []
        for name in names:
            modified = self.orphan_modified(name)
            if modified is not None:
                out.append((name, du(folder / name) + link_usage(folder / name)[0], modified))
        return out

    def orphan_modified(self, name: str) -> datetime | None:
        try:
            return datetime.fromtimestamp(newest_mtime(self.layer_folder / name), UTC)
        except OSError:
            return None

    def orphan_still_unused(self, name: str) -> str:
        refs = self.layer_references()
        if refs is None:
            return "the layer records cannot be read"
        if name in refs:
            return "referenced again"
        path = os.path.realpath(self.layer_folder / name)
        if any(mp == path or mp.startswith(path + "/") for mp in mount_points()):
            return "something is mounted in it"
        return ""

    def remove_orphan(self, name: str) -> None:
        remove_layer_dir(self.layer_folder, name)
