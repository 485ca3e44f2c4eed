"""Reading a registry's filesystem storage (storage.py), on directories made here."""

from __future__ import annotations

import hashlib
import json
import os
from datetime import UTC, datetime
from pathlib import Path

import pytest

from bilge.errors import ConfigError
from bilge.registry.errors import RegistryError
from bilge.registry.model import OCI_INDEX, OCI_MANIFEST
from bilge.registry.policy import RegistryConfig, RegistryGc
from bilge.registry.storage import (
    blob_disk,
    disk_usage,
    media_type_of,
    read_blob,
    read_repository,
    storage_root,
)

V2 = Path("docker/registry/v2")


def sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def blob(root: Path, data: bytes) -> str:
    d = sha(data)
    where = root / V2 / "blobs/sha256" / d[7:9] / d[7:]
    where.mkdir(parents=True)
    (where / "data").write_bytes(data)
    return d


def revision(root: Path, repo: str, digest: str, mtime: float | None = None) -> Path:
    where = root / V2 / "repositories" / repo / "_manifests/revisions/sha256" / digest[7:]
    where.mkdir(parents=True)
    (where / "link").write_text(digest)
    if mtime is not None:
        os.utime(where / "link", (mtime, mtime))
    return where


def config_for(tmp_path: Path, text: str) -> RegistryConfig:
    path = tmp_path / "config.yml"
    path.write_text(text)
    gc = RegistryGc(config=str(path), restart="true")
    return RegistryConfig(url="http://127.0.0.1:5000", gc=gc)


def test_revisions_with_push_times_deleted_ones_left_out(tmp_path: Path) -> None:
    kept, deleted = sha(b"a"), sha(b"b")
    revision(tmp_path, "team/app", kept, mtime=86400.0)
    (revision(tmp_path, "team/app", deleted) / "link").unlink()  # what a DELETE leaves
    tag = tmp_path / V2 / "repositories/team/app/_manifests/tags/v1/current"
    tag.mkdir(parents=True)
    (tag / "link").write_text(kept)
    found = read_repository(tmp_path, "team/app")
    assert dict(found.pushed) == {kept: datetime(1970, 1, 2, tzinfo=UTC)}
    assert (
        found.revision_disk[kept]
        == (tmp_path / V2 / "repositories/team/app/_manifests/revisions/sha256" / kept[7:] / "link")
        .stat()
        .st_blocks
        * 512
    )
    assert found.tag_disk["v1"] == disk_usage(tag.parent)
    assert read_repository(tmp_path, "nothing-here").pushed == {}


def test_a_link_that_lies_is_an_error(tmp_path: Path) -> None:
    where = revision(tmp_path, "app", sha(b"a"))
    (where / "link").write_text(sha(b"other"))
    with pytest.raises(RegistryError, match="says"):
        read_repository(tmp_path, "app")


def test_blobs_are_read_checked_and_sized(tmp_path: Path) -> None:
    d = blob(tmp_path, b'{"schemaVersion": 2}')
    assert read_blob(tmp_path, d) == b'{"schemaVersion": 2}'
    size = blob_disk(tmp_path, d)
    assert (
        size is not None
        and size
        >= (tmp_path / V2 / "blobs/sha256" / d[7:9] / d[7:] / "data").stat().st_blocks * 512
    )
    assert blob_disk(tmp_path, sha(b"absent")) is None
    (tmp_path / V2 / "blobs/sha256" / d[7:9] / d[7:] / "data").write_bytes(b"tampered")
    with pytest.raises(RegistryError, match="does not match its digest"):
        read_blob(tmp_path, d)
    with pytest.raises(RegistryError, match="cannot read"):
        read_blob(tmp_path, sha(b"absent"))


def test_media_type_of_a_stored_manifest() -> None:
    assert media_type_of({"mediaType": "x"}) == "x"
    assert media_type_of({"manifests": []}) == OCI_INDEX
    assert media_type_of({"config": {}, "layers": []}) == OCI_MANIFEST
    assert media_type_of({}) == ""


def test_the_storage_root_comes_from_the_registry_config(tmp_path: Path) -> None:
    root = tmp_path / "storage"
    (root / V2).mkdir(parents=True)
    text = json.dumps({"storage": {"filesystem": {"rootdirectory": str(root)}}})
    assert storage_root(config_for(tmp_path, text)) == root


@pytest.mark.parametrize(
    ("text", "said"),
    [
        ("storage: {s3: {bucket: b}}", "no storage.filesystem.rootdirectory"),
        ("storage: [", "not YAML"),
        ('storage: {filesystem: {rootdirectory: "/nonexistent/x"}}', "no docker/registry/v2"),
    ],
)
def test_no_storage_to_read_is_one_config_line(tmp_path: Path, text: str, said: str) -> None:
    with pytest.raises(ConfigError, match=said) as err:
        storage_root(config_for(tmp_path, text))
    assert "\n" not in str(err.value)


def test_a_missing_registry_config_is_a_config_error(tmp_path: Path) -> None:
    gc = RegistryGc(config=str(tmp_path / "absent.yml"), restart="true")
    with pytest.raises(ConfigError, match=r"absent\.yml"):
        storage_root(RegistryConfig(url="http://127.0.0.1:5000", gc=gc))


@pytest.mark.parametrize("name", ["../../etc", "app/../..", "/abs", "App"])
def test_a_catalog_name_never_leads_out_of_the_storage(tmp_path: Path, name: str) -> None:
    with pytest.raises(RegistryError, match="not a repository name"):
        read_repository(tmp_path, name)
