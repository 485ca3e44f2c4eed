"""`bilge registry plan` and `apply` against a real registry (distribution 2.8).

Each test has a registry of its own (registry_helpers.registry) and pushes exactly
the images it needs through the HTTP API.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from bilge.registry.client import RegistryClient
from bilge.registry.policy import RegistryConfig
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

RULE = """
[[registry.rules]]
repositories = "app*"
keep_recent = 1
older_than = "7d"
keep_matching = ["^stable$"]
"""


@pytest.fixture
def pusher(registry: Registry) -> Iterator[Pusher]:
    p = Pusher(registry.url)
    yield p
    p.close()


@pytest.fixture
def bilge(tmp_path: Path, registry: Registry) -> BilgeRegistry:
    return BilgeRegistry(tmp_path).policy(policy(registry.url, RULE))


def versions(pusher: Pusher, repo: str = "app") -> dict[str, Pushed]:
    base = pusher.blob(repo, b"a base layer every version shares" * 64)
    ages = {"1.0": 40, "1.1": 30, "1.2": 20, "1.3": 5, "1.4": 3}
    return {t: pusher.image(repo, t, created=days_ago(d), layers=(base,)) for t, d in ages.items()}


def test_plan_changes_nothing_and_apply_deletes_what_was_planned(
    bilge: BilgeRegistry, pusher: Pusher
) -> None:
    images = versions(pusher)
    pusher.tag("app", "latest", pusher.image("app", None, created=days_ago(60)))
    pusher.image("other", "old", created=days_ago(400))  # no rule: untouched
    pusher.image("app", "pinned", created=days_ago(90), labels={"bilge.keep": "yes"})

    run = bilge("registry", "plan", "--json")
    assert run.code == 0, run.err
    doc = run.json()
    assert (doc["schema"], doc["kind"]) == (1, "registry-plan")
    planned = {d["tags"][0]: d for d in doc["deletions"]}
    assert set(planned) == {"1.0", "1.1", "1.2"}
    assert planned["1.0"]["digest"] == images["1.0"].digest
    assert planned["1.0"]["reason"] == "created 40d ago; not one of the 1 newest"
    # its config and its own layer: the shared base stays with the kept versions
    own = sum(size for digest, size in images["1.0"].blobs[:1] + images["1.0"].blobs[2:])
    assert planned["1.0"]["bytes"] == images["1.0"].size + own
    kept = {(k["repository"], k["tag"]): k["reason"] for k in doc["kept"]}
    assert kept[("app", "1.3")] == "created 5d ago (older_than = 7d)"
    assert kept[("app", "latest")] == "'latest' (keep_latest = true)"
    assert kept[("other", "old")] == "no rule matches this repository"
    assert kept[("app", "pinned")] == "labelled bilge.keep"  # read from the image config
    assert pusher.tags("app") == ["1.0", "1.1", "1.2", "1.3", "1.4", "latest", "pinned"]

    run = bilge("registry", "apply", "--yes", "--json")
    assert run.code == 0, run.err
    outcome = run.json()
    assert outcome["counts"] == {"removed": 3, "skipped": 0, "failed": 0}
    assert pusher.tags("app") == ["1.3", "1.4", "latest", "pinned"]
    assert pusher.tags("other") == ["old"]
    for tag in ("1.3", "1.4"):
        assert all(pusher.blob_exists("app", b) for b, _ in images[tag].blobs)

    history = bilge("history", "--json").json()["entries"]
    assert {(e["name"], e["outcome"]) for e in history} == {
        ("app:1.0", "removed"), ("app:1.1", "removed"), ("app:1.2", "removed")
    }  # fmt: skip
    assert {e["host"] for e in history} == {pusher.http.base_url.__str__().rstrip("/")}
    # The registry's own audit kind, not an engine's "image".
    assert {e["kind"] for e in history} == {"registry-manifest"}
    text = bilge("history").out
    assert "registry-manifest" in text and " image " not in text


def test_terminal_plan_and_nothing_left_to_do(bilge: BilgeRegistry, pusher: Pusher) -> None:
    versions(pusher)
    run = bilge("registry", "plan", "--explain")
    assert run.code == 0, run.err
    assert "3 manifests (3 tags) to delete" in run.out
    assert "Kept: 2 tags, and why" in run.out
    assert bilge("registry", "apply", "--yes").code == 0
    again = bilge("registry", "apply", "--yes")
    assert again.code == 0
    assert "removed 0, skipped 0, failed 0" in again.out


def test_apply_without_a_terminal_needs_yes(bilge: BilgeRegistry, pusher: Pusher) -> None:
    versions(pusher)
    run = bilge("registry", "apply", process=True)
    assert run.code == 2
    assert run.err.strip() == (
        "bilge: error: refusing to change the registry without --yes (no terminal to ask on)"
    )
    assert len(pusher.tags("app")) == 5


def test_a_tag_sharing_its_digest_with_a_kept_tag_is_never_lost(
    bilge: BilgeRegistry, pusher: Pusher
) -> None:
    images = versions(pusher)
    pusher.tag("app", "stable", images["1.0"])  # kept by keep_matching

    plan = bilge("registry", "plan").out
    assert (
        f"app:1.0 stays: it shares digest {images['1.0'].digest[:19]} with kept tag 'stable'"
        in (plan)
    )
    assert bilge("registry", "apply", "--yes").code == 0
    assert pusher.tags("app") == ["1.0", "1.3", "1.4", "stable"]


@pytest.mark.parametrize("oci", [True, False], ids=["oci-index", "docker-manifest-list"])
def test_multi_arch_tags_resolve_to_their_index(
    bilge: BilgeRegistry, pusher: Pusher, oci: bool
) -> None:
    old = [pusher.image("app", None, created=days_ago(50), arch=a) for a in ("amd64", "arm64")]
    new = [pusher.image("app", None, created=days_ago(40), arch=a) for a in ("amd64", "arm64")]
    old_index = pusher.index("app", "old", old, oci=oci)
    new_index = pusher.index("app", "new", new, oci=oci)
    pusher.tag("app", "new-amd64", new[0])  # a platform image of the kept index, tagged

    bilge.policy(policy(pusher_url(pusher), RULE.replace("keep_recent = 1", "keep_recent = 0")
                        .replace("^stable$", "^new$")))  # fmt: skip
    doc = bilge("registry", "plan", "--json").json()
    (deletion,) = doc["deletions"]
    assert deletion["digest"] == old_index.digest  # the index, never one of its children
    assert set(deletion["children"]) == {m.digest for m in old}
    kept = {k["tag"]: k["reason"] for k in doc["kept"]}
    assert kept["new-amd64"] == "a manifest of kept index 'new'"

    assert bilge("registry", "apply", "--yes").code == 0
    assert not any(pusher.exists("app", d) for d in [old_index.digest, *(m.digest for m in old)])
    assert all(pusher.exists("app", m.digest) for m in [new_index, *new])
    assert pusher.tags("app") == ["new", "new-amd64"]


def pusher_url(pusher: Pusher) -> str:
    return str(pusher.http.base_url).rstrip("/")


def test_signatures_stay_with_kept_images_and_go_with_deleted_ones(
    bilge: BilgeRegistry, pusher: Pusher
) -> None:
    images = versions(pusher)
    old_sig = f"sha256-{images['1.0'].digest[7:]}.sig"
    new_sig = f"sha256-{images['1.4'].digest[7:]}.sig"
    pusher.referrer("app", old_sig, images["1.0"])
    pusher.referrer("app", new_sig, images["1.4"])

    doc = bilge("registry", "plan", "--json").json()
    assert [d["tags"][0] for d in doc["deletions"]][-1] == old_sig  # after its subject
    assert bilge("registry", "apply", "--yes").code == 0
    assert new_sig in pusher.tags("app")
    assert old_sig not in pusher.tags("app")


def test_a_tag_moved_between_plan_and_apply_is_skipped(
    bilge: BilgeRegistry, pusher: Pusher, tmp_path: Path
) -> None:
    images = versions(pusher)
    saved = tmp_path / "plan.json"
    assert bilge("registry", "plan", "--out", str(saved)).code == 0
    moved = pusher.image("app", "1.1", created=days_ago(0))  # a new push of 1.1
    pusher.tag("app", "another", images["1.2"])  # 1.2's digest gained a tag

    run = bilge("registry", "apply", "--plan", str(saved), "--yes", "--json")
    assert run.code == 0, run.err
    results = {d["tags"][0]: (d["outcome"], d["detail"]) for d in run.json()["deletions"]}
    assert results["1.0"] == ("removed", "")
    assert results["1.1"] == ("skipped", f"tag '1.1' moved to {moved.digest[:19]} since the plan")
    assert results["1.2"] == ("skipped", "now also tagged another")
    assert pusher.resolve("app", "1.1") == moved.digest
    assert pusher.resolve("app", "1.2") == images["1.2"].digest


def test_a_platform_image_stays_while_its_index_stays(
    bilge: BilgeRegistry, pusher: Pusher, tmp_path: Path
) -> None:
    children = [pusher.image("app", None, created=days_ago(50), arch=a) for a in ("amd64", "arm64")]
    index = pusher.index("app", "old", children)
    pusher.tag("app", "old-amd64", children[0])  # planned as a deletion of its own
    versions(pusher)
    saved = tmp_path / "plan.json"
    assert bilge("registry", "plan", "--out", str(saved)).code == 0
    pusher.tag("app", "rescued", index)  # the index gains a tag: its deletion is skipped

    run = bilge("registry", "apply", "--plan", str(saved), "--yes", "--json")
    results = {d["tags"][0]: (d["outcome"], d["detail"]) for d in run.json()["deletions"]}
    assert results["old"] == ("skipped", "now also tagged rescued")
    assert results["old-amd64"] == ("skipped", "listed by index 'old', which is still there")
    assert all(pusher.exists("app", m.digest) for m in [index, *children])

    # A fresh plan deletes the index (both its tags) first, then the platform image.
    run = bilge("registry", "apply", "--yes", "--json")
    results = {d["tags"][0]: d["outcome"] for d in run.json()["deletions"]}
    assert results["old"] == results["old-amd64"] == "removed"
    assert not any(pusher.exists("app", m.digest) for m in [index, *children])


def test_a_stale_plan_file_for_another_registry_is_refused(
    bilge: BilgeRegistry, pusher: Pusher, tmp_path: Path
) -> None:
    versions(pusher)
    saved = tmp_path / "plan.json"
    bilge("registry", "plan", "--out", str(saved))
    bilge.policy(policy("http://127.0.0.1:1", RULE))
    run = bilge("registry", "apply", "--plan", str(saved), "--yes")
    assert run.code == 2
    assert "which the policy lacks" in run.err
    assert len(pusher.tags("app")) == 5


def test_a_corrupt_registry_plan_file_is_refused_naming_file_and_field(
    bilge: BilgeRegistry, pusher: Pusher, tmp_path: Path
) -> None:
    versions(pusher)
    saved = tmp_path / "plan.json"
    assert bilge("registry", "plan", "--out", str(saved)).code == 0
    saved.write_text(saved.read_text().replace('"bytes": ', '"bytes": -', 1))
    run = bilge("registry", "apply", "--plan", str(saved), "--yes")
    assert run.code == 2
    assert f"{saved}: plan file: deletions[0].bytes: expected a non-negative integer" in run.err
    assert len(run.err.strip().splitlines()) == 1
    assert len(pusher.tags("app")) == 5


@pytest.mark.parametrize("setting", ["read_only", "deletes_disabled"])
def test_a_registry_refusing_deletes_is_a_clear_error(
    registry_dir: Path, tmp_path: Path, setting: str
) -> None:
    writable = start_registry(registry_dir / "r")
    try:
        with Pusher(writable.url) as p:
            versions(p)
        writable.stop()
        # The same storage, served read-only or with deletes disabled.
        locked = start_registry(
            registry_dir / "r",
            read_only=setting == "read_only",
            delete=setting != "deletes_disabled",
        )
        bilge = BilgeRegistry(tmp_path).policy(policy(locked.url, RULE))
        run = bilge("registry", "apply", "--yes", "--json")
        assert run.code == 3, run.err
        results = [(d["outcome"], d["detail"]) for d in run.json()["deletions"]]
        assert results[0][0] == "failed"
        assert results[0][1].endswith("(405): deletes disabled or registry read-only")
        assert all(r == ("skipped", f"not attempted: {results[0][1]}") for r in results[1:])
        with Pusher(locked.url) as p:
            assert len(p.tags("app")) == 5
    finally:
        writable.stop()  # the pid file names whichever of the two runs


def test_catalog_pages_follow_links_and_tags_cope_with_ignored_n(
    registry: Registry, pusher: Pusher
) -> None:
    for i in range(5):
        pusher.image(f"repo{i}", "t", created=days_ago(1), size=10)
    for i in range(7):
        pusher.image("many", f"t{i}", created=days_ago(1), size=10)
    config = RegistryConfig(url=registry.url)
    with RegistryClient(config, env={"DOCKER_CONFIG": "/nonexistent"}, page_size=2) as client:
        # distribution 2.8 pages the catalog (Link headers) and ignores n for tags
        assert client.repositories() == ["many", *(f"repo{i}" for i in range(5))]
        assert sorted(client.tags("many")) == [f"t{i}" for i in range(7)]


def test_an_unreachable_registry_is_one_line(tmp_path: Path) -> None:
    bilge = BilgeRegistry(tmp_path).policy(policy("http://127.0.0.1:9", RULE))
    run = bilge("registry", "plan", process=True)
    assert run.code == 1
    assert run.err.startswith("bilge: error: registry http://127.0.0.1:9: cannot read /v2/")
    assert len(run.err.strip().splitlines()) == 1


def test_usage_errors(bilge: BilgeRegistry, tmp_path: Path) -> None:
    run = bilge("registry", "plan", "--registry", "nope")
    assert run.code == 2
    assert "--registry nope: no such registry in the policy" in run.err
    run = bilge("-H", "unix:///tmp/none.sock", "registry", "plan")
    assert run.code == 2
    assert "-H/--host names Docker engines" in run.err
    bilge.policy("")
    run = bilge("registry", "plan", process=True)
    assert run.code == 2
    assert "no [[registry]] table in the policy" in run.err


def test_now_is_utc(bilge: BilgeRegistry, pusher: Pusher) -> None:
    versions(pusher)
    created = bilge("registry", "plan", "--json").json()["created_at"]
    assert created.endswith("Z")
    assert abs((datetime.now(UTC) - datetime.fromisoformat(created)).total_seconds()) < 60
