"""The guard's decisions, on a fake clock, a fake engine and a scripted disk.

No engine, no real sleep: `Disk` answers the guard's usage samples from what
the fake engine still holds, so that an eviction shows in the next sample as it
would on a real disk, and the clock moves only when the guard sleeps or a test
advances it. tests/integration/test_watch.py runs the same guard for real.
"""

from __future__ import annotations

from collections.abc import Iterator
from itertools import pairwise
from pathlib import Path
from typing import Any

import pytest

from bilge.clock import FakeClock
from bilge.config.policy import Policy, parse_policy
from bilge.errors import EngineUnreachable
from bilge.guard.alerts import Alert, Webhook
from bilge.guard.log import Log
from bilge.guard.loop import BACKOFF_CAP, EVENT_SETTLE_SECONDS, Guard, WatchOptions
from bilge.model import Filesystem, UsageSample
from bilge.state.store import StateStore
from tests.unit.fake_engine import JSON, FakeEngine

TOTAL = 1_000_000
RECORD = 100_000
WATCH = '[watch]\nhigh = "85%"\nlow = "75%"\ninterval = "30s"\n'
#: Build cache is the cheapest thing to lose, and its size is what the engine says.
EAGER = parse_policy(WATCH + '[build_cache]\nkeep_storage = "0B"\nunused_after = "0s"\n', "t")
DOUBLING = [1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 60.0, 60.0]


def cache_record(n: int) -> JSON:
    return {"ID": f"bc{n}", "Type": "regular", "Description": "RUN make", "InUse": False,
            "Shared": False, "Size": RECORD, "CreatedAt": "2025-01-01T00:00:00Z",
            "LastUsedAt": "2025-01-01T00:00:00Z", "UsageCount": 1}  # fmt: skip


class Disk:
    """The data-root's filesystem as the guard samples it: `other` bytes that
    bilge cannot touch, plus the fake engine's build cache."""

    def __init__(self, engine: FakeEngine, other: int) -> None:
        self.engine, self.other = engine, other

    @property
    def used(self) -> int:
        return self.other + sum(int(r["Size"]) for r in self.engine.df["BuildCache"])

    def __call__(self, path: str) -> Filesystem:
        return Filesystem(path, TOTAL, TOTAL - self.used, 1000, 900)


class Recorder(Log):
    """The guard's log, kept as (event, fields)."""

    def __init__(self) -> None:
        super().__init__("json")
        self.lines: list[tuple[str, dict[str, Any]]] = []

    def __call__(self, event: str, level: str = "info", **fields: object) -> None:
        self.lines.append((event, fields))

    def events(self, name: str) -> list[dict[str, Any]]:
        return [fields for event, fields in self.lines if event == name]


class Alerts(Webhook):
    """A webhook that keeps what it is sent."""

    def __init__(self) -> None:
        super().__init__("http://alerts.invalid/hook")
        self.sent: list[Alert] = []

    def send(self, alert: Alert) -> None:
        self.sent.append(alert)


class Setup:
    """A guard of one fake engine whose data-root is a directory under tmp_path."""

    def __init__(self, tmp_path: Path, *, other: int, policy: Policy = EAGER) -> None:
        root = tmp_path / "docker"
        (root / "containers").mkdir(parents=True)  # readable: the guard measures it
        self.engine = FakeEngine(
            info_doc={"DockerRootDir": str(root), "Driver": "overlay2"},
            df={"BuildCache": [cache_record(n) for n in range(5)], "Volumes": [], "Images": []},
        )
        self.disk = Disk(self.engine, other)
        self.clock = FakeClock()
        self.store = StateStore(tmp_path / "state", clock=self.clock)
        self.log, self.alerts = Recorder(), Alerts()
        self.connects: list[float] = []
        self.guard = Guard([self.engine.host], policy, self.store, WatchOptions(once=True),
                           engine_factory=self.connect, log=self.log, webhook=self.alerts,
                           clock=self.clock, sample=self.disk)  # fmt: skip
        self.host = self.guard.hosts[0]

    def connect(self, address: str) -> FakeEngine:
        self.connects.append(self.clock.monotonic())
        return self.engine

    def tick(self, times: int = 1) -> None:
        """Samples as the guard's loop takes them: one per interval."""
        for _ in range(times):
            self.guard._tick(self.host)
            self.clock.sleep(self.guard.policy.watch.interval.total_seconds())

    @property
    def alerted(self) -> list[str]:
        return [a.event for a in self.alerts.sent]


def guard_samples(s: Setup) -> list[UsageSample]:
    """The samples the guard recorded (each snapshot records one of the real
    directory too, on its own clock: not these figures)."""
    return [x for x in s.store.samples(s.engine.host) if x.total_bytes == TOTAL]


@pytest.fixture
def make(tmp_path: Path) -> Iterator[Any]:
    made: list[Setup] = []

    def setup(**kwargs: Any) -> Setup:
        made.append(Setup(tmp_path, **kwargs))
        return made[-1]

    yield setup
    for s in made:
        s.store.close()


def test_crossing_high_evicts_cheapest_first_down_to_low(make: Any) -> None:
    s = make(other=450_000)  # 95% used: 200 kB must go to reach 75%
    start = s.clock.now()
    s.tick()
    assert s.engine.removed == [("build-cache", "bc0"), ("build-cache", "bc1")]
    assert s.disk.used == 750_000  # exactly low: just enough was removed
    assert [f["round"] for f in s.log.events("eviction-round")] == [1]
    assert s.log.events("eviction-done") and not s.log.events("eviction-shortfall")
    assert s.alerted == ["high", "recovered"]
    # The sample, the metrics and the audit log carry the clock's time.
    (sample,) = guard_samples(s)
    assert sample.at == start and sample.free_bytes == 50_000
    stamped = s.guard.metrics.last_eviction.labels(s.engine.host)._value.get()
    assert stamped == start.timestamp()
    assert {e.at for e in s.store.audit()} == {start}


def test_below_high_nothing_is_evicted(make: Any) -> None:
    s = make(other=340_000)  # 84%
    s.tick(5)
    assert s.engine.removed == [] and s.alerted == []
    assert not s.log.events("eviction-start")
    assert len(guard_samples(s)) == 5
    assert s.clock.monotonic() - s.connects[0] == 5 * 30  # sampled every interval


def test_an_unreachable_engine_is_retried_doubling_to_a_minute_then_reset(make: Any) -> None:
    s = make(other=340_000)
    s.engine.unreachable = True
    start = s.clock.monotonic()
    for _ in range(300):  # one sample a second, as the shortest interval would
        s.guard._tick(s.host)
        s.clock.advance(1)
    waits = [f["retry_in"] for f in s.log.events("engine-unreachable")]
    assert waits == [*DOUBLING, BACKOFF_CAP, BACKOFF_CAP]
    tried = [t - start for t in s.connects]
    assert [b - a for a, b in pairwise(tried)] == waits[:-1]
    # Back: connected at the next retry, and the backoff starts over.
    s.engine.unreachable = False
    while not s.log.events("connected"):
        s.guard._tick(s.host)
        s.clock.advance(1)
    assert s.clock.monotonic() - start - 1 == tried[-1] + BACKOFF_CAP
    s.engine.unreachable = True
    s.disk.other = 450_000  # above high: the eviction finds the engine gone again
    s.guard._tick(s.host)
    assert s.log.events("engine-unreachable")[-1]["retry_in"] == 1.0


def test_the_event_stream_is_followed_again_with_the_same_backoff(make: Any) -> None:
    s = make(other=340_000)
    s.engine.image_list = [{"Id": "sha256:app", "RepoTags": ["app:1"], "Created": 1}]
    s.engine.event_list = [{"Type": "image", "Action": "pull", "time": 1767225600,
                            "Actor": {"ID": "sha256:app"}}]  # fmt: skip
    calls = 0

    def follow(address: str) -> FakeEngine:
        nonlocal calls
        calls += 1
        if calls == len(DOUBLING) + 2:
            s.guard.stop.set()  # as SIGTERM would, while it waits to reconnect
        if calls <= len(DOUBLING) or s.guard.stop.is_set():
            raise EngineUnreachable("cannot connect to the engine (fake)")
        return s.engine  # streams the pull, then ends (the engine restarted)

    s.guard.engine_factory = follow
    s.guard._follow_events(s.host)
    assert s.clock.sleeps == [*DOUBLING, 1.0]  # reset once it followed again
    assert len(s.log.events("following-events")) == 1
    assert s.guard.wake.is_set()  # the event wakes the sampling loop
    ((first_seen, _),) = s.store.image_use(s.engine.host).values()
    assert first_seen.timestamp() == 1767225600


def test_a_shortfall_alerts_naming_the_biggest_holders(make: Any) -> None:
    s = make(other=900_000, policy=parse_policy(WATCH, "t"))  # 90%
    s.engine.df["BuildCache"] = []
    s.engine.image_list = [{"Id": "sha256:app", "RepoTags": ["app:1"], "Created": 1,
                            "Size": 300_000}]  # fmt: skip
    s.tick()
    assert s.engine.removed == []
    assert s.alerted == ["high", "shortfall"]
    text = s.alerts.sent[1].text
    assert "biggest holders" in text and "image app:1" in text
    (short,) = s.log.events("eviction-shortfall")
    assert "app:1" in short["holders"]
    assert s.guard.metrics.shortfall.labels(s.engine.host)._value.get() == 1


def test_recovery_below_high_is_alerted_once(make: Any) -> None:
    s = make(other=450_000)
    s.tick(4)
    assert s.alerted == ["high", "recovered"]
    assert len(s.log.events("eviction-start")) == 1
    s.disk.other = 600_000  # something else fills the disk again: a new episode
    s.tick(3)
    assert s.alerted == ["high", "recovered", "high", "recovered"]


def test_an_event_cuts_the_interval_short_and_lets_a_burst_settle(make: Any) -> None:
    s = make(other=340_000)
    s.guard._sleep(30)
    s.guard.wake.set()
    s.guard._sleep(30)
    assert s.clock.sleeps == [30, 30, EVENT_SETTLE_SECONDS]
    assert not s.guard.wake.is_set()
    assert s.clock.monotonic() == 1000 + 30 + EVENT_SETTLE_SECONDS


def test_an_engine_that_never_answers_does_not_hold_up_the_other_hosts(tmp_path: Path) -> None:
    """Opening an engine behind a firewall that drops packets costs a whole request
    deadline: the guard waits for it beside its loop and samples the healthy host."""
    import threading

    healthy = Setup(tmp_path / "a", other=100_000)
    released = threading.Event()

    def connect(address: str) -> FakeEngine:
        if address == "tcp://10.0.0.1:2375":
            released.wait(30)  # a connect that hangs until the test lets it fail
            raise EngineUnreachable("timed out")
        return healthy.engine

    hosts = ["tcp://10.0.0.1:2375", healthy.engine.host]
    guard = Guard(hosts, EAGER, healthy.store, WatchOptions(once=False),
                  engine_factory=connect, log=healthy.log, clock=healthy.clock,
                  sample=healthy.disk)  # fmt: skip
    try:
        for host in guard.hosts:
            guard._tick(host)  # returns at once for both: nothing waits on the dead one
        assert guard.hosts[0].connecting and guard.hosts[0].engine is None
        assert _within(lambda: guard.hosts[1].engine is not None), "the healthy one opened"
        for host in guard.hosts:
            guard._tick(host)
        assert len(guard_samples(healthy)) == 1, "the healthy host was sampled"
        assert guard.hosts[0].connecting, "while the other one still hangs"
    finally:
        released.set()
    assert _within(lambda: not guard.hosts[0].connecting)
    assert healthy.log.events("engine-unreachable")[0]["host"] == "tcp://10.0.0.1:2375"
    healthy.store.close()


def _within(done: Any, seconds: float = 30) -> bool:
    """Whether `done()` becomes true within `seconds` of real time (a thread's work)."""
    import threading

    for _ in range(int(seconds * 100)):
        if done():
            return True
        threading.Event().wait(0.01)
    return bool(done())
