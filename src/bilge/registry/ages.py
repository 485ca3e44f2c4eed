"""When an image was made, pushed and last pulled: what the rules age by. Pure.

A rule ages images by their config's `created` (the default) or, with
`age = "pushed"`, by when the registry stored the manifest (its revision
link in the storage: storage.py). `created` says 1970 for reproducible builds
and says nothing of an image built long before it was pushed; the push time
is the registry's own record. `keep_pulled_within` keeps what was pulled
lately, as the registry's notifications told `bilge registry listen`.
"""

from __future__ import annotations

from datetime import datetime

from bilge.config.units import duration_text, format_duration
from bilge.registry.model import Repository
from bilge.registry.policy import RegistryRule


def age_time(repo: Repository, rule: RegistryRule, digest: str) -> datetime | None:
    """The time `digest` ages from under `rule`; None when unknown."""
    if rule.age == "pushed":
        return repo.storage.pushed.get(digest) if repo.storage else None
    manifest = repo.manifests.get(digest)
    return manifest.created if manifest else None


def age_word(rule: RegistryRule) -> str:
    return "pushed" if rule.age == "pushed" else "created"


def last_pull(repo: Repository, digest: str) -> datetime | None:
    """The last pull of `digest` or, for an index, of any manifest it lists:
    a client pulls a multi-arch tag's index, then its platform's image."""
    manifest = repo.manifests.get(digest)
    digests = [digest, *(manifest.children if manifest else ())]
    times = [t for d in digests if (t := repo.pulled.get(d)) is not None]
    return max(times, default=None)


def pulled_lately(repo: Repository, rule: RegistryRule, digest: str, now: datetime) -> str:
    """Why `digest` stays for having been pulled lately, or ""."""
    if rule.keep_pulled_within is None:
        return ""
    pulled = last_pull(repo, digest)
    if pulled is None or now - pulled >= rule.keep_pulled_within:
        return ""
    ago = format_duration(max(now - pulled, now - now))
    return f"pulled {ago} ago (keep_pulled_within = {duration_text(rule.keep_pulled_within)})"
