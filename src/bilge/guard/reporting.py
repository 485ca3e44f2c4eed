"""The guard's scheduled HTML report (`[watch] report`, `report_every`).

An operator should always find a fresh page to look at (or a web server one to
serve) without running anything: the guard writes `bilge report --html` to the
configured file when it starts and then every `report_every`, each time whole
(a new file renamed over the old one). The schedule runs on the guard's clock,
so its logic is tested on a fake one; a host the guard is not connected to is
a section with that error, and a report that cannot be written is a log line,
never the end of the guard.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING

from bilge.clock import Clock
from bilge.config.watch import WatchPolicy
from bilge.errors import EngineUnreachable

if TYPE_CHECKING:
    from bilge.session import Session

#: The guard's log: an event name, a level, and fields.
LogFn = Callable[..., None]


class ScheduledReport:
    """Writes the report when due; does nothing at all when `[watch] report` is ""."""

    def __init__(self, watch: WatchPolicy, clock: Clock, log: LogFn) -> None:
        self.path = Path(watch.report) if watch.report else None
        self.every = watch.report_every.total_seconds()
        self.clock = clock
        self.log = log
        #: When the next report is due (the clock's monotonic seconds); None: now.
        self.next_at: float | None = None

    def due(self) -> bool:
        if self.path is None:
            return False
        return self.next_at is None or self.clock.monotonic() >= self.next_at

    def tick(self, hosts: Iterable[tuple[str, Session | None]]) -> bool:
        """Write the report if it is due; `hosts` (read only then) are each host's
        address and its session, None while the guard is not connected to it.
        True when a report was written."""
        if not self.due() or self.path is None:
            return False
        self.next_at = self.clock.monotonic() + self.every
        return self._write(self.path, list(hosts))

    def _write(self, path: Path, hosts: list[tuple[str, Session | None]]) -> bool:
        from bilge.report.html import render, write_file
        from bilge.report.html.fleet import sections

        sessions = dict(hosts)

        def open_session(address: str) -> Session:
            session = sessions.get(address)
            if session is None:
                raise EngineUnreachable(f"the guard is not connected to {address} (it retries)")
            return session

        found = sections([address for address, _ in hosts], open_session, lambda _: None)
        html = render(found, self.clock.now())
        try:
            write_file(html, path)
        except OSError as exc:
            self.log("report-failed", "error", path=str(path), error=exc.strerror or str(exc))
            return False
        failed = sum(1 for s in found if s.error)
        self.log("report-written", path=str(path), bytes=len(html.encode()), hosts=len(found),
                 failed=failed)  # fmt: skip
        return True
