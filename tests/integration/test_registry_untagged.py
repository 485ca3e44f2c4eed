"""Untagged manifests, true bytes and push times, against Debian's registry (2.8.2).

Push times are the mtimes of the storage's revision links: a test makes a
manifest "pushed 10 days ago" by setting its link's mtime, as a registry that
has been running for ten days would have it.
"""

from __future__ import annotations

import hashlib
import os
import time
from datetime import UTC, datetime
from pathlib import Path

import httpx

from bilge.registry.storage import disk_usage
from tests.integration.registry_helpers import (
    REGISTRY_BIN,
    BilgeRegistry,
    Pushed,
    Pusher,
    Registry,
    days_ago,
    policy,
    registry,
    registry_dir,
    start_registry,
)

__all__ = ["registry", "registry_dir"]  # fixtures

TEN_DAYS = 10 * 86400
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def gc_table(reg: Registry) -> str:
    return f'config = "{reg.config}"\nrestart = "{reg.restart}"\nbinary = "{REGISTRY_BIN}"'


def age(reg: Registry, repo: str, *pushed: Pushed, seconds: int = TEN_DAYS) -> None:
    """Make `pushed` look pushed `seconds` ago (their revision links' mtime)."""
    for p in pushed:
        link = (
            reg.storage / "docker/registry/v2/repositories" / repo / "_manifests/revisions"
            / "sha256" / p.digest.removeprefix("sha256:") / "link"
        )  # fmt: skip
        then = time.time() - seconds
        os.utime(link, (then, then))


def complete(reg: Registry, repo: str, image: Pushed) -> bool:
    """The manifest is there and every blob it references answers 200 with its digest."""
    with Pusher(reg.url) as p:
        if not p.exists(repo, image.digest):
            return False
        for digest, _ in image.blobs:
            got = httpx.get(f"{reg.url}/v2/{repo}/blobs/{digest}", follow_redirects=True)
            if (
                got.status_code != 200
                or "sha256:" + hashlib.sha256(got.content).hexdigest() != digest
            ):
                return False
    return True


def traps(reg: Registry) -> dict[str, Pushed]:
    """Re-pushed tags, multi-arch images, referrers, young and old untagged manifests."""
    with Pusher(reg.url) as p:
        base = p.blob("app", os.urandom(64 * 1024))
        img = {
            f"old{i}": p.image("app", "latest", size=96 * 1024 + i, layers=(base,)) for i in (1, 2)
        }
        img["latest"] = p.image("app", "latest", size=96 * 1024, layers=(base,))
        img["young"] = p.image("app", "dev", size=32 * 1024)
        img["dev"] = p.image("app", "dev", size=32 * 1024)
        kids = [p.image("app", None, size=16 * 1024, arch=a) for a in ("amd64", "arm64")]
        img["multi"] = p.index("app", "multi", kids)
        img["kid0"], img["kid1"] = kids
        old_kids = [p.image("app", None, size=16 * 1024, arch=a) for a in ("amd64", "arm64")]
        img["oldindex"] = p.index("app", "tmp", old_kids)
        img["oldkid0"], img["oldkid1"] = old_kids
        img["tmp"] = p.image("app", "tmp", size=8 * 1024)
        img["sig"] = p.referrer("app", None, img["latest"])
        img["oldsig"] = p.referrer("app", None, img["old1"])
    old = (
        "old1",
        "old2",
        "multi",
        "kid0",
        "kid1",
        "oldindex",
        "oldkid0",
        "oldkid1",
        "sig",
        "oldsig",
    )
    age(reg, "app", *(img[k] for k in old))
    return img


RULE = '[[registry.rules]]\nrepositories = "app"\nkeep_recent = 10\nuntagged_after = "7d"\n'


def test_untagged_manifests_go_what_kept_images_need_stays(
    registry: Registry, tmp_path: Path
) -> None:
    img = traps(registry)
    bilge = BilgeRegistry(tmp_path).policy(policy(registry.url, RULE, gc=gc_table(registry)))

    plan = bilge("registry", "plan", "--json")
    assert plan.code == 0, plan.err
    doc = plan.json()
    planned = {d["digest"]: d for d in doc["deletions"]}
    goes = {img[k].digest for k in ("old1", "old2", "oldindex", "oldsig")}
    assert set(planned) == goes
    assert set(planned[img["oldindex"].digest]["children"]) == {
        img["oldkid0"].digest,
        img["oldkid1"].digest,
    }
    assert planned[img["oldsig"].digest]["follows"] == img["old1"].digest
    assert all(planned[d]["tags"] == [] for d in goes)
    assert "untagged, pushed 10d" in planned[img["old1"].digest]["reason"]

    before = disk_usage(registry.storage)
    applied = bilge("registry", "apply", "--yes", "--json")
    assert applied.code == 0, applied.err
    assert {d["outcome"] for d in applied.json()["deletions"]} == {"removed"}
    gc = bilge("registry", "gc", "--yes", "--json")
    assert gc.code == 0, gc.err
    freed = before - disk_usage(registry.storage)

    predicted = doc["total_disk_bytes"]
    print(
        f"untagged: predicted {predicted} on disk ({doc['total_bytes']} apparent), du freed {freed}"
    )
    assert abs(predicted - freed) <= 0.02 * freed
    assert doc["total_bytes"] < predicted  # the apparent size misses blocks and links

    for kept in ("latest", "young", "dev", "multi", "kid0", "kid1", "tmp", "sig"):
        assert complete(registry, "app", img[kept]), kept
    for gone in ("old1", "old2", "oldindex", "oldkid0", "oldkid1", "oldsig"):
        assert not complete(registry, "app", img[gone]), gone


def test_a_repository_emptied_is_reported(registry: Registry, tmp_path: Path) -> None:
    with Pusher(registry.url) as p:
        first = p.image("ci", "pr-1", size=4096)
        second = p.image("ci", "pr-1", size=4096)
    age(registry, "ci", first, second)
    rule = (
        '[[registry.rules]]\nrepositories = "ci"\nkeep_recent = 0\nkeep_latest = false\n'
        'untagged_after = "1d"\nage = "pushed"\nolder_than = "1d"\n'
    )
    bilge = BilgeRegistry(tmp_path).policy(policy(registry.url, rule, gc=gc_table(registry)))
    plan = bilge("registry", "plan")
    assert plan.code == 0, plan.err
    assert "ci" in plan.out and "catalog keeps listing it" in plan.out
    assert bilge("registry", "plan", "--json").json()["emptied"] == [
        {"registry": registry.url, "repository": "ci"}
    ]


def test_age_pushed_for_images_dated_1970(registry: Registry, tmp_path: Path) -> None:
    with Pusher(registry.url) as p:
        images = {t: p.image("repro", t, created=EPOCH, size=4096) for t in ("a", "b", "c")}
    age(registry, "repro", images["a"])
    rule = '[[registry.rules]]\nrepositories = "repro"\nkeep_recent = 0\nolder_than = "1d"\n'
    (tmp_path / "created").mkdir()
    by_created = BilgeRegistry(tmp_path / "created").policy(policy(registry.url, rule))
    deleted = {d["tags"][0] for d in by_created("registry", "plan", "--json").json()["deletions"]}
    assert deleted == {"a", "b", "c"}  # 1970, every one of them

    (tmp_path / "pushed").mkdir()
    pushed = rule + 'age = "pushed"\n'
    by_pushed = BilgeRegistry(tmp_path / "pushed").policy(
        policy(registry.url, pushed, gc=gc_table(registry))
    )
    doc = by_pushed("registry", "plan", "--json").json()
    assert [d["tags"] for d in doc["deletions"]] == [["a"]]
    assert "pushed 10d" in doc["deletions"][0]["reason"]
    reasons = {k["tag"]: k["reason"] for k in doc["kept"]}
    assert reasons["b"].startswith("pushed ") and "older_than = 1d" in reasons["b"]


def test_storage_keys_without_storage_are_config_errors(registry: Registry, tmp_path: Path) -> None:
    for key in ('untagged_after = "7d"', 'age = "pushed"'):
        rule = f'[[registry.rules]]\nrepositories = "app"\n{key}\n'
        run = BilgeRegistry(tmp_path).policy(policy(registry.url, rule))("registry", "plan")
        assert run.code == 2
        assert "needs the registry's storage" in run.err and len(run.err.strip().splitlines()) == 1
    gc = f'config = "{tmp_path}/nope.yml"\nrestart = "true"'
    rule = '[[registry.rules]]\nrepositories = "app"\nuntagged_after = "7d"\n'
    run = BilgeRegistry(tmp_path).policy(policy(registry.url, rule, gc=gc))("registry", "plan")
    assert run.code == 2, run.err
    assert "nope.yml" in run.err and "untagged_after needs it" in run.err
    assert len(run.err.strip().splitlines()) == 1


def test_disk_prediction_for_tags_and_indexes(registry: Registry, tmp_path: Path) -> None:
    """Tagged deletions (their tag directories go at the DELETE), a multi-arch index
    with its platform images, layers of some hundred kilobytes shared or not."""
    with Pusher(registry.url) as p:
        base = p.blob("web", os.urandom(300 * 1024))
        kept = p.image("web", "v4", created=days_ago(1), size=500 * 1024, layers=(base,))
        old = [
            p.image(
                "web", f"v{i}", created=days_ago(10 * i), size=(i + 1) * 100_003, layers=(base,)
            )
            for i in (1, 2, 3)
        ]
        p.tag("web", "also-v1", old[0])
        kids = [
            p.image("web", None, created=days_ago(40), size=70_001, arch=a)
            for a in ("amd64", "arm64")
        ]
        p.index("web", "multi", kids)
    rule = '[[registry.rules]]\nrepositories = "web"\nkeep_recent = 1\nkeep_latest = false\n'
    bilge = BilgeRegistry(tmp_path).policy(policy(registry.url, rule, gc=gc_table(registry)))
    doc = bilge("registry", "plan", "--json").json()
    assert len(doc["deletions"]) == 4
    before = disk_usage(registry.storage)
    assert bilge("registry", "apply", "--yes").code == 0
    assert bilge("registry", "gc", "--yes").code == 0
    freed = before - disk_usage(registry.storage)
    predicted = doc["total_disk_bytes"]
    print(
        f"tags+index: predicted {predicted} on disk ({doc['total_bytes']} apparent), "
        f"du freed {freed}"
    )
    assert abs(predicted - freed) <= 0.02 * freed
    assert complete(registry, "web", kept)


def test_another_registrys_storage_is_refused(registry_dir: Path, tmp_path: Path) -> None:
    one, other = start_registry(registry_dir / "one"), start_registry(registry_dir / "other")
    try:
        with Pusher(one.url) as p:
            p.image("app", "latest", size=4096)
        with Pusher(other.url) as p:
            p.image("app", "latest", size=4096)
        bilge = BilgeRegistry(tmp_path).policy(policy(one.url, RULE, gc=gc_table(other)))
        run = bilge("registry", "plan")
        assert run.code == 1
        assert "is [registry.gc] config this registry's configuration?" in run.err
        assert len(run.err.strip().splitlines()) == 1
    finally:
        one.stop()
        other.stop()
