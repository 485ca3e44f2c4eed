"""bilge as a library: the names the README shows, and a session over a fake engine."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import bilge
from bilge import Session, load_policy
from tests.unit.fake_engine import FakeEngine

EXITED = {
    "Id": "c1",
    "Names": ["/job"],
    "Image": "app",
    "ImageID": "sha256:img",
    "State": "exited",
    "Status": "Exited (0) 3 days ago",
    "Created": 1_600_000_000,
    "Labels": {},
    "Mounts": [],
}


def test_every_public_name_is_there() -> None:
    for name in bilge.__all__:
        assert getattr(bilge, name) is not None, name
    assert bilge.plan.__module__ == "bilge.planner.core"
    assert bilge.apply.__module__ == "bilge.applier.core"


def test_import_bilge_stays_cheap() -> None:
    # The command line imports bilge first; the model and pydantic load on use.
    code = (
        "import sys, bilge;"
        " print(sorted(m for m in sys.modules if m.startswith(('bilge.', 'pydantic'))))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"


def test_a_session_plans_and_applies(tmp_path: Path) -> None:
    engine = FakeEngine(container_list=[dict(EXITED)])
    with Session(engine.host, load_policy(None), state_dir=tmp_path, engine=engine) as session:
        plan = session.plan()
        assert [(a.kind, a.name) for a in plan.actions] == [("container", "job")]
        outcome = session.apply(plan)
        assert [r.result for r in outcome.results] == ["removed"]
        history = session.history()
    assert [e.name for e in history.entries] == ["job"]
    assert engine.removed == [("container", "c1")]


def test_a_session_takes_its_time_from_its_clock(tmp_path: Path) -> None:
    from datetime import UTC, datetime

    from bilge.clock import FakeClock

    clock = FakeClock(datetime(2030, 5, 1, tzinfo=UTC))
    engine = FakeEngine(container_list=[dict(EXITED)])
    with Session(
        engine.host, load_policy(None), state_dir=tmp_path, engine=engine, clock=clock
    ) as s:
        snap = s.snapshot()
        outcome = s.apply(s.plan())
    assert snap.taken_at == datetime(2030, 5, 1, tzinfo=UTC)
    assert outcome.started_at == outcome.finished_at == datetime(2030, 5, 1, tzinfo=UTC)
