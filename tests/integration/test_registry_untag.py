"""One tag removed, not its digest (`untag_shared = true`), on Debian's registry (2.8.2)."""

from __future__ import annotations

from pathlib import Path

import yaml

from bilge.registry.model import OCI_MANIFEST, THROWAWAY_ANNOTATION
from tests.integration.registry_helpers import (
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

RULE = (
    '[[registry.rules]]\nrepositories = "shared"\nkeep_recent = 0\n'
    "keep_matching = ['^stable$']\nuntag_shared = true\n"
)


def shared(reg: Registry, *, older: bool = True) -> Pushed:
    with Pusher(reg.url) as p:
        image = p.image("shared", "1.0", created=days_ago(40), size=4096)
        p.tag("shared", "stable", image)
        if older:
            p.image("shared", "0.9", created=days_ago(50), size=4096)
    return image


def test_a_tag_sharing_its_digest_goes_alone(registry: Registry, tmp_path: Path) -> None:
    image = shared(registry)
    bilge = BilgeRegistry(tmp_path).policy(policy(registry.url, RULE))
    plan = bilge("registry", "plan")
    assert plan.code == 0, plan.err
    assert "1.0 (untag only)" in plan.out

    doc = bilge("registry", "apply", "--yes", "--json").json()
    (untag,) = [d for d in doc["deletions"] if d["untag_only"]]
    assert (untag["tags"], untag["digest"], untag["outcome"]) == (["1.0"], image.digest, "removed")
    with Pusher(registry.url) as p:
        assert p.tags("shared") == ["stable"]
        assert p.resolve("shared", "stable") == image.digest
        assert all(p.blob_exists("shared", b) for b, _ in image.blobs)
    assert bilge("registry", "plan", "--json").json()["deletions"] == []


def test_a_throwaway_left_by_a_crash_is_deleted_next_run(
    registry: Registry, tmp_path: Path
) -> None:
    image = shared(registry)
    with Pusher(registry.url) as p:  # what an interrupted untag leaves: the tag on a throwaway
        empty = p.blob("elsewhere", b"{}")
        desc = {"mediaType": "application/vnd.oci.empty.v1+json", "digest": empty[0], "size": 2}
        doc = {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": desc,
            "layers": [desc],
            "annotations": {THROWAWAY_ANNOTATION: "1.0 crashed"},
        }
        throwaway = p.manifest("elsewhere", "1.0", OCI_MANIFEST, doc)
    bilge = BilgeRegistry(tmp_path).policy(policy(registry.url, RULE))  # no rule for "elsewhere"
    plan = bilge("registry", "plan", "--json").json()
    (found,) = [d for d in plan["deletions"] if d["repository"] == "elsewhere"]
    assert (found["digest"], found["reason"]) == (
        throwaway,
        "throwaway manifest of an interrupted untag",
    )
    assert bilge("registry", "apply", "--yes").code == 0
    with Pusher(registry.url) as p:
        assert p.tags("elsewhere") == []
        assert p.resolve("shared", "stable") == image.digest


def test_no_untag_where_the_registry_cannot_delete(registry_dir: Path, tmp_path: Path) -> None:
    changes = {
        "nodelete": {"delete": {"enabled": False}},
        "readonly": {"maintenance": {"readonly": {"enabled": True}}},
    }
    for name, change in changes.items():
        reg = start_registry(registry_dir / name)
        try:
            image = shared(reg, older=False)
            settings = reg.settings()
            settings["storage"].update(change)
            reg.config.write_text(yaml.safe_dump(settings))
            reg.start()
            bilge = BilgeRegistry(tmp_path).policy(policy(reg.url, RULE))
            run = bilge("registry", "apply", "--yes", "--json")
            assert run.code == 3, run.err
            (untag,) = [d for d in run.json()["deletions"] if d["untag_only"]]
            assert untag["outcome"] == "failed"
            assert "deletes disabled or registry read-only" in untag["detail"]
            with Pusher(reg.url) as p:
                assert p.tags("shared") == ["1.0", "stable"]
                assert p.resolve("shared", "1.0") == image.digest
        finally:
            reg.stop()
