"""Which networks go: user-defined, without endpoints or users, and old enough.

The engine's own networks (bridge, host, none) always stay, and so does a
network any container that stays is attached to. A network has no size, so
removing one frees no bytes: it only tidies `docker network ls`.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime

from bilge.config.policy import Policy
from bilge.model import Container, Kind, Network
from bilge.planner.decision import (
    Decided,
    Decision,
    Subject,
    ago,
    by_age,
    keep,
    names_text,
    users_of,
)


def decided(
    networks: Iterable[Network], policy: Policy, now: datetime, survivors: Sequence[Container]
) -> Decided:
    """Every network with its decision, by id; `survivors` are the containers that stay."""
    # Containers name their networks by id; matching names too costs nothing and
    # keeps a network whose container was collected with names instead.
    users = users_of(survivors, lambda c: c.networks)
    return [
        (
            Subject(Kind.NETWORK, n.id, n.name, 0, n),
            _decide(n, [*users.get(n.id, []), *users.get(n.name, [])], policy, now),
        )
        for n in sorted(networks, key=lambda n: n.id)
    ]


def _decide(n: Network, users: Sequence[str], policy: Policy, now: datetime) -> Decision:
    if n.builtin:
        return keep("built-in network")
    if n.endpoints > 0:
        return keep(f"in use ({n.endpoints} endpoint{'s' if n.endpoints > 1 else ''})")
    if users:
        return keep(f"in use by container {names_text(users)}")
    if policy.keep_label in n.labels:
        return keep(f"labelled {policy.keep_label}")
    age = now - n.created
    what = f"unused network, created {ago(age)}"
    return by_age(what, age, policy.networks.unused_after, "unused_after")
