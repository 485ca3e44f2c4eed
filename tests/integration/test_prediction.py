"""Predicted bytes against what the filesystem really gains.

The sandbox's data-root (Docker's, or Podman's storage) is a 512 MB ext4 filesystem
of its own, so the statvfs difference measures bilge's removals and nothing else.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.integration.bilge_cli import ZERO_GRACE, make_bilge
from tests.integration.helpers import Sandbox, build_image, make_volume, run_container

MB = 1_000_000


def garbage(sb: Sandbox) -> None:
    """About 130 MB of garbage of every kind, with shared image layers both ways."""
    for n in range(10):
        run_container(sb, name=f"job-{n}", volumes=["/out"],
                      write={"/out/result": 5 * MB, "/layer.bin": 2 * MB})  # fmt: skip
    for n in range(3):
        run_container(sb, name=f"never-{n}", state="created", write={"/seed": MB})
    make_volume(sb, "old-named", files={"a": 5 * MB, "b/c": 3 * MB})
    for n in range(4):
        sb.docker("volume", "create", f"dangling-{n}")
        make_volume(sb, f"dangling-{n}", files={"blob": 2 * MB})
    # p:1 and q:1 (built on p:1) both go: p's layer must be counted once.
    build_image(sb, "p:1", size=6 * MB)
    build_image(sb, "q:1", size=2 * MB, base="p:1")
    # k:1 stays (keep pattern); r:1 built on it goes and frees only its own layer.
    build_image(sb, "k:1", size=4 * MB)
    build_image(sb, "r:1", size=3 * MB, base="k:1")
    for n in range(3):
        build_image(sb, f"old:{n}", size=5 * MB)


@pytest.fixture
def disk_engine(either_disk_engine: Sandbox) -> Sandbox:
    """Docker's engine, then Podman's, each on a disk of its own."""
    return either_disk_engine


def test_predicted_bytes_are_within_one_percent_of_the_measured(
    disk_engine: Sandbox, tmp_path: Path
) -> None:
    garbage(disk_engine)
    policy = ZERO_GRACE.replace("[volumes]", "[volumes]\nnamed = true")
    policy = policy.replace("[images]", '[images]\nkeep = ["k:*"]')
    bilge = make_bilge(disk_engine, tmp_path, policy)

    result = bilge("apply", "--yes", "--json")
    assert result.code == 0, result.err
    doc = result.json()
    predicted = doc["removed_bytes_predicted"]
    measured = doc["freed_bytes_measured"]
    assert doc["counts"]["failed"] == 0 and doc["counts"]["skipped"] == 0
    assert predicted >= 100 * MB, f"only {predicted} bytes of garbage"
    print(f"predicted {predicted} measured {measured} ratio {predicted / measured:.5f}")
    assert abs(predicted - measured) <= 0.01 * measured, (predicted, measured)
    assert disk_engine.docker("image", "inspect", "k:1", check=False).returncode == 0
    assert doc["engine"] == disk_engine.kind
