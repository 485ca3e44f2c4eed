"""The safety rules as properties: no snapshot and no policy ever make the planner break them.

Each property re-derives its rule from the snapshot alone, not from the
planner's own bookkeeping, so that a planner that forgets a rule fails here.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from fnmatch import fnmatchcase

from hypothesis import HealthCheck, given, settings

from bilge.config.policy import Policy
from bilge.model import Kind, Plan, Snapshot
from bilge.planner.core import plan
from bilge.planner.eviction import Target, select
from tests.unit.snapshots import NOW, policies, snapshots

Property = Callable[[Snapshot, Policy, Plan], None]


def removed(p: Plan, kind: Kind) -> set[str]:
    return {a.id for a in p.actions if a.kind is kind}


def surviving_containers(snap: Snapshot, p: Plan) -> list[str]:
    gone = removed(p, Kind.CONTAINER)
    return [c.id for c in snap.containers if c.id not in gone]


def no_active_container_is_removed(snap: Snapshot, policy: Policy, p: Plan) -> None:
    active = {c.id for c in snap.containers if c.active}
    assert not active & removed(p, Kind.CONTAINER)


def no_pods_infra_container_is_removed(snap: Snapshot, policy: Policy, p: Plan) -> None:
    """Podman removes a pod's infra container only with its pod, which bilge leaves."""
    infra = {c.id for c in snap.containers if c.infra_of}
    assert not infra & removed(p, Kind.CONTAINER)


def no_keep_labelled_object_is_removed(snap: Snapshot, policy: Policy, p: Plan) -> None:
    label = policy.keep_label
    labelled = {
        *((Kind.CONTAINER, c.id) for c in snap.containers if label in c.labels),
        *((Kind.VOLUME, v.name) for v in snap.volumes if label in v.labels),
        *((Kind.IMAGE, i.id) for i in snap.images if label in i.labels),
        *((Kind.NETWORK, n.id) for n in snap.networks if label in n.labels),
    }
    assert not labelled & {(a.kind, a.id) for a in p.actions}


def no_builtin_network_is_removed(snap: Snapshot, policy: Policy, p: Plan) -> None:
    builtin = {n.id for n in snap.networks if n.builtin}
    assert not builtin & removed(p, Kind.NETWORK)


def no_network_in_use_is_removed(snap: Snapshot, policy: Policy, p: Plan) -> None:
    survivors = set(surviving_containers(snap, p))
    used = {n for c in snap.containers if c.id in survivors for n in c.networks}
    used |= {n.id for n in snap.networks if n.endpoints > 0}
    assert not used & removed(p, Kind.NETWORK)


def no_cache_record_a_kept_one_builds_on_is_removed(
    snap: Snapshot, policy: Policy, p: Plan
) -> None:
    removed = {a.id for a in p.actions if a.kind is Kind.BUILD_CACHE}
    for r in snap.build_cache:
        if r.id not in removed:
            assert r.parent not in removed, f"{r.parent} removed under kept {r.id}"


def containers_take_along_only_planned_anonymous_volumes(
    snap: Snapshot, policy: Policy, p: Plan
) -> None:
    planned = {a.id for a in p.actions if a.kind is Kind.VOLUME}
    anonymous = {v.name for v in snap.volumes if v.anonymous}
    for a in p.actions:
        assert set(a.volumes) <= planned & anonymous, f"{a.id} would take {a.volumes}"


def shared_cache_records_free_nothing(snap: Snapshot, policy: Policy, p: Plan) -> None:
    # their data is an image's layer, counted with the image
    shared = {r.id for r in snap.build_cache if r.shared}
    assert all(a.bytes == 0 for a in p.actions if a.id in shared)


def no_cache_record_in_use_is_removed(snap: Snapshot, policy: Policy, p: Plan) -> None:
    in_use = {r.id for r in snap.build_cache if r.in_use}
    assert not in_use & removed(p, Kind.BUILD_CACHE)


def no_volume_mounted_by_a_surviving_container_is_removed(
    snap: Snapshot, policy: Policy, p: Plan
) -> None:
    survivors = set(surviving_containers(snap, p))
    mounted = {v for c in snap.containers if c.id in survivors for v in c.volume_names}
    assert not mounted & removed(p, Kind.VOLUME)


def no_named_volume_is_removed_unless_opted_in(snap: Snapshot, policy: Policy, p: Plan) -> None:
    if not policy.volumes.named:
        named = {v.name for v in snap.volumes if not v.anonymous}
        assert not named & removed(p, Kind.VOLUME)


def no_anonymous_volume_holding_data_is_removed(snap: Snapshot, policy: Policy, p: Plan) -> None:
    data = {v.name for v in snap.volumes if v.anonymous and v.contents.holds_data}
    assert not data & removed(p, Kind.VOLUME)


def no_named_volume_holding_data_is_removed_while_protected(
    snap: Snapshot, policy: Policy, p: Plan
) -> None:
    if policy.volumes.protect_data:
        data = {v.name for v in snap.volumes if not v.anonymous and v.contents.holds_data}
        assert not data & removed(p, Kind.VOLUME)


def no_container_owning_anonymous_data_is_removed(snap: Snapshot, policy: Policy, p: Plan) -> None:
    data = {v.name for v in snap.volumes if v.anonymous and v.contents.holds_data}
    owners = {c.id for c in snap.containers if data & set(c.volume_names)}
    assert not owners & removed(p, Kind.CONTAINER)


def no_image_used_by_a_surviving_container_is_removed(
    snap: Snapshot, policy: Policy, p: Plan
) -> None:
    survivors = set(surviving_containers(snap, p))
    used = {c.image_id for c in snap.containers if c.id in survivors}
    assert not used & removed(p, Kind.IMAGE)


def no_parent_of_a_kept_image_is_removed(snap: Snapshot, policy: Policy, p: Plan) -> None:
    gone = removed(p, Kind.IMAGE)
    parents = {i.parent_id for i in snap.images if i.id not in gone}
    assert not parents & gone


def no_object_the_user_named_is_removed(snap: Snapshot, policy: Policy, p: Plan) -> None:
    def named(name: str, patterns: tuple[str, ...]) -> bool:
        return any(fnmatchcase(name, pattern) for pattern in patterns)

    kept_names = {
        *(
            (Kind.CONTAINER, c.id)
            for c in snap.containers
            if named(c.name, policy.containers.keep_names)
        ),
        *((Kind.VOLUME, v.name) for v in snap.volumes if named(v.name, policy.volumes.keep_names)),
        *(
            (Kind.IMAGE, i.id)
            for i in snap.images
            if any(named(t, policy.images.keep) for t in i.tags)
        ),
    }
    assert not kept_names & {(a.kind, a.id) for a in p.actions}


def every_object_appears_exactly_once(snap: Snapshot, policy: Policy, p: Plan) -> None:
    # Logs are not objects: only those over the limit are mentioned.
    entries = [(a.kind, a.id) for a in p.actions] + [(k.kind, k.id) for k in p.kept]
    seen = Counter(e for e in entries if e[0] is not Kind.LOG)
    assert set(seen) == set(snap.fingerprints())
    assert set(seen.values()) <= {1}


def action_ids_are_unique_per_kind(snap: Snapshot, policy: Policy, p: Plan) -> None:
    keys = [(a.kind, a.id) for a in p.actions]
    assert len(keys) == len(set(keys))


def actions_are_ordered_by_kind_then_children_first(
    snap: Snapshot, policy: Policy, p: Plan
) -> None:
    order = list(Kind)
    kinds = [order.index(a.kind) for a in p.actions]
    assert kinds == sorted(kinds)
    position = {(a.kind, a.id): n for n, a in enumerate(p.actions)}
    parents = [(Kind.IMAGE, i.id, i.parent_id) for i in snap.images]
    parents += [(Kind.BUILD_CACHE, r.id, r.parent) for r in snap.build_cache]
    for kind, child, parent in parents:
        if (kind, child) in position and (kind, parent) in position:
            assert position[(kind, child)] < position[(kind, parent)]


def image_bytes_are_the_layers_only_removed_images_have(
    snap: Snapshot, policy: Policy, p: Plan
) -> None:
    gone = removed(p, Kind.IMAGE)
    freed = {layer for i in snap.images if i.id in gone for layer in i.layers}
    freed -= {layer for i in snap.images if i.id not in gone for layer in i.layers}
    expected = sum(snap.layers.get(layer, 0) for layer in freed)
    assert sum(a.bytes for a in p.actions if a.kind is Kind.IMAGE) == expected


def total_bytes_is_the_sum_of_the_actions(snap: Snapshot, policy: Policy, p: Plan) -> None:
    assert p.total_bytes == sum(a.bytes for a in p.actions)
    assert all(a.bytes >= 0 for a in p.actions)


def logs_are_truncated_only_for_surviving_json_file_containers_over_the_limit(
    snap: Snapshot, policy: Policy, p: Plan
) -> None:
    gone = removed(p, Kind.CONTAINER)
    containers = {c.id: c for c in snap.containers}
    for a in (a for a in p.actions if a.kind is Kind.LOG):
        c = containers[a.id]
        assert a.id not in gone and c.log_driver == "json-file"
        assert 0 < policy.logs.max_size < c.log_file_bytes == a.bytes


def orphans_go_only_when_asked_and_old_enough(snap: Snapshot, policy: Policy, p: Plan) -> None:
    orphans = {o.name: o for o in snap.orphans}
    for a in (a for a in p.actions if a.kind is Kind.ORPHAN):
        assert policy.orphans.remove
        assert NOW - orphans[a.id].modified >= policy.orphans.older_than


def an_eviction_is_a_part_of_the_plan_in_its_order(snap: Snapshot, policy: Policy, p: Plan) -> None:
    for goal in (Target(0, 0), Target(1, 0), Target(10**6, 0), Target(10**15, 10**9)):
        chosen = select(p, snap, goal)
        assert [a for a in p.actions if a in chosen] == list(chosen)
        ids = {a.id for a in chosen}
        for a in chosen:  # a container's folded volumes come with it
            assert set(a.volumes) <= ids
        if goal == Target(0, 0):
            assert chosen == ()


def no_partly_read_volume_is_removed(snap: Snapshot, policy: Policy, p: Plan) -> None:
    # Said without holds_data, so that this holds even if holds_data forgot it.
    gone = removed(p, Kind.VOLUME)
    for v in snap.volumes:
        if v.contents.unseen and (v.anonymous or policy.volumes.protect_data):
            assert v.name not in gone


PROPERTIES: list[Property] = [
    no_partly_read_volume_is_removed,
    no_active_container_is_removed,
    no_pods_infra_container_is_removed,
    no_keep_labelled_object_is_removed,
    no_builtin_network_is_removed,
    no_network_in_use_is_removed,
    no_cache_record_in_use_is_removed,
    no_cache_record_a_kept_one_builds_on_is_removed,
    shared_cache_records_free_nothing,
    containers_take_along_only_planned_anonymous_volumes,
    no_volume_mounted_by_a_surviving_container_is_removed,
    no_named_volume_is_removed_unless_opted_in,
    no_anonymous_volume_holding_data_is_removed,
    no_named_volume_holding_data_is_removed_while_protected,
    no_container_owning_anonymous_data_is_removed,
    no_image_used_by_a_surviving_container_is_removed,
    no_parent_of_a_kept_image_is_removed,
    no_object_the_user_named_is_removed,
    every_object_appears_exactly_once,
    action_ids_are_unique_per_kind,
    actions_are_ordered_by_kind_then_children_first,
    image_bytes_are_the_layers_only_removed_images_have,
    total_bytes_is_the_sum_of_the_actions,
    logs_are_truncated_only_for_surviving_json_file_containers_over_the_limit,
    orphans_go_only_when_asked_and_old_enough,
    an_eviction_is_a_part_of_the_plan_in_its_order,
]


# One run checks them all: drawing a snapshot costs far more than planning it.
# 300 examples in CI (HYPOTHESIS_PROFILE=ci, tests/conftest.py), fewer while editing.
@settings(suppress_health_check=[HealthCheck.too_slow])
@given(snap=snapshots(), policy=policies())
def test_plan_keeps_the_safety_rules(snap: Snapshot, policy: Policy) -> None:
    p = plan(snap, policy, NOW)
    for prop in PROPERTIES:
        prop(snap, policy, p)
