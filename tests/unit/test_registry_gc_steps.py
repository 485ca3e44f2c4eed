"""The pure parts of `bilge registry gc`: what it reads, writes and refuses.

The collection itself runs against a real registry in
tests/integration/test_registry_gc.py.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from bilge.clock import FakeClock
from bilge.errors import UsageError
from bilge.registry import gc
from bilge.registry.errors import GcError
from bilge.registry.policy import RegistryConfig, RegistryGc

ONE, TWO = "1" * 64, "2" * 64
OUTPUT = f"""app
app: marking manifest sha256:aaaa
app: marking blob sha256:bbbb

3 blobs marked, 2 blobs and 1 manifests eligible for deletion
blob eligible for deletion: sha256:{ONE}
blob eligible for deletion: sha256:{TWO}
"""


def test_output_is_parsed() -> None:
    blobs, manifests = gc._parse_output(OUTPUT)
    assert blobs == ("sha256:" + "1" * 64, "sha256:" + "2" * 64)
    assert manifests == 1


def test_read_only_is_added_and_the_rest_kept() -> None:
    doc = {"version": 0.1, "storage": {"filesystem": {"rootdirectory": "/x"},
           "maintenance": {"uploadpurging": {"enabled": False}}}}  # fmt: skip
    ro = gc._with_read_only(doc)
    assert ro["storage"]["maintenance"] == {
        "uploadpurging": {"enabled": False},
        "readonly": {"enabled": True},
    }
    assert ro["storage"]["filesystem"] == {"rootdirectory": "/x"}
    assert "maintenance" in ro["storage"] and "readonly" not in doc["storage"]["maintenance"]


def registry(tmp_path: Path, **gc_options: object) -> RegistryConfig:
    options = {"config": str(tmp_path / "config.yml"), "restart": "true", **gc_options}
    return RegistryConfig(url="http://127.0.0.1:5000", gc=RegistryGc(**options))  # type: ignore[arg-type]


def test_without_a_gc_table_it_is_a_usage_error() -> None:
    with pytest.raises(UsageError, match=r"has no \[registry.gc\] table"):
        gc._setup(RegistryConfig(url="http://127.0.0.1:5000"))


def test_an_interrupted_run_is_not_silently_repeated(tmp_path: Path) -> None:
    (tmp_path / "config.yml").write_text("version: 0.1\nstorage: {}\n")
    (tmp_path / "config.yml.bilge-backup").write_text("old")
    with pytest.raises(GcError, match="an earlier gc was interrupted"):
        gc._setup(registry(tmp_path))


@pytest.mark.parametrize(
    ("content", "message"),
    [("storage: [\n", "not YAML"), ("version: 0.1\n", "no storage section")],
)
def test_bad_registry_config_is_one_line(tmp_path: Path, content: str, message: str) -> None:
    (tmp_path / "config.yml").write_text(content)
    fake = tmp_path / "registry"
    fake.write_text("#!/bin/sh\necho 'registry github.com/distribution/distribution/v3 v3.0.0'\n")
    fake.chmod(0o755)
    with pytest.raises(GcError, match=message):
        gc._setup(registry(tmp_path, binary=str(fake)))


@pytest.mark.parametrize(
    ("said", "version"),
    [
        ("docker-registry github.com/docker/distribution 2.8.2+ds1", (2, 8)),
        ("registry github.com/distribution/distribution/v3 v3.0.0", (3, 0)),
    ],
)
def test_versions(tmp_path: Path, said: str, version: tuple[int, int]) -> None:
    fake = tmp_path / "registry"
    fake.write_text(f"#!/bin/sh\necho '{said}'\n")
    fake.chmod(0o755)
    assert gc._version(str(fake))[1] == version


def test_write_keeps_the_inode(tmp_path: Path) -> None:
    path = tmp_path / "config.yml"
    path.write_text("a long original text\n")
    inode = path.stat().st_ino
    gc._write(path, b"short\n")
    assert path.read_bytes() == b"short\n"
    assert path.stat().st_ino == inode
    assert yaml.safe_load(path.read_text()) == "short"


class _Restarting:
    """A registry client whose registry answers again after `polls` questions."""

    def __init__(self, polls: int) -> None:
        self.polls, self.asked = polls, 0

    def answers(self) -> bool:
        self.asked += 1
        return self.asked > self.polls


def test_the_restarted_registry_is_waited_for_on_the_clock(tmp_path: Path) -> None:
    settings = registry(tmp_path).gc
    assert settings is not None
    clock, client = FakeClock(), _Restarting(polls=3)
    gc._restart(settings, client, clock)  # type: ignore[arg-type]  # only answers() is asked
    assert clock.sleeps == [gc.RESTART_POLL_SECONDS] * 3


def test_a_registry_that_does_not_come_back_fails_at_the_deadline(tmp_path: Path) -> None:
    settings = registry(tmp_path, timeout="5s").gc
    assert settings is not None
    clock, client = FakeClock(), _Restarting(polls=10**6)
    started = clock.monotonic()
    with pytest.raises(GcError, match="did not answer within 5s of the restart"):
        gc._restart(settings, client, clock)  # type: ignore[arg-type]
    assert 5 < clock.monotonic() - started < 5 + 2 * gc.RESTART_POLL_SECONDS
