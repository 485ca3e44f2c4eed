"""Shared fixtures of the unit tests.

The support modules are imported as modules of this package (`tests.unit.fake_engine`,
`tests.unit.snapshots`, `tests.unit.deadline_peers`), not as bare names found by a
path trick; the fixtures here give tests the common fakes without an import.
"""

from __future__ import annotations

import pytest

from bilge.clock import FakeClock
from tests.unit.fake_engine import FakeEngine


@pytest.fixture
def fake_engine() -> FakeEngine:
    """An empty fake engine (dockerd 20.10's answers), recording what is removed."""
    return FakeEngine()


@pytest.fixture
def clock() -> FakeClock:
    """A clock that moves only when told to, or when slept on."""
    return FakeClock()
