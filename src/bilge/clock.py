"""Time, passed in: the guard, apply, the state store and the registry ask a
`Clock` instead of the `time` and `datetime` modules.

The guard waits (its sampling interval, a reconnect backoff doubling to a
minute), and a registry gc waits for the restarted registry; tests of that
logic would otherwise take minutes of real sleep, or patch the `time` module
under every other thread too. `FakeClock` moves only when told to, or when
someone sleeps on it, and then at once.

Engine and registry request deadlines are not here: they bound real I/O on
sockets, and a fake clock could not make a peer answer sooner.
"""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta
from typing import Protocol


class Clock(Protocol):
    """Where bilge reads the time and waits."""

    def now(self) -> datetime:
        """The wall-clock time, timezone-aware, in UTC: for timestamps people read."""
        ...

    def monotonic(self) -> float:
        """Seconds from an arbitrary start that never go back: for deadlines and
        backoffs, which a wall-clock step (NTP, a suspended VM) must not stretch."""
        ...

    def sleep(self, seconds: float, stop: threading.Event | None = None) -> bool:
        """Wait `seconds`, or less if `stop` is set meanwhile (or already).

        True when `stop` ended the wait, as `threading.Event.wait` answers,
        so that a loop can tell "time to go on" from "time to stop".
        """
        ...


class SystemClock:
    """The real time; waits really wait."""

    def now(self) -> datetime:
        return datetime.now(UTC)

    def monotonic(self) -> float:
        return time.monotonic()

    def sleep(self, seconds: float, stop: threading.Event | None = None) -> bool:
        seconds = max(seconds, 0.0)
        if stop is not None:
            return stop.wait(seconds)
        time.sleep(seconds)
        return False


#: The clock everything uses unless a test passes another.
SYSTEM_CLOCK: Clock = SystemClock()

#: Where a FakeClock starts unless told: a fixed date, so that tests read alike.
FAKE_START = datetime(2026, 1, 1, tzinfo=UTC)


class FakeClock:
    """A clock for tests: time moves only by `advance`, or by `sleep`, which
    returns at once having moved it (unless `stop` is set: then it returns True
    and time stays). Safe to share between threads.

    `sleeps` lists every wait asked for, in order, so that a test can assert a
    backoff's steps without taking them.
    """

    def __init__(self, start: datetime = FAKE_START, monotonic: float = 1000.0) -> None:
        if start.tzinfo is None:
            raise ValueError("a FakeClock starts at an aware datetime")
        self._lock = threading.Lock()
        self._start = start.astimezone(UTC)
        self._origin = monotonic
        self._elapsed = 0.0
        self.sleeps: list[float] = []

    def now(self) -> datetime:
        with self._lock:
            return self._start + timedelta(seconds=self._elapsed)

    def monotonic(self) -> float:
        with self._lock:
            return self._origin + self._elapsed

    def advance(self, seconds: float) -> None:
        """Move time on; never back, as neither clock it stands for goes back."""
        if seconds < 0:
            raise ValueError(f"time cannot go back ({seconds} s)")
        with self._lock:
            self._elapsed += seconds

    def sleep(self, seconds: float, stop: threading.Event | None = None) -> bool:
        with self._lock:
            self.sleeps.append(seconds)
            if stop is not None and stop.is_set():
                return True
            self._elapsed += max(seconds, 0.0)
        return False
