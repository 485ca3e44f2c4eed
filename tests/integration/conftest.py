"""Fixtures for tests against a real, private Docker engine.

`sandbox` (session) starts one engine for the whole run through
`scripts/sandbox-engine`; `disk_sandbox` (session, started only when a test asks for it)
is a second one whose data-root is a 512 MB loop-mounted ext4 filesystem, for disk-full
scenarios. Both are stopped at the end of the session, also after a failure or Ctrl-C.

Tests use `engine` / `disk_engine`: the same engines, reset after each test (no
containers, volumes, custom networks, build cache, or images but the base image), so
that no test sees another's objects. Every test in this directory is marked `engine`
(`pytest -m "not engine"` skips them).
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from helpers import Sandbox, reset_engine, start_sandbox, stop_sandbox

HERE = Path(__file__).resolve().parent


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if item.path.is_relative_to(HERE):
            item.add_marker(pytest.mark.engine)


def _session_sandbox(disk: str | None) -> Iterator[Sandbox]:
    # A fresh directory of our own under /tmp, not pytest's basetemp: pytest deletes old
    # basetemps, which must never happen to a directory with mounts in it.
    directory = Path(tempfile.mkdtemp(prefix="bilge-sandbox-"))
    try:
        yield start_sandbox(directory, disk=disk)
    finally:
        stop_sandbox(directory)


@pytest.fixture(scope="session")
def sandbox() -> Iterator[Sandbox]:
    """The session's private engine (data-root on the host's filesystem)."""
    yield from _session_sandbox(disk=None)


@pytest.fixture(scope="session")
def disk_sandbox() -> Iterator[Sandbox]:
    """A private engine whose data-root is a 512 MB ext4 filesystem of its own."""
    yield from _session_sandbox(disk="512M")


@pytest.fixture
def engine(sandbox: Sandbox) -> Iterator[Sandbox]:
    """`sandbox`, reset after the test."""
    yield sandbox
    reset_engine(sandbox)


@pytest.fixture
def disk_engine(disk_sandbox: Sandbox) -> Iterator[Sandbox]:
    """`disk_sandbox`, reset after the test."""
    yield disk_sandbox
    reset_engine(disk_sandbox)
