"""The planner with the storage's view: untagged manifests, push times, pulls,
untag only, throwaways and disk bytes. Fixed clock, no I/O."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from pydantic import ValidationError

from bilge.registry.model import Manifest, RegistryPlan, RegistrySnapshot, Repository, RepoStorage
from bilge.registry.planner import plan
from bilge.registry.policy import RegistryConfig, RegistryGc, RegistryRule
from tests.unit.test_registry_planner import NOW, URL, digest, image, index

GC = RegistryGc(config="/etc/docker/registry/config.yml", restart="true")


def stored(tags: dict[str, Manifest], *untagged: Manifest, pushed: dict[str, float] | None = None,
           pulled: dict[str, float] | None = None) -> Repository:  # fmt: skip
    """A repository whose storage has every manifest given, pushed `pushed[name]`
    days ago (default 100), pulled `pulled[name]` days ago."""
    manifests = {m.digest: m for m in (*tags.values(), *untagged)}
    names = {m.digest: n for n, m in _names(tags, untagged)}
    when = {d: NOW - timedelta(days=(pushed or {}).get(names[d], 100)) for d in manifests}
    return Repository(
        "app",
        {t: m.digest for t, m in tags.items()},
        manifests,
        storage=RepoStorage(
            when,
            {d: 4096 for d in manifests},
            {t: 5 * 4096 for t in tags},
        ),
        pulled={digest(n): NOW - timedelta(days=d) for n, d in (pulled or {}).items()},
    )


def _names(tags: dict[str, Manifest], untagged: tuple[Manifest, ...]) -> list[tuple[str, Manifest]]:
    out = []
    for m in (*tags.values(), *untagged):
        found = [n for n in NAMES if digest(n) == m.digest]
        out.append((found[0] if found else "?", m))
    return out


NAMES = [
    f"{p}{i}" for p in ("old", "new", "kid", "oldkid", "idx", "sig", "x", "keep") for i in range(4)
]


def run(repository: Repository, disk: bool = False, **rule: object) -> RegistryPlan:
    config = RegistryConfig(url=URL, rules=(RegistryRule(repositories="app", **rule),), gc=GC)  # type: ignore[arg-type]
    blob_disk = None
    if disk:
        blobs = {b.digest for m in repository.manifests.values() for b in m.blobs}
        blob_disk = {d: 8192 for d in blobs | set(repository.manifests)}
    snap = RegistrySnapshot(URL, NOW, (repository,), blob_disk)
    return plan([snap], {URL: config}, NOW)


def untagged_gone(p: RegistryPlan) -> dict[str, tuple[str, ...]]:
    return {d.digest: d.children for d in p.deletions if not d.tags}


def test_old_untagged_go_young_ones_stay() -> None:
    repo = stored({"latest": image("new0", 1)}, image("old0", 50), image("old1", 50),
                  pushed={"new0": 1, "old1": 2})  # fmt: skip
    p = run(repo, untagged_after=timedelta(days=7))
    assert untagged_gone(p) == {digest("old0"): ()}
    (d,) = p.deletions
    assert d.reason == "untagged, pushed 100d ago (untagged_after = 7d)"
    assert d.precondition == f"no tag points at {digest('old0')}"


def test_without_the_key_untagged_manifests_stay() -> None:
    repo = stored({"latest": image("new0", 1)}, image("old0", 50))
    assert run(repo).deletions == ()


def test_children_of_kept_indexes_and_referrers_of_kept_manifests_stay() -> None:
    kids = [image(f"kid{i}", 50) for i in range(2)]
    signed = image("new0", 1)
    sig = image("sig0", 50, subject=signed.digest)
    repo = stored({"multi": index("idx0", 50, *kids), "latest": signed}, *kids, sig)
    assert run(repo, untagged_after=timedelta(days=1)).deletions == ()


def test_an_untagged_index_goes_with_its_children_a_young_one_keeps_them() -> None:
    old_kids = [image(f"oldkid{i}", 50) for i in range(2)]
    kids = [image(f"kid{i}", 50) for i in range(2)]
    repo = stored(
        {"latest": image("new0", 1)},
        index("idx0", 50, *old_kids), *old_kids,
        index("idx1", 1, *kids), *kids,
        pushed={"idx1": 0.5},
    )  # fmt: skip
    gone = untagged_gone(run(repo, untagged_after=timedelta(days=7)))
    assert {k: set(v) for k, v in gone.items()} == {digest("idx0"): {k.digest for k in old_kids}}


def test_a_referrer_of_a_deleted_untagged_manifest_follows_it() -> None:
    old = image("old0", 50)
    sig = image("sig0", 50, subject=old.digest)
    p = run(stored({"latest": image("new0", 1)}, old, sig), untagged_after=timedelta(days=7))
    assert [(d.digest, d.follows) for d in p.deletions] == [
        (old.digest, None),
        (sig.digest, old.digest),
    ]


def test_a_kept_label_or_a_recent_pull_keeps_an_untagged_manifest() -> None:
    labelled = image("old0", 50)
    labelled = type(labelled)(**{**labelled.__dict__, "labels": {"bilge.keep": "1"}})
    repo = stored({"latest": image("new0", 1)}, labelled, image("old1", 50), pulled={"old1": 3})
    p = run(repo, untagged_after=timedelta(days=7), keep_pulled_within=timedelta(days=30))
    assert p.deletions == ()


def test_age_pushed_orders_and_ages_by_push_time() -> None:
    tags = {t: image(f"x{i}", 20000) for i, t in enumerate(("a", "b", "c"))}  # 1970-ish
    repo = stored(tags, pushed={"x0": 30, "x1": 2, "x2": 1})
    by_created = run(repo, keep_recent=0, older_than=timedelta(days=7))
    assert {d.tags[0] for d in by_created.deletions} == {"a", "b", "c"}
    by_pushed = run(repo, keep_recent=1, older_than=timedelta(days=7), age="pushed")
    assert [d.tags for d in by_pushed.deletions] == [("a",)]
    assert by_pushed.deletions[0].reason == "pushed 30d ago; not one of the 1 newest"
    reasons = {k.tag: k.reason for k in by_pushed.kept}
    assert reasons == {
        "c": "one of the 1 newest (keep_recent = 1)",
        "b": "pushed 2d ago (older_than = 7d)",
    }


def test_a_recent_pull_keeps_a_tag() -> None:
    repo = stored({"a": image("old0", 90), "b": image("old1", 90)}, pulled={"old0": 10})
    p = run(repo, keep_recent=0, keep_pulled_within=timedelta(days=30))
    assert [d.tags for d in p.deletions] == [("b",)]
    assert {k.tag: k.reason for k in p.kept} == {"a": "pulled 10d ago (keep_pulled_within = 30d)"}


def test_a_tag_sharing_a_kept_digest_is_untagged_only_when_asked() -> None:
    shared = image("old0", 90)
    repo = stored({"1.0": shared, "stable": shared})
    rule: dict[str, object] = {"keep_recent": 0, "keep_matching": ("^stable$",)}
    assert run(repo, **rule).deletions == ()
    (d,) = run(repo, untag_shared=True, **rule).deletions
    assert (d.tags, d.digest, d.untag_only, d.bytes) == (("1.0",), shared.digest, True, 0)
    assert d.reason.startswith("untag only: shares digest")
    assert d.precondition.startswith("tag 1.0 still points at")


def test_a_throwaway_is_deleted_whatever_the_rules() -> None:
    throwaway = image("x0", None)
    throwaway = type(throwaway)(**{**throwaway.__dict__, "throwaway": True})
    repo = stored({"1.0": throwaway, "stable": image("keep0", 1)})
    config = RegistryConfig(url=URL)  # no rule at all
    p = plan([RegistrySnapshot(URL, NOW, (repo,))], {URL: config}, NOW)
    assert [(d.tags, d.reason) for d in p.deletions] == [
        (("1.0",), "throwaway manifest of an interrupted untag")
    ]


def test_disk_bytes_count_blocks_links_and_tag_directories() -> None:
    old, new = image("old0", 50, "shared", "own"), image("new0", 1, "shared")
    p = run(stored({"latest": new}, old), disk=True, untagged_after=timedelta(days=7))
    (d,) = p.deletions
    # the manifest, its config and its own layer (not the shared one), and its revision link
    assert d.bytes == 10 + 100 + 1000
    assert d.disk_bytes == 3 * 8192 + 4096
    assert p.total_disk_bytes == d.disk_bytes
    tagged = run(stored({"a": old, "latest": new}), disk=True, keep_recent=0)
    assert tagged.deletions[0].disk_bytes == 3 * 8192 + 4096 + 5 * 4096


def test_without_storage_there_is_no_disk_figure() -> None:
    repo = Repository("app", {"a": digest("old0")}, {digest("old0"): image("old0", 50)})
    config = RegistryConfig(url=URL, rules=(RegistryRule(repositories="app", keep_recent=0),))
    p = plan([RegistrySnapshot(URL, NOW, (repo,))], {URL: config}, NOW)
    assert p.deletions[0].disk_bytes is None and p.total_disk_bytes is None


def test_a_repository_left_without_manifests_is_reported() -> None:
    repo = stored({"a": image("old0", 90)}, image("old1", 90))
    p = run(repo, keep_recent=0, keep_latest=False, untagged_after=timedelta(days=1))
    assert p.emptied == ((URL, "app"),)
    assert run(stored({"a": image("old0", 90)}, image("old1", 1), pushed={"old1": 1}),
               keep_recent=0, untagged_after=timedelta(days=7)).emptied == ()  # fmt: skip


@pytest.mark.parametrize("key", [{"untagged_after": "7d"}, {"age": "pushed"}])
def test_keys_that_read_the_storage_need_its_table(key: dict[str, str]) -> None:
    rules = [{"repositories": "app", **key}]
    with pytest.raises(ValidationError, match="needs the registry's storage"):
        RegistryConfig.model_validate({"url": URL, "rules": rules})
    RegistryConfig.model_validate({"url": URL, "rules": rules, "gc": GC.model_dump()})


def test_a_saved_plan_keeps_untagged_untag_only_disk_bytes_and_emptied() -> None:
    from bilge.planfile import registry_plan_from_document
    from bilge.registry.document import plan_json

    shared = image("old0", 90)
    repo = stored({"1.0": shared, "stable": shared}, image("old1", 90))
    p = run(repo, disk=True, keep_recent=0, keep_matching=("^stable$",), untag_shared=True,
            untagged_after=timedelta(days=7))  # fmt: skip
    assert {(d.tags, d.untag_only) for d in p.deletions} == {(("1.0",), True), ((), False)}
    doc = json.loads(json.dumps(plan_json(p)))
    assert registry_plan_from_document(doc) == p
