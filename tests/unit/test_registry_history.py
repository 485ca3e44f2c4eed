"""The registry's work in the audit log: a manifest deletion is a "registry-manifest",
a garbage collection a "registry-gc" (not an engine's "image" or "orphaned-layer"),
read back from the state store and shown as such by `bilge history`."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import cast

import pytest
from rich.console import Console

from bilge.model import Action, AuditEntry, Kind, Result
from bilge.registry import commands
from bilge.registry.apply import apply
from bilge.registry.client import RegistryClient, Resolved
from bilge.registry.gc import GcReport
from bilge.registry.model import OCI_MANIFEST, Deletion, Manifest, RegistryPlan
from bilge.registry.policy import RegistryConfig
from bilge.report.json import history_json
from bilge.report.terminal import render_history
from bilge.state.store import StateStore

URL = "https://registry.example.com"
DIGEST = "sha256:" + "1" * 64
T0 = datetime(2026, 5, 1, 12, tzinfo=UTC)


class _Registry:
    """One repository "app" whose tag "old" points at DIGEST, until deleted."""

    label = "registry.example.com"

    def __init__(self) -> None:
        self.tagged = {"old": DIGEST}

    def tags(self, repository: str) -> list[str]:
        return sorted(self.tagged)

    def resolve(self, repository: str, reference: str) -> Resolved | None:
        digest = self.tagged.get(reference)
        return None if digest is None else Resolved(digest, OCI_MANIFEST)

    def manifest(self, repository: str, digest: str) -> Manifest:
        return Manifest(digest, OCI_MANIFEST, 10)

    def delete_manifest(self, repository: str, digest: str) -> bool:
        self.tagged = {t: d for t, d in self.tagged.items() if d != digest}
        return True


@pytest.fixture
def store(tmp_path: Path) -> Iterator[StateStore]:
    state = StateStore(tmp_path / "state")
    yield state
    state.close()


def test_a_manifest_deletion_is_a_registry_manifest(store: StateStore) -> None:
    deletion = Deletion(URL, "app", DIGEST, OCI_MANIFEST, ("old",), "created 40d ago", 1234)
    plan = RegistryPlan(T0, (URL,), (deletion,))
    clients = cast(Mapping[str, RegistryClient], {URL: _Registry()})
    outcome = apply(plan, clients, store)
    assert [r.result for r in outcome.results] == [Result.REMOVED]
    (entry,) = store.audit()
    assert (entry.kind, entry.host, entry.object_id) == (
        Kind.REGISTRY_MANIFEST,
        URL,
        f"app@{DIGEST}",
    )
    assert (entry.name, entry.bytes, entry.outcome) == ("app:old", 1234, Result.REMOVED)


def test_a_garbage_collection_is_a_registry_gc(
    store: StateStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    @contextmanager
    def no_client(config: RegistryConfig, env: Mapping[str, str]) -> Iterator[object]:
        yield object()

    def collected(config: RegistryConfig, client: object, *, dry_run: bool) -> GcReport:
        return GcReport(config.url, dry_run, "2.8.2", False, ("sha256:b",), 1, 7, 5, T0, T0)

    monkeypatch.setattr(commands, "_client", no_client)
    monkeypatch.setattr(commands, "run_gc", collected)
    commands.gc(RegistryConfig(url=URL), store, dry_run=False)
    (entry,) = store.audit()
    assert (entry.kind, entry.host, entry.name) == (
        Kind.REGISTRY_GC,
        URL,
        "registry.example.com",
    )
    assert (entry.outcome, entry.detail) == (
        Result.REMOVED,
        "1 blobs deleted, 5 B freed (measured)",
    )


def test_engine_rows_and_registry_rows_read_back_side_by_side(store: StateStore) -> None:
    # The store turns the stored text back into a Kind: old kinds and new ones alike.
    deletion = Deletion(URL, "app", DIGEST, OCI_MANIFEST, ("old",), "r", 1)
    clients = cast(Mapping[str, RegistryClient], {URL: _Registry()})
    apply(RegistryPlan(T0, (URL,), (deletion,)), clients, store)
    store.record_attempt("unix:///d.sock", Action(Kind.IMAGE, "sha256:i", "app:1", "r", 1, "", ""))
    assert [e.kind for e in store.audit()] == [Kind.IMAGE, Kind.REGISTRY_MANIFEST]


ENTRIES = [
    AuditEntry(1, "unix:///d.sock", T0, Kind.IMAGE, "sha256:i", "app:1", "unused", 700,
               Result.REMOVED, ""),
    AuditEntry(2, URL, T0, Kind.REGISTRY_MANIFEST, f"app@{DIGEST}", "app:old", "created 40d ago",
               1234, Result.REMOVED, ""),
    AuditEntry(3, URL, T0, Kind.REGISTRY_GC, "registry-garbage-collect", "registry.example.com",
               "blobs no manifest references", 0, Result.REMOVED, "1 blobs deleted"),
]  # fmt: skip


def test_history_shows_what_the_registry_did() -> None:
    console = Console(width=200, record=True, color_system=None)
    render_history(console, ENTRIES, [])
    lines = [line for line in console.export_text().splitlines() if line.startswith("│")]
    rows = {line.split("│")[2].strip(): line for line in lines}
    assert set(rows) == {"image", "registry-manifest", "registry-gc"}
    # A manifest is named with its registry, as docker names an image on one.
    assert "registry.example.com/app:old" in rows["registry-manifest"]
    assert "app:1 " in rows["image"]
    assert "registry.example.com" in rows["registry-gc"]


def test_history_json_says_the_registry_kinds() -> None:
    doc = history_json(ENTRIES, [])
    entries = cast(list[dict[str, object]], doc["entries"])
    assert [e["kind"] for e in entries] == ["image", "registry-manifest", "registry-gc"]
    assert entries[1]["name"] == "app:old"
