"""Reading a data-root laid out as dockerd's overlay2 lays it out, built by hand."""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime
from pathlib import Path

import pytest

from bilge.collect.dataroot import DataRoot, layer_references, orphaned_layers, usage

CID = "c" * 64
MOUNT = "m" * 64


def _write(path: Path, data: bytes | str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data.encode() if isinstance(data, str) else data)


def _layer(root: Path, name: str, short: str, files: dict[str, bytes]) -> None:
    """A layer directory with its content, work dir and short link in l/."""
    layer = root / "overlay2" / name
    for rel, data in files.items():
        _write(layer / "diff" / rel, data)
    (layer / "work" / "work").mkdir(parents=True)
    _write(layer / "link", short)
    (root / "overlay2" / "l").mkdir(exist_ok=True)
    (root / "overlay2" / "l" / short).symlink_to(f"../{name}/diff")


@pytest.fixture
def data_root(tmp_path: Path) -> Path:
    root = tmp_path / "docker"
    cdir = root / "containers" / CID
    log = cdir / f"{CID}-json.log"
    config = {"State": {"FinishedAt": "2026-11-01T10:00:00.5Z"}, "LogPath": str(log)}
    _write(cdir / "config.v2.json", json.dumps(config))
    log_config = {"Type": "json-file", "Config": {"max-size": "10m"}}
    _write(cdir / "hostconfig.json", json.dumps({"LogConfig": log_config}))
    _write(log, os.urandom(40_000))
    (cdir / "mounts").mkdir()
    record = root / "image" / "overlay2" / "layerdb" / "mounts" / CID
    _write(record / "mount-id", MOUNT)
    _write(record / "init-id", MOUNT + "-init")
    (root / "image" / "overlay2" / "layerdb" / "sha256").mkdir(parents=True)
    _layer(root, MOUNT, "SHORTA", {"app/out.bin": os.urandom(20_000)})
    _layer(root, MOUNT + "-init", "SHORTB", {"etc/hosts": b"", ".dockerenv": b""})
    return root


def _du(path: Path) -> tuple[int, int]:
    """Bytes and inodes of `path` and everything under it, symlinks not followed."""
    paths = [path] + [Path(d) / n for d, dirs, files in os.walk(path) for n in dirs + files]
    return sum(p.lstat().st_blocks * 512 for p in paths), len(paths)


def test_a_container_is_its_folder_both_layers_their_links_and_its_record(
    data_root: Path,
) -> None:
    files = DataRoot(str(data_root), "overlay2").container(CID)
    layerdb = data_root / "image" / "overlay2" / "layerdb" / "mounts" / CID
    links = [data_root / "overlay2" / "l" / s for s in ("SHORTA", "SHORTB")]
    layers = [data_root / "overlay2" / MOUNT, data_root / "overlay2" / (MOUNT + "-init")]
    parts = [_du(p) for p in [*layers, layerdb]]
    parts += [(link.lstat().st_blocks * 512, 1) for link in links]
    assert files.layer_bytes == sum(b for b, _ in parts)
    folder = _du(data_root / "containers" / CID)
    assert files.dir_bytes == folder[0]
    assert files.inodes == folder[1] + sum(i for _, i in parts)
    assert files.finished == datetime(2026, 11, 1, 10, 0, 0, 500_000, tzinfo=UTC)
    assert (files.log_driver, files.log_max_size) == ("json-file", "10m")
    assert files.log_file_bytes == Path(files.log_path).lstat().st_blocks * 512 > 0


def test_a_container_without_a_layer_record_has_no_layer_bytes(data_root: Path) -> None:
    os.remove(data_root / "image" / "overlay2" / "layerdb" / "mounts" / CID / "mount-id")
    assert DataRoot(str(data_root), "overlay2").container(CID).layer_bytes is None


def test_usage_counts_a_symlink_not_what_it_points_to(tmp_path: Path) -> None:
    target = tmp_path / "big"
    _write(target / "data", os.urandom(100_000))
    (tmp_path / "link").symlink_to(target)
    assert usage(tmp_path / "link") == ((tmp_path / "link").lstat().st_blocks * 512, 1)
    assert usage(target) == _du(target)
    assert usage(tmp_path / "missing") == (0, 0)


def test_the_layer_references_name_both_layers_of_a_container(data_root: Path) -> None:
    refs = layer_references(DataRoot(str(data_root), "overlay2"))
    assert refs == frozenset({MOUNT, MOUNT + "-init"})


def test_an_unreadable_reference_means_no_layer_is_called_an_orphan(data_root: Path) -> None:
    root = DataRoot(str(data_root), "overlay2")
    _layer(data_root, "o" * 64, "SHORTC", {"left": b"over"})
    assert [name for name, _, _ in orphaned_layers(root) or ()] == ["o" * 64]
    _write(data_root / "image" / "overlay2" / "layerdb" / "mounts" / CID / "init-id", b"\xff\xfe")
    assert layer_references(root) is None
    assert orphaned_layers(root) is None
