"""The registry planner: snapshots in, deletions and kept tags with reasons out."""

from __future__ import annotations

import hashlib
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st
from rich.console import Console

from bilge.model import Result
from bilge.registry.gc import GcReport
from bilge.registry.model import (
    DOCKER_MANIFEST,
    OCI_INDEX,
    Blob,
    DeletionOutcome,
    Manifest,
    RegistryOutcome,
    RegistryPlan,
    RegistrySnapshot,
    Repository,
)
from bilge.registry.planner import plan
from bilge.registry.policy import RegistryConfig, RegistryRule
from bilge.registry.report import render_gc, render_outcome, render_plan
from bilge.registry.versions import version_key

NOW = datetime(2026, 6, 1, tzinfo=UTC)
URL = "https://registry.example.com"


def digest(name: str) -> str:
    return "sha256:" + hashlib.sha256(name.encode()).hexdigest()


def image(name: str, days: float | None, *layers: str, subject: str | None = None) -> Manifest:
    created = NOW - timedelta(days=days) if days is not None else None
    blobs = (Blob(digest(f"{name}-config"), 100), *(Blob(digest(x), 1000) for x in layers))
    return Manifest(
        digest(name),
        DOCKER_MANIFEST,
        10,
        blobs=blobs,
        config=blobs[0],
        subject=subject,
        created=created,
    )


def index(name: str, days: float, *children: Manifest) -> Manifest:
    return Manifest(
        digest(name),
        OCI_INDEX,
        20,
        children=tuple(c.digest for c in children),
        created=NOW - timedelta(days=days),
    )


def repo(name: str, tags: dict[str, Manifest], *untagged: Manifest) -> Repository:
    manifests = {m.digest: m for m in (*tags.values(), *untagged)}
    return Repository(name, {t: m.digest for t, m in tags.items()}, manifests)


def make_plan(*repos: Repository, **rule: object) -> RegistryPlan:
    config = RegistryConfig(
        url=URL,
        rules=(RegistryRule(repositories="app*", **rule),),  # type: ignore[arg-type]
    )
    return plan([RegistrySnapshot(URL, NOW, repos)], {URL: config}, NOW)


def deleted(p: RegistryPlan) -> dict[str, str]:
    return {",".join(d.tags): d.reason for d in p.deletions}


def kept(p: RegistryPlan) -> dict[str, str]:
    return {k.tag: k.reason for k in p.kept}


AGES = {"v1": 50, "v2": 40, "v3": 30, "v4": 20, "v5": 1}


def versions() -> Repository:
    return repo("app", {t: image(t, days, f"{t}-layer") for t, days in AGES.items()})


@pytest.mark.parametrize(
    ("rule", "gone", "why"),
    [
        ({"keep_recent": 2}, {"v1", "v2", "v3"}, {"v4": "one of the 2 newest (keep_recent = 2)"}),
        ({"keep_recent": 0}, set(AGES), {}),
        (
            {"keep_recent": 0, "older_than": "25d"},
            {"v1", "v2", "v3"},
            {"v4": "created 20d ago (older_than = 25d)"},
        ),
        (
            {"keep_recent": 0, "keep_matching": ["^v[12]$"]},
            {"v3", "v4", "v5"},
            {"v1": "matches keep_matching '^v[12]$'"},
        ),
        (
            {"keep_recent": 0, "delete_matching": ["^v[45]$"]},
            {"v4", "v5"},
            {"v1": "matches no delete_matching pattern"},
        ),
        # keep_recent counts only the tags that could go.
        ({"keep_recent": 1, "delete_matching": ["^v[123]$"]}, {"v1", "v2"}, {}),
    ],
)
def test_rules(rule: dict[str, object], gone: set[str], why: dict[str, str]) -> None:
    p = make_plan(versions(), **rule)
    assert set(deleted(p)) == gone
    for tag, reason in why.items():
        assert kept(p)[tag] == reason
    assert {d.tags[0] for d in p.deletions} | set(kept(p)) == set(AGES)


def test_delete_reason_gives_age_and_rule() -> None:
    p = make_plan(versions(), keep_recent=3)
    assert deleted(p)["v1"] == "created 50d ago; not one of the 3 newest"


def test_latest_is_kept_unless_told() -> None:
    r = repo("app", {"latest": image("l", 90), "old": image("o", 90)})
    assert kept(make_plan(r, keep_recent=0))["latest"] == "'latest' (keep_latest = true)"
    assert set(deleted(make_plan(r, keep_recent=0, keep_latest=False))) == {"latest", "old"}


def test_repository_without_rule_keeps_everything() -> None:
    p = make_plan(repo("other", {"a": image("a", 900)}), keep_recent=0)
    assert p.deletions == ()
    assert kept(p) == {"a": "no rule matches this repository"}


def test_first_matching_rule_wins() -> None:
    config = RegistryConfig(
        url=URL,
        rules=(
            RegistryRule(repositories="app/keep", keep_recent=100),
            RegistryRule(repositories="app/*", keep_recent=0),
        ),
    )
    snap = RegistrySnapshot(
        URL, NOW, (repo("app/keep", {"a": image("a", 9)}), repo("app/go", {"b": image("b", 9)}))
    )
    p = plan([snap], {URL: config}, NOW)
    assert [d.repository for d in p.deletions] == ["app/go"]


def test_semver_orders_by_version_not_time() -> None:
    r = repo(
        "app",
        {
            "1.10.0": image("a", 50),  # oldest, highest
            "1.9.0": image("b", 1),
            "1.2.0-rc.1": image("c", 2),
            "1.2.0": image("d", 3),
            "nightly": image("e", 90),
        },
    )
    p = make_plan(r, keep_recent=2, order="semver")
    assert set(deleted(p)) == {"1.2.0", "1.2.0-rc.1"}
    assert deleted(p)["1.2.0"] == "version 1.2.0; not one of the 2 highest versions"
    assert kept(p)["nightly"] == "not a semantic version (order = semver)"


@pytest.mark.parametrize(
    ("lower", "higher"),
    [
        ("1.0.0", "2.0.0"),
        ("1.9.0", "1.10.0"),
        ("1.0.0-rc.1", "1.0.0"),
        ("1.0.0-alpha", "1.0.0-alpha.1"),
        ("1.0.0-alpha.1", "1.0.0-alpha.beta"),
        ("1.0.0-2", "1.0.0-11"),
        ("v1.2", "1.2.1"),
        ("1", "1.0.1"),
    ],
)
def test_version_precedence(lower: str, higher: str) -> None:
    low, high = version_key(lower), version_key(higher)
    assert low is not None
    assert high is not None
    assert low < high


def test_version_key_rejects_non_versions() -> None:
    assert version_key("latest") is None
    assert version_key("1.2.3.4") is None
    assert version_key("1.2.3+build.5") == version_key("1.2.3")


def test_unknown_creation_time() -> None:
    r = repo("app", {"a": image("a", None), "b": image("b", 60)})
    assert kept(make_plan(r, keep_recent=0, older_than="7d"))["a"] == (
        "creation time unknown (older_than = 7d)"
    )
    # Without older_than, an unknown time sorts as the oldest.
    assert deleted(make_plan(r, keep_recent=1))["a"] == (
        "creation time unknown; not one of the 1 newest"
    )


def test_shared_digest_with_kept_tag_is_never_deleted() -> None:
    shared = image("shared", 60)
    r = repo("app", {"old": shared, "stable": shared, "other": image("x", 60)})
    p = make_plan(r, keep_recent=0, keep_matching=["^stable$"])
    assert set(deleted(p)) == {"other"}
    assert kept(p)["old"] == f"shares digest {shared.digest[:19]} with kept tag 'stable'"


def test_two_deleted_tags_of_one_digest_are_one_deletion() -> None:
    shared = image("shared", 60)
    p = make_plan(repo("app", {"a": shared, "b": shared}), keep_recent=0)
    assert [d.tags for d in p.deletions] == [("a", "b")]


def test_multi_arch_index_and_its_children() -> None:
    old_amd, old_arm = image("old-amd", 60, "l1"), image("old-arm", 60, "l2")
    new_amd, new_arm = image("new-amd", 1, "l3"), image("new-arm", 1, "l4")
    r = repo(
        "app",
        {
            "old": index("old", 60, old_amd, old_arm),
            "new": index("new", 1, new_amd, new_arm),
            "amd-only": new_amd,  # a platform image of the kept index, tagged on its own
        },
        old_amd,
        old_arm,
        new_arm,
    )
    p = make_plan(r, keep_recent=0, keep_matching=["^new$"])
    (gone,) = p.deletions
    assert gone.tags == ("old",)
    assert set(gone.children) == {old_amd.digest, old_arm.digest}
    assert kept(p)["amd-only"] == "a manifest of kept index 'new'"
    # index 20 + two images of 10 + 100 (config) + 1000 (own layer)
    assert gone.bytes == 20 + 2 * (10 + 100 + 1000)


def test_an_index_is_deleted_before_its_platform_images() -> None:
    amd, arm = image("amd", 60, "l1"), image("arm", 60, "l2")
    r = repo("app", {"old": index("old", 60, amd, arm), "old-amd": amd}, arm)
    p = make_plan(r, keep_recent=0)
    assert [d.tags for d in p.deletions] == [("old",), ("old-amd",)]
    assert p.deletions[0].children == (arm.digest,)


def test_child_shared_with_a_kept_index_stays() -> None:
    shared = image("shared-amd", 60, "l1")
    r = repo(
        "app",
        {
            "old": index("old", 60, shared, image("old-arm", 60, "l2")),
            "keep": index("keep", 60, shared),
        },
        shared,
        image("old-arm", 60, "l2"),
    )
    p = make_plan(r, keep_recent=0, keep_matching=["^keep$"])
    (gone,) = p.deletions
    assert gone.children == (digest("old-arm"),)


def test_referrers_follow_their_subject() -> None:
    kept_image, old_image = image("kept", 1), image("old", 60)
    kept_sig = image("kept-sig", 60, subject=kept_image.digest)
    tag_sig = f"sha256-{old_image.digest[7:]}.sig"
    r = repo(
        "app",
        {"new": kept_image, "old": old_image, "kept-sig": kept_sig, tag_sig: image("os", 60)},
    )
    p = make_plan(r, keep_recent=1)
    assert kept(p)["kept-sig"] == f"refers to {kept_image.digest}, which is kept"
    assert [d.tags for d in p.deletions] == [("old",), (tag_sig,)]
    assert p.deletions[1].follows == old_image.digest


def test_an_image_with_the_keep_label_stays() -> None:
    labelled = replace(image("l", 90), labels={"bilge.keep": "yes"})
    p = make_plan(repo("app", {"pinned": labelled, "old": image("o", 90)}), keep_recent=0)
    assert kept(p)["pinned"] == "labelled bilge.keep"
    assert set(deleted(p)) == {"old"}


def test_unsupported_manifest_is_never_deleted() -> None:
    odd = Manifest(digest("odd"), "application/vnd.example+json", 5, supported=False)
    p = make_plan(repo("app", {"odd": odd}), keep_recent=0)
    assert kept(p)["odd"] == (
        "manifest type 'application/vnd.example+json' is not one bilge deletes"
    )


def test_bytes_count_only_what_no_kept_manifest_references() -> None:
    r = repo(
        "app",
        {
            "a": image("a", 60, "base", "a-own"),
            "b": image("b", 50, "base", "b-own"),
            "c": image("c", 1, "base", "c-own"),
        },
    )
    other = repo("zz-other", {"x": image("x", 1, "b-own")})  # no rule: kept, shares b's layer
    p = make_plan(r, other, keep_recent=1)
    by_tag = {d.tags[0]: d.bytes for d in p.deletions}
    assert by_tag == {"a": 10 + 100 + 1000, "b": 10 + 100}


def test_blob_shared_by_two_deletions_is_counted_once() -> None:
    r = repo("app", {"a": image("a", 60, "common"), "b": image("b", 50, "common")})
    p = make_plan(r, keep_recent=0)
    assert p.total_bytes == 2 * (10 + 100) + 1000


# -- the safety rule, for any repository ------------------------------------------------

tags_st = st.lists(st.sampled_from(["a", "b", "c", "d", "e", "latest", "v1"]), unique=True)


@st.composite
def repositories(draw: st.DrawFn) -> Repository:
    tags = draw(tags_st)
    pool = [image(f"m{i}", draw(st.integers(0, 90)), f"l{i % 3}") for i in range(4)]
    chosen = {t: draw(st.sampled_from(pool)) for t in tags}
    if draw(st.booleans()) and pool:
        chosen["idx"] = index("idx", draw(st.integers(0, 90)), *pool[:2])
    return repo("app", chosen, *pool)


@given(repositories(), st.integers(0, 3), st.sampled_from([[], ["^a$"], ["^v"]]))
def test_no_kept_tag_ever_loses_its_manifest(
    r: Repository, keep_recent: int, keep_matching: list[str]
) -> None:
    p = make_plan(r, keep_recent=keep_recent, keep_matching=keep_matching)
    removed = {d.digest for d in p.deletions} | {c for d in p.deletions for c in d.children}
    for k in p.kept:
        assert k.digest not in removed
        # ... nor, for an index, a manifest it lists.
        assert not set(r.manifests[k.digest].children) & removed
    assert {t for d in p.deletions for t in d.tags} | {k.tag for k in p.kept} == set(r.tags)


# -- wording, and what the registry names cannot do to the terminal ---------------------


def rendered(p: RegistryPlan, explain: bool = True) -> str:
    con = Console(record=True, width=200, force_terminal=False)
    render_plan(con, p, explain=explain)
    return con.export_text()


def test_without_keep_recent_the_reason_does_not_count_zero_newest() -> None:
    p = make_plan(versions(), keep_recent=0)
    assert deleted(p)["v1"] == "created 50d ago (keep_recent = 0)"
    semver = repo("app", {t: image(t, 1) for t in ("1.0.0", "1.1.0")})
    assert deleted(make_plan(semver, keep_recent=0, order="semver"))["1.0.0"] == (
        "version 1.0.0 (keep_recent = 0)"
    )
    older = make_plan(versions(), keep_recent=0, older_than="25d")
    assert deleted(older)["v1"] == "created 50d ago (older_than = 25d, keep_recent = 0)"


def test_platform_manifests_are_counted_singular_or_plural_and_in_the_total() -> None:
    one = image("one-amd", 60, "l1")
    two = (image("two-amd", 60, "l2"), image("two-arm", 60, "l3"))
    r = repo(
        "app",
        {"rel-1": index("rel-1", 60, one), "rel-2": index("rel-2", 60, *two), "x": image("x", 60)},
        one,
        *two,
    )
    text = rendered(make_plan(r, keep_recent=0))
    assert "rel-1 + 1 platform manifest " in text
    assert "rel-2 + 2 platform manifests " in text
    assert "3 manifests (+ 3 platform manifests of deleted indexes, 3 tags) to delete" in text
    single = rendered(make_plan(repo("app", {"x": image("x", 60)}), keep_recent=0))
    assert "1 manifest (1 tag) to delete" in single


def test_the_plan_says_what_its_bytes_are() -> None:
    text = rendered(make_plan(versions(), keep_recent=0))
    assert "Predicted: the size of the blobs only they reference" in text
    assert "docs/registry.md" in text


#: A hostile registry's names: title, bell, clear screen, CR, C1 CSI, bidi override.
EVIL = "evil\x1b]0;pwned\x07\x1b[2J\r\x9b31m\u202egnp\nx"
RAW = ("\x1b", "\x07", "\r", "\x9b", "\u202e")


@pytest.mark.parametrize("explain", [False, True])
def test_control_characters_in_repository_names_and_tags_are_shown_escaped(
    explain: bool,
) -> None:
    r = repo(
        f"app/{EVIL}",
        {EVIL: image("a", 60), "latest": image("b", 1), f"{EVIL}-2": image("c", 1)},
    )
    p = make_plan(r, keep_recent=1)
    assert p.deletions and p.kept  # the planner takes any name: only showing it is at risk
    text = rendered(p, explain)
    for char in RAW:
        assert char not in text
    assert "app/evil\\x1b]0;pwned\\x07\\x1b[2J\\r\\x9b31m\\u202egnp\\nx" in text


def test_control_characters_in_apply_and_gc_output_are_shown_escaped() -> None:
    d = make_plan(repo(f"app/{EVIL}", {EVIL: image("a", 60)}), keep_recent=0).deletions[0]
    outcome = RegistryOutcome(
        plan=make_plan(versions()),
        results=(DeletionOutcome(d, Result.FAILED, f"registry said {EVIL}"),),
        started_at=NOW,
        finished_at=NOW,
    )
    con = Console(record=True, width=200, force_terminal=False)
    render_outcome(con, outcome)
    gc = GcReport(EVIL, False, EVIL, False, (), 0, 0, 10, NOW, NOW, notes=(EVIL,))
    render_gc(con, gc)
    text = con.export_text()
    for char in RAW:
        assert char not in text
    assert "note: evil\\x1b]0;pwned" in text
    assert "Freed 10 B (measured on the storage: the blobs, and the directories" in text
