"""Reading the engine's data-root directly, when bilge runs on the host as root.

The Engine API cannot say how many bytes removing an object frees on disk,
nor what a volume holds. The data-root can: these functions read the layer
database, container directories and volume contents. Every function returns
None (or an empty answer) when the files are not there, so callers fall
back to the engine's own figures.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import stat
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from bilge.collect.datafiles import DirScan, scan_dir
from bilge.safejson import loads_json
from bilge.timeparse import parse_time


@dataclass(frozen=True)
class ContainerFiles:
    """What a container's directories hold on disk."""

    dir_bytes: int  # containers/<id>: logs, config, hostname, ...
    layer_bytes: int | None  # its writable layer (and init layer) in the driver's folder
    finished: datetime | None
    log_path: str
    log_driver: str = ""
    log_max_size: str = ""
    log_file_bytes: int = 0
    inodes: int = 0  # of its folder and layers: what removing it gives back


#: A volume's content and the bytes of its own folders.
VolumeScan = tuple[DirScan, int]


class ReadAhead:
    """Answers prefetch.py's children read already, per container id and volume
    name, which a storage reader gives before reading anything itself."""

    def __init__(self) -> None:
        self._known_containers: Mapping[str, ContainerFiles] = {}
        self._known_volumes: Mapping[str, VolumeScan | None] = {}

    def adopt(
        self, containers: Mapping[str, ContainerFiles], volumes: Mapping[str, VolumeScan | None]
    ) -> None:
        """Answers already read (by prefetch.py's children) for these containers and volumes."""
        self._known_containers, self._known_volumes = containers, volumes


class DataRoot(ReadAhead):
    """The data-root of a local engine using `driver` (e.g. overlay2)."""

    def __init__(self, path: str, driver: str) -> None:
        super().__init__()
        self.path = Path(path)
        self.driver = driver
        self._layerdb = self.path / "image" / driver / "layerdb"

    @staticmethod
    def readable(path: str) -> bool:
        """True when this process can read the data-root (same host, enough rights)."""
        root = Path(path)
        return (root / "containers").is_dir() and os.access(root / "containers", os.R_OK | os.X_OK)

    def container(self, container_id: str) -> ContainerFiles:
        if container_id in self._known_containers:
            return self._known_containers[container_id]
        # Plain strings, not Paths: a crowded host is thousands of these joins.
        cdir = os.path.join(self.path, "containers", container_id)
        finished, log_path = _read_container_config(os.path.join(cdir, "config.v2.json"))
        driver, max_size = _read_log_config(os.path.join(cdir, "hostconfig.json"))
        dir_bytes, dir_inodes = usage(cdir)
        layer = self._container_layer(container_id)
        return ContainerFiles(
            dir_bytes=dir_bytes,
            layer_bytes=layer[0] if layer else None,
            inodes=dir_inodes + (layer[1] if layer else 0),
            finished=finished,
            log_path=log_path,
            log_driver=driver,
            log_max_size=max_size,
            log_file_bytes=own_blocks(log_path) if log_path else 0,
        )

    def _container_layer(self, container_id: str) -> tuple[int, int] | None:
        """Bytes and inodes of its writable and init layers and their records."""
        record = os.path.join(self._layerdb, "mounts", container_id)
        mount_id = read_text(os.path.join(record, "mount-id"))
        if not mount_id:
            return None
        layer_dir = os.path.join(self.path, self.driver, mount_id)
        init_dir = layer_dir + "-init"
        parts = (
            usage(layer_dir),
            link_usage(layer_dir),
            usage(init_dir),
            link_usage(init_dir),
            usage(record),
        )
        return sum(b for b, _ in parts), sum(i for _, i in parts)

    def image_layers(self, image_id: str) -> tuple[str, ...] | None:
        """Chain ids of the image's layers, bottom first."""
        hex_id = image_id.removeprefix("sha256:")
        config = self.path / "image" / self.driver / "imagedb" / "content" / "sha256" / hex_id
        try:
            doc = loads_json(config.read_bytes())
            diff_ids = [str(d) for d in doc["rootfs"]["diff_ids"]]
        except (OSError, ValueError, KeyError, TypeError):
            return None
        return chain_ids(diff_ids)

    def layer_bytes(self, chain_id: str) -> int | None:
        """Disk usage of one layer: its directory in the driver's folder and its
        record in the layer database."""
        ldir = self._layerdb / "sha256" / chain_id.removeprefix("sha256:")
        cache_id = read_text(ldir / "cache-id")
        layer_dir = self.path / self.driver / cache_id
        if cache_id and layer_dir.is_dir():
            return du(layer_dir) + link_usage(layer_dir)[0] + du(ldir)
        size = read_text(ldir / "size")
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
        return scan_dir(data), own_blocks(vdir) + own_blocks(data)

    # The orphan questions, as storage.py's `Storage` asks them of any engine.
    def orphans(self) -> list[tuple[str, int, datetime]] | None:
        return orphaned_layers(self)

    def orphan_modified(self, name: str) -> datetime | None:
        return orphan_modified(self, name)

    def orphan_still_unused(self, name: str) -> str:
        return orphan_still_unused(self, name)

    def remove_orphan(self, name: str) -> None:
        remove_orphan(self, name)


def looks_anonymous(name: str) -> bool:
    """An anonymous volume's name: 64 hex digits (Docker 23+ also labels them)."""
    return len(name) == 64 and all(c in "0123456789abcdef" for c in name)


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
    return usage(path)[0]


def usage(path: Path | str) -> tuple[int, int]:
    """Bytes and inodes of `path` and everything under it (0, 0 when missing)."""
    try:
        own = os.lstat(path)
    except OSError:
        return 0, 0
    if not stat.S_ISDIR(own.st_mode):
        return own.st_blocks * 512, 1
    scan = scan_dir(path, max_depth=0)
    return scan.bytes + own.st_blocks * 512, scan.inodes + 1


def link_usage(layer_dir: Path | str) -> tuple[int, int]:
    """The layer's short link in the driver's `l/` folder (overlay2): its target,
    "../<64 hex>/diff", is too long to live in the inode, so it takes a block."""
    short = read_text(os.path.join(layer_dir, "link"))
    if not short or "/" in short:
        return 0, 0
    try:
        st = os.lstat(os.path.join(os.path.dirname(layer_dir), "l", short))
    except OSError:
        return 0, 0
    return st.st_blocks * 512, 1


def own_blocks(path: Path | str) -> int:
    try:
        return os.lstat(path).st_blocks * 512
    except OSError:
        return 0


def read_bytes(path: Path | str) -> bytes:
    """A small file's content in as few system calls as it takes (open, reads, close):
    the data-root is thousands of them, and buffered text files add four more each."""
    fd = os.open(path, os.O_RDONLY)
    try:
        chunks = []
        while chunk := os.read(fd, 1 << 16):
            chunks.append(chunk)
        return b"".join(chunks)
    finally:
        os.close(fd)


def read_text(path: Path | str) -> str:
    try:
        return read_bytes(path).decode("utf-8", "surrogateescape").strip()
    except OSError:
        return ""


def _read_log_config(path: str) -> tuple[str, str]:
    """The container's log driver and max-size option (daemon defaults are merged
    into it when the container is created)."""
    try:
        log = loads_json(read_bytes(path)).get("LogConfig") or {}
        return str(log.get("Type") or ""), str((log.get("Config") or {}).get("max-size") or "")
    except (OSError, ValueError, AttributeError):
        return "", ""


def _read_container_config(path: str) -> tuple[datetime | None, str]:
    try:
        doc = loads_json(read_bytes(path))
        state = doc.get("State") or {}
        return parse_time(state.get("FinishedAt")), str(doc.get("LogPath") or "")
    except (OSError, ValueError, AttributeError):
        return None, ""


# --- orphaned layer directories ---------------------------------------------


def layer_references(root: DataRoot) -> frozenset[str] | None:
    """Every directory name in the driver's folder that something still uses: image
    layers (cache-id), containers' writable and init layers (mount-id, init-id), and
    any name BuildKit's databases mention (its cache lives in the same folder). None
    when any of it cannot be read: then nothing may be called an orphan."""
    layerdb = root.path / "image" / root.driver / "layerdb"
    refs: set[str] = set()
    try:
        for entry in os.scandir(layerdb / "sha256"):
            refs.add(read_bytes(os.path.join(entry.path, "cache-id")).decode().strip())
        for entry in os.scandir(layerdb / "mounts"):
            for name in ("mount-id", "init-id"):
                with contextlib.suppress(FileNotFoundError):  # a container without init layer
                    refs.add(read_bytes(os.path.join(entry.path, name)).decode().strip())
    except (OSError, UnicodeDecodeError):
        return None
    refs.discard("")
    return frozenset(refs)


def _buildkit_mentions(root: DataRoot, names: set[str]) -> set[str]:
    """Those of `names` that appear anywhere in BuildKit's state files (crude, but it
    can only keep too much, never remove too much)."""
    found: set[str] = set()
    for db in (root.path / "buildkit").glob("*.db"):
        try:
            data = db.read_bytes()
        except OSError:
            return set(names)  # unreadable: all of them may be BuildKit's
        found |= {n for n in names if n.encode() in data}
    return found


def orphaned_layers(root: DataRoot) -> list[tuple[str, int, datetime]] | None:
    """(name, bytes, last modified) of each unreferenced directory in the driver's
    folder; None when the references cannot be read (or the driver is not overlay2)."""
    if root.driver != "overlay2":
        return None
    refs = layer_references(root)
    if refs is None:
        return None
    folder = root.path / root.driver
    try:
        candidates = {
            e.name
            for e in os.scandir(folder)
            if e.is_dir(follow_symlinks=False) and e.name != "l" and e.name not in refs
        }
    except OSError:
        return None
    candidates -= _buildkit_mentions(root, candidates)
    out = []
    for name in sorted(candidates):
        path = folder / name
        try:
            modified = datetime.fromtimestamp(newest_mtime(path), UTC)
        except OSError:
            continue
        out.append((name, du(path) + link_usage(path)[0], modified))
    return out


def newest_mtime(path: Path) -> float:
    """The newest modification time of the directory and its top-level entries: a
    layer being written (a pull in progress) is never old."""
    newest = path.lstat().st_mtime
    for entry in os.scandir(path):
        newest = max(newest, entry.stat(follow_symlinks=False).st_mtime)
    return newest


def orphan_modified(root: DataRoot, name: str) -> datetime | None:
    """When the orphan candidate `name` last changed (None: it is gone)."""
    try:
        return datetime.fromtimestamp(newest_mtime(root.path / root.driver / name), UTC)
    except OSError:
        return None


def orphan_still_unused(root: DataRoot, name: str) -> str:
    """Why the directory `name` must not be removed now; "" when it may."""
    refs = layer_references(root)
    if refs is None:
        return "the layer references cannot be read"
    if name in refs or _buildkit_mentions(root, {name}):
        return "referenced again"
    path = os.path.realpath(root.path / root.driver / name)
    if any(mp == path or mp.startswith(path + "/") for mp in mount_points()):
        return "something is mounted in it"
    return ""


def remove_orphan(root: DataRoot, name: str) -> None:
    """Remove the directory and its short link in the driver's `l/` folder."""
    remove_layer_dir(root.path / root.driver, name)


def remove_layer_dir(folder: Path, name: str) -> None:
    """Remove a layer's directory `folder/name`, and its short link in `folder/l/`
    (overlay's, for Docker and Podman alike) if the link is the layer's."""
    short = read_text(folder / name / "link")
    link = folder / "l" / short
    ours = short and "/" not in short and link.is_symlink()
    if ours and os.readlink(link).rstrip("/") == f"../{name}/diff":
        link.unlink()
    shutil.rmtree(folder / name)


def mount_points() -> list[str]:
    """Every mount point of this process's mount namespace (octal escapes decoded)."""
    try:
        lines = Path("/proc/self/mountinfo").read_text().splitlines()
    except OSError:
        return []
    out = []
    for line in lines:
        fields = line.split()
        if len(fields) > 4:
            out.append(fields[4].encode().decode("unicode_escape"))
    return out
