"""`bilge watch`: the guard that keeps the disk below its high watermark.

Every `[watch] interval`, and soon after engine events, it samples the
data-root's filesystem (statvfs: cheap) for each host. When bytes or inodes
cross the high watermark it plans an eviction down to the low one, cheapest
loss first (eviction.py), applies it, measures, and repeats while still above
high. Meanwhile a thread per host follows the engine's events and records
when each image was last used (lastuse.py), which plan and apply then use.

It stays up: an engine that restarts or whose socket vanishes is reconnected
with backoff; SIGTERM or SIGINT lets the removals in flight finish, flushes
the state store and exits 0. It reports through Prometheus metrics, webhook
alerts, and one log line per event (log.py: text, or JSON with --json or
--log-format json). `--once` samples (and evicts) once and exits: it serves
no metrics, since nothing would be there to scrape them.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from functools import partial
from types import FrameType
from typing import Any

from bilge.applier.core import apply
from bilge.clock import SYSTEM_CLOCK, Clock
from bilge.collect.snapshot import statvfs
from bilge.config.policy import Policy
from bilge.config.units import format_size
from bilge.engine.base import Engine, EventStream
from bilge.engine.connect import open_engine
from bilge.errors import EXIT_OK, BilgeError, EngineError, StateError
from bilge.guard.alerts import Alert, Webhook, send_alert, untouchable
from bilge.guard.imageuse import image_id, replay, with_parents
from bilge.guard.lastuse import interpret
from bilge.guard.log import Log
from bilge.guard.metrics import Metrics
from bilge.guard.options import WatchOptions, started_fields
from bilge.guard.reporting import ScheduledReport
from bilge.model import ActionOutcome, Filesystem, Plan, Snapshot
from bilge.planner import eviction
from bilge.planner.core import plan as make_plan
from bilge.planner.summary import usage_by_kind
from bilge.session import Session
from bilge.state.store import StateStore

__all__ = ["Guard", "Log", "WatchOptions", "run"]

#: Rounds of plan-apply-measure in one eviction before giving up (shortfall).
MAX_ROUNDS = 3
#: Backoff for an unreachable engine, doubling up to the cap.
BACKOFF_START, BACKOFF_CAP = 1.0, 60.0
#: After an event, wait this long for the others of a burst before sampling.
EVENT_SETTLE_SECONDS = 1.0
#: Reclaimable bytes per kind (a full snapshot) are refreshed every N samples.
USAGE_EVERY = 10


@dataclass
class _Host:
    """What the guard knows about one engine between samples."""

    address: str
    engine: Engine | None = None
    data_root: str | None = None
    above: bool = False
    backoff: float = BACKOFF_START
    retry_at: float = 0.0
    samples: int = 0
    connecting: bool = False  # an engine being opened beside the loop
    stream: EventStream | None = None
    container_images: dict[str, str] = field(default_factory=dict)
    #: The session over `engine`, made again whenever the engine is reconnected.
    session: Session | None = None


class Guard:
    """The guard of some hosts. Time comes from `clock` (waits, backoffs,
    timestamps) and usage figures from `sample` (statvfs of a path), so that
    its decisions can be tested with a fake clock and scripted figures."""

    def __init__(
        self,
        hosts: list[str],
        policy: Policy,
        store: StateStore,
        options: WatchOptions,
        *,
        engine_factory: Callable[[str], Engine] | None = None,
        log: Log | None = None,
        webhook: Webhook | None = None,
        clock: Clock = SYSTEM_CLOCK,
        sample: Callable[[str], Filesystem | None] = statvfs,
    ) -> None:
        self.hosts = [_Host(h) for h in hosts]
        self.clock = clock
        self.sample = sample
        self.policy = policy
        self.store = store
        self.options = options
        timeout = policy.engine.request_timeout
        self.engine_factory = engine_factory or partial(open_engine, timeout=timeout)
        self.log = log or Log(options.log_format, clock=clock)
        self.metrics = Metrics()
        w = policy.watch
        self.webhook = webhook or Webhook.from_config(w.webhook_url, w.webhook_format)
        self.stop = threading.Event()
        self.wake = threading.Event()
        self.report = ScheduledReport(policy.watch, clock, self.log)

    # --- running -------------------------------------------------------------

    def run(self) -> int:
        w = self.policy.watch
        if not self.options.once:
            self.metrics.serve(self.options.metrics_addr or w.metrics_addr)
        self.log("started", "info", **self._started())
        if not self.options.once:
            for host in self.hosts:
                threading.Thread(target=self._follow_events, args=(host,), daemon=True).start()
        while not self.stop.is_set():
            for host in self.hosts:
                if not self.stop.is_set():
                    self._tick(host)
            self._flush()
            self.report.tick((h.address, self._session(h, h.engine) if h.engine else None)
                             for h in self.hosts)  # fmt: skip
            if self.options.once:
                break
            self._sleep(w.interval.total_seconds())
        self._shutdown()
        return EXIT_OK

    def _started(self) -> dict[str, str]:
        addresses = [h.address for h in self.hosts]
        return started_fields(addresses, self.policy, self.options, self.webhook)

    def handle_signals(self) -> None:
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, self._on_signal)

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        self.log("stopping", signal=signal.Signals(signum).name)
        self.stop.set()
        self.wake.set()
        for host in self.hosts:
            if host.stream is not None:
                host.stream.close()

    def _sleep(self, seconds: float) -> None:
        if self.clock.sleep(seconds, self.wake) and not self.stop.is_set():
            self.clock.sleep(EVENT_SETTLE_SECONDS, self.stop)  # let a burst of events settle
        self.wake.clear()

    def _shutdown(self) -> None:
        try:
            self.store.close()
        except StateError as exc:
            self.log("state-error", "error", error=str(exc))
        for warning in self.store.take_warnings():
            self.log("state-warning", "warning", message=warning)
        self.log("stopped")

    def _flush(self) -> None:
        try:
            self.store.flush()
        except StateError as exc:
            self.log("state-error", "error", error=str(exc))
        for warning in self.store.take_warnings():
            self.log("state-warning", "warning", message=warning)

    # --- one sample ------------------------------------------------------------

    def _tick(self, host: _Host) -> None:
        engine = self._connect(host)
        if engine is None or host.data_root is None:
            return
        fs = self.sample(host.data_root)
        if fs is None:
            self.log("sample-failed", "warning", host=host.address, path=host.data_root)
            return
        w = self.policy.watch
        above = eviction.above(fs, w.high, w.inodes_high)
        self._record(host, fs, above)
        if above and not host.above:
            self._alert("high", host, fs, f"disk {fs.bytes_ratio:.0%} full, inodes "
                        f"{fs.inodes_ratio:.0%} (high watermark {w.high:.0%})")  # fmt: skip
        host.above = above
        try:
            if above:
                self._evict(host, engine)
            elif host.samples % USAGE_EVERY == 1:
                self._refresh_usage(host, engine)
        except EngineError as exc:
            self._engine_lost(host, exc)
        except BilgeError as exc:
            self.log("error", "error", host=host.address, error=str(exc))
            self.metrics.error(host.address, "state" if isinstance(exc, StateError) else "apply")

    def _record(self, host: _Host, fs: Filesystem, above: bool) -> None:
        host.samples += 1
        now = self.clock.now()
        self.metrics.sample(host.address, fs, above, now.timestamp())
        try:
            self.store.record_sample(host.address, fs, now)
        except StateError as exc:
            self.metrics.error(host.address, "state")
            self.log("state-error", "error", error=str(exc))
        if above or host.samples == 1:
            self.log("sample", host=host.address, used=f"{fs.bytes_ratio:.1%}",
                     inodes=f"{fs.inodes_ratio:.1%}", above_high=above)  # fmt: skip

    def _connect(self, host: _Host) -> Engine | None:
        if host.engine is not None or host.connecting:
            return host.engine
        if self.clock.monotonic() < host.retry_at:
            return None
        if self.options.once or len(self.hosts) == 1:
            return self._open(host)
        # An engine that never answers (a host behind a firewall that drops packets)
        # costs a whole request deadline: it is waited for beside the loop, which
        # keeps sampling the other hosts, and wakes the loop once connected.
        host.connecting = True
        threading.Thread(target=self._open, args=(host,), daemon=True).start()
        return None

    def _open(self, host: _Host) -> Engine | None:
        try:
            return self._opened(host)
        finally:
            host.connecting = False
            self.wake.set()

    def _opened(self, host: _Host) -> Engine | None:
        try:
            host.engine = self.engine_factory(host.address)
            info = host.engine.info()
        except EngineError as exc:
            host.engine = None
            self._engine_lost(host, exc)
            return None
        host.backoff = BACKOFF_START
        root = str(info.get("DockerRootDir") or "")
        host.data_root = root if self.sample(root) is not None else None
        self.log("connected", host=host.address, data_root=root,
                 readable=host.data_root is not None)  # fmt: skip
        return host.engine

    def _engine_lost(self, host: _Host, exc: BaseException) -> None:
        self.metrics.error(host.address, "engine")
        self.log("engine-unreachable", "error", host=host.address, error=str(exc),
                 retry_in=host.backoff)  # fmt: skip
        host.engine = None
        host.retry_at = self.clock.monotonic() + host.backoff
        host.backoff = min(host.backoff * 2, BACKOFF_CAP)

    # --- eviction --------------------------------------------------------------

    def _session(self, host: _Host, engine: Engine) -> Session:
        """The host's session: the guard's store (shared by every host) and clock."""
        if host.session is None or host.session.engine is not engine:
            host.session = Session(
                host.address, self.policy, self.store, engine=engine, clock=self.clock
            )
        return host.session

    def _refresh_usage(self, host: _Host, engine: Engine) -> None:
        status = self._session(host, engine).status()
        self.metrics.usage(host.address, usage_by_kind(status.snapshot, status.plan))

    def _evict(self, host: _Host, engine: Engine) -> None:
        w, session = self.policy.watch, self._session(host, engine)
        self.log("eviction-start", host=host.address)
        fs: Filesystem | None = None
        for round_no in range(1, MAX_ROUNDS + 1):
            snap = session.snapshot()
            fs = self._measure(snap)
            if fs is None:
                break
            if round_no > 1 and not eviction.above(fs, w.high, w.inodes_high):
                break  # the last round brought it below high
            chosen = self._choose(snap, fs)
            if not chosen.actions:
                break
            self._apply(host, engine, chosen, round_no)
            if self.stop.is_set():
                break
        fs = self.sample(host.data_root or "") or fs
        short = fs is not None and eviction.above(fs, w.high, w.inodes_high)
        self.metrics.evicted(host.address, self.clock.now().timestamp(), short)
        if fs is not None:
            self._after_eviction(host, engine, fs, short)

    def _measure(self, snap: Snapshot) -> Filesystem | None:
        """The snapshot's filesystem read again by `sample`: every figure the
        guard decides on comes from the one sampler (None: not readable here)."""
        if snap.filesystem is None:
            return None
        return self.sample(snap.filesystem.path) or snap.filesystem

    def _choose(self, snap: Snapshot, fs: Filesystem) -> Plan:
        w = self.policy.watch
        full = make_plan(snap, self.policy, snap.taken_at)
        goal = eviction.target(fs, w.low, w.inodes_low)
        return replace(full, actions=eviction.select(full, snap, goal), kept=())

    def _apply(self, host: _Host, engine: Engine, chosen: Plan, round_no: int) -> None:
        predicted = format_size(chosen.total_bytes)
        self.log("eviction-round", host=host.address, round=round_no,
                 actions=len(chosen.actions), predicted=predicted)  # fmt: skip

        def done(outcome: ActionOutcome) -> None:
            self.metrics.removed(host.address, outcome)
            self.log("removal", host=host.address, kind=str(outcome.action.kind),
                     name=outcome.action.name, result=str(outcome.result),
                     bytes=outcome.action.bytes, reason=outcome.action.reason,
                     detail=outcome.detail)  # fmt: skip

        outcome = apply(chosen, engine, self.store, data_root=host.data_root,
                        protect_data=self.policy.volumes.protect_data,
                        on_result=done, stop=self.stop)  # fmt: skip
        self.log("eviction-applied", host=host.address, round=round_no,
                 freed=outcome.freed_bytes_measured)  # fmt: skip

    def _after_eviction(self, host: _Host, engine: Engine, fs: Filesystem, short: bool) -> None:
        host.above = short
        self.metrics.sample(host.address, fs, short, self.clock.now().timestamp())
        if not short:
            self.log("eviction-done", host=host.address, used=f"{fs.bytes_ratio:.1%}")
            self._alert("recovered", host, fs, f"back to {fs.bytes_ratio:.0%} full")
            self._refresh_usage(host, engine)
            return
        holders = untouchable(self._session(host, engine).snapshot())
        self.log("eviction-shortfall", "warning", host=host.address,
                 used=f"{fs.bytes_ratio:.1%}", holders=holders)  # fmt: skip
        self._alert("shortfall", host, fs, "nothing more may be removed; the biggest holders "
                    f"bilge may not touch: {holders}")  # fmt: skip

    def _alert(self, event: str, host: _Host, fs: Filesystem, text: str) -> None:
        send_alert(self.webhook, self.log, self.metrics, Alert(event, host.address, text), fs)

    # --- events --------------------------------------------------------------------

    def _follow_events(self, host: _Host) -> None:
        backoff = BACKOFF_START
        while not self.stop.is_set():
            try:
                engine = self.engine_factory(host.address)
                host.stream = engine.events(("container", "image"))
                replay(engine, self.clock.now(), partial(self._on_event, host, engine))
                backoff = BACKOFF_START
                self.log("following-events", host=host.address)
                for event in host.stream:
                    self._on_event(host, engine, event)
            except BilgeError as exc:
                if self.stop.is_set():
                    break
                self.metrics.error(host.address, "engine")
                self.log("events-lost", "warning", host=host.address, error=str(exc),
                         retry_in=backoff)  # fmt: skip
            if not self.stop.is_set():
                self.clock.sleep(backoff, self.stop)
                backoff = min(backoff * 2, BACKOFF_CAP)

    def _on_event(self, host: _Host, engine: Engine, event: dict[str, Any]) -> None:
        use = interpret(event, self.clock)
        if use is None:
            return
        self.wake.set()
        if use.gone:
            if use.image_ref.startswith("sha256:"):
                self.store.forget_image(host.address, use.image_ref)
            return
        image = image_id(engine, host.container_images, use.image_ref, use.container_id)
        if image:
            for one in with_parents(engine, image):
                self.store.record_image_use(host.address, one, use.at)


def run(
    hosts: list[str],
    policy: Policy,
    store: StateStore,
    options: WatchOptions,
    webhook: Webhook | None = None,
    *,
    clock: Clock = SYSTEM_CLOCK,
) -> int:
    guard = Guard(hosts, policy, store, options, webhook=webhook, clock=clock)
    guard.handle_signals()
    return guard.run()
