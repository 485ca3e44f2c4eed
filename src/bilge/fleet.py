"""Many hosts in parallel, each isolated: a fleet runs one command on every host.

An operator's disk incident is on one host of many, and one unreachable host
must not cost the others their answer. So each host gets its own `Session`
(its own connection, snapshot, plan and apply: never one host's objects in
another's plan), all of them share one state store (one SQLite writer, group
committed: the audit log records each removal's host), and a host's run ends in
a `HostResult` whatever happens: its value, or the error that stopped it.

Threads, not processes: a host's run is mostly waiting on its engine, and the
per-request deadline of the engine seam still bounds every request. A host that
has not finished within `host_timeout` is reported as an error and left behind
(its thread is a daemon, its connections are closed under it), and the others
go on. Results come back in the order the hosts were given.

Exit codes add up to the worst: a host that failed (1) outranks bad usage on a
host (2), which outranks removals that failed somewhere (3), which outranks
success (0): a 3 says the command ran everywhere, a 1 that it did not.
"""

from __future__ import annotations

import contextlib
import os
import queue
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Generic, TypeVar

from bilge.collect.prefetch import Prefetch
from bilge.config.policy import Policy
from bilge.engine.base import DEFAULT_CONCURRENCY, Engine
from bilge.engine.contexts import Endpoint, TLSFiles
from bilge.errors import EXIT_ERROR, EXIT_OK, EXIT_SOME_FAILED, EXIT_USAGE, BilgeError
from bilge.model import ActionOutcome, Outcome, Plan, Result, Snapshot
from bilge.planner.doctor import Finding, Severity, diagnose
from bilge.session import Session
from bilge.state.store import StateStore

T = TypeVar("T")

#: Hosts run at once unless --parallel says otherwise: enough for a rack of CI
#: runners, few enough that a laptop's ssh connections and file handles last.
DEFAULT_PARALLEL = 8

#: Exit codes from best to worst (module docstring).
_RANK = {EXIT_OK: 0, EXIT_SOME_FAILED: 1, EXIT_USAGE: 2, EXIT_ERROR: 3}

#: Called with a host's index and what it is doing now ("reading", "applying", ...).
OnState = Callable[[int, str], None]


def worst_exit(codes: Iterable[int]) -> int:
    """The fleet's exit code: the worst of its hosts' (0 for no hosts)."""
    return max(codes, key=lambda code: _RANK.get(code, _RANK[EXIT_ERROR]), default=EXIT_OK)


@dataclass(frozen=True)
class HostResult(Generic[T]):
    """One host's end: its value and exit code, or the error that stopped it."""

    endpoint: Endpoint
    value: T | None
    code: int
    error: str | None = None
    seconds: float = 0.0

    @property
    def host(self) -> str:
        return self.endpoint.label


def run_parallel(
    endpoints: Sequence[Endpoint],
    work: Callable[[int, Endpoint], tuple[int, T]],
    *,
    parallel: int = DEFAULT_PARALLEL,
    host_timeout: float | None = None,
    on_timeout: Callable[[int], None] | None = None,
) -> list[HostResult[T]]:
    """`work(index, endpoint)` on every host, `parallel` at a time, each within
    `host_timeout` seconds; results in the order of `endpoints`. An unresolved
    endpoint is an error without running; `on_timeout(index)` is told of a host
    left behind, to close its connections."""
    if parallel < 1:
        raise ValueError("parallel must be at least 1")
    results: list[HostResult[T] | None] = [None] * len(endpoints)
    done: queue.Queue[tuple[int, HostResult[T]]] = queue.Queue()
    waiting = deque(range(len(endpoints)))
    running: dict[int, float] = {}
    while waiting or running:
        while waiting and len(running) < parallel:
            index = waiting.popleft()
            running[index] = time.monotonic()
            args = (index, endpoints[index], work, done)
            threading.Thread(target=_one_host, args=args, daemon=True).start()
        try:
            index, result = done.get(timeout=_wait(running, host_timeout))
        except queue.Empty:
            for index in _late(running, host_timeout):
                del running[index]
                results[index] = _timed_out(endpoints[index], host_timeout or 0.0)
                if on_timeout is not None:
                    on_timeout(index)
            continue
        if running.pop(index, None) is not None:  # else: already reported as timed out
            results[index] = result
    return [r for r in results if r is not None]


def _one_host(
    index: int,
    endpoint: Endpoint,
    work: Callable[[int, Endpoint], tuple[int, T]],
    done: queue.Queue[tuple[int, HostResult[T]]],
) -> None:
    """Run one host's work; whatever it raises becomes its result, never the fleet's end."""
    started = time.monotonic()
    try:
        if endpoint.error is not None:
            raise BilgeError(endpoint.error)
        code, value = work(index, endpoint)
        result = HostResult(endpoint, value, code, seconds=time.monotonic() - started)
    except BilgeError as exc:
        result = HostResult(endpoint, None, exc.exit_code, str(exc), time.monotonic() - started)
    except Exception as exc:  # a bug on one host: shown on its row, the others go on
        error = f"internal error: {type(exc).__name__}: {exc}"
        result = HostResult(endpoint, None, EXIT_ERROR, error, time.monotonic() - started)
    done.put((index, result))


def _wait(running: dict[int, float], host_timeout: float | None) -> float | None:
    """How long to wait for the next result before a host's time is up."""
    if host_timeout is None or not running:
        return None
    return max(0.0, min(running.values()) + host_timeout - time.monotonic())


def _late(running: dict[int, float], host_timeout: float | None) -> list[int]:
    if host_timeout is None:
        return []
    now = time.monotonic()
    return [i for i, started in running.items() if now >= started + host_timeout]


def _timed_out(endpoint: Endpoint, seconds: float) -> HostResult[T]:
    error = f"{endpoint.label}: did not finish within the host timeout ({seconds:g}s)"
    return HostResult(endpoint, None, EXIT_ERROR, error, seconds)


@dataclass(frozen=True)
class HostReport:
    """What a command found on one host: the snapshot, its plan, the doctor's
    findings and, after apply, the outcome."""

    snapshot: Snapshot
    plan: Plan
    findings: tuple[Finding, ...] = ()
    outcome: Outcome | None = None

    @property
    def critical(self) -> int:
        return sum(1 for f in self.findings if f.severity is Severity.CRITICAL)


class Fleet:
    """The hosts of one command, each with a session of its own over one shared
    state store. Use `survey` (status, plan and findings everywhere) and then,
    for apply, `apply` on the hosts surveyed; `close` at the end."""

    def __init__(
        self,
        endpoints: Sequence[Endpoint],
        policy: Policy,
        state_dir: Path,
        *,
        parallel: int = DEFAULT_PARALLEL,
        host_timeout: float | None = None,
        prefetch: Prefetch | None = None,
    ) -> None:
        self.endpoints = list(endpoints)
        self.policy = policy
        self.parallel = parallel
        self.host_timeout = host_timeout
        self.store = StateStore(state_dir)
        self._prefetch = prefetch
        self._sessions: dict[int, Session] = {}
        self._lock = threading.Lock()

    def session(self, index: int) -> Session:
        """Host `index`'s session (made on first use); only the first host gets
        the prefetch, which reads the data-root of the first host."""
        with self._lock:
            if index not in self._sessions:
                endpoint = self.endpoints[index]
                self._sessions[index] = Session(
                    endpoint.address,
                    self.policy,
                    self.store,
                    engine_factory=engine_factory(endpoint, self.policy),
                    prefetch=self._prefetch if index == 0 else None,
                )
            return self._sessions[index]

    def survey(self, on_state: OnState | None = None) -> list[HostResult[HostReport]]:
        """A snapshot, its plan and the doctor's findings of every host."""

        def work(index: int, endpoint: Endpoint) -> tuple[int, HostReport]:
            _tell(on_state, index, "reading")
            session = self.session(index)
            status = session.status()
            host = status.snapshot.engine.host
            samples = session.store.samples(host, limit=2000)
            findings = diagnose(status.snapshot, status.plan, self.policy, samples,
                                status.snapshot.taken_at)  # fmt: skip
            _tell(on_state, index, "done")
            return EXIT_OK, HostReport(status.snapshot, status.plan, findings)

        return self._run(work)

    def apply(
        self,
        surveyed: Sequence[HostResult[HostReport]],
        *,
        concurrency: int = DEFAULT_CONCURRENCY,
        on_state: OnState | None = None,
        on_result: Callable[[int, ActionOutcome], None] | None = None,
    ) -> list[HostResult[HostReport]]:
        """Apply each surveyed host's plan on that host; a host whose survey
        failed keeps its error and is not touched."""
        reports = [r.value for r in surveyed]

        def work(index: int, endpoint: Endpoint) -> tuple[int, HostReport]:
            report = reports[index]
            if report is None:
                failed = surveyed[index]
                raise _Failed(failed.error or "not surveyed", failed.code)
            _tell(on_state, index, "applying")
            tick = (lambda o: on_result(index, o)) if on_result is not None else None
            outcome = self.session(index).apply(
                report.plan, report.snapshot, concurrency=concurrency, on_result=tick
            )
            _tell(on_state, index, "done")
            code = EXIT_SOME_FAILED if outcome.count(Result.FAILED) else EXIT_OK
            return code, HostReport(report.snapshot, report.plan, report.findings, outcome)

        return shared_filesystems(self._run(work))

    def _run(self, work: Callable[[int, Endpoint], tuple[int, T]]) -> list[HostResult[T]]:
        return run_parallel(
            self.endpoints, work, parallel=self.parallel, host_timeout=self.host_timeout,
            on_timeout=self._abandon,
        )  # fmt: skip

    def _abandon(self, index: int) -> None:
        """Close a late host's connections under it: its requests fail at once."""
        session = self._sessions.get(index)
        if session is not None:
            _close_engine(session)

    def close(self) -> list[str]:
        """Close every host's connections (an ssh:// host's are ssh processes)
        and the shared store; returns the warnings to show (a full disk)."""
        for session in self._sessions.values():
            _close_engine(session)
        try:
            self.store.close()
        finally:
            warnings = self.store.take_warnings()
        return warnings


class _Failed(BilgeError):
    """A host's earlier error carried to its next step, with its exit code."""

    def __init__(self, message: str, code: int) -> None:
        super().__init__(message)
        self.exit_code = code


def shared_filesystems(results: list[HostResult[HostReport]]) -> list[HostResult[HostReport]]:
    """Hosts whose data-roots are on one filesystem of this machine (engines
    side by side) applied at the same time: the statvfs difference each
    measured holds the others' removals too, so none of them is credited with
    it (as for a remote engine, the prediction stands)."""
    devices: dict[int, int] = {}
    for result in results:
        device = _device(result.value)
        if device is not None:
            devices[device] = devices.get(device, 0) + 1
    shared = {device for device, hosts in devices.items() if hosts > 1}
    return [_unmeasured(r) if _device(r.value) in shared else r for r in results]


def _unmeasured(result: HostResult[HostReport]) -> HostResult[HostReport]:
    report = result.value
    if report is None or report.outcome is None:
        return result
    outcome = replace(report.outcome, freed_bytes_measured=None)
    return replace(result, value=replace(report, outcome=outcome))


def _device(report: HostReport | None) -> int | None:
    if report is None or report.outcome is None or not report.snapshot.engine.local:
        return None
    try:
        return os.stat(report.snapshot.engine.data_root).st_dev
    except OSError:
        return None


def _close_engine(session: Session) -> None:
    """Close the session's engine if it opened one (the session leaves it open)."""
    close = getattr(session._engine, "close", None)
    if callable(close):
        with contextlib.suppress(Exception):  # a late host's thread may still use it
            close()


def _tell(on_state: OnState | None, index: int, state: str) -> None:
    if on_state is not None:
        on_state(index, state)


def engine_factory(endpoint: Endpoint, policy: Policy) -> Callable[[str], Engine] | None:
    """How to open an endpoint's engine when a context gives it TLS files (else
    the session's default: DockerEngine, TLS as the environment says)."""
    tls_files = endpoint.tls
    if tls_files is None:
        return None
    seconds = policy.engine.request_timeout.total_seconds()

    def make(host: str) -> Engine:
        from bilge.engine.docker import DockerEngine
        from bilge.engine.transport import open_transport

        transport = open_transport(host, timeout=seconds, tls=tls_config(tls_files))
        return DockerEngine(host, timeout=seconds, transport=transport)

    return make


def tls_config(files: TLSFiles) -> object:
    """docker-py's TLS settings from a context's files (loads docker-py): the
    context's CA when it has one, else the system's; no check at all only when
    the context says SkipTLSVerify."""
    import docker.errors
    import docker.tls

    cert = (str(files.cert), str(files.key)) if files.cert and files.key else None
    ca = str(files.ca) if files.ca else None
    try:
        return docker.tls.TLSConfig(client_cert=cert, ca_cert=ca, verify=files.verify)
    except docker.errors.TLSParameterError as exc:
        raise BilgeError(f"TLS files of the context: {exc}") from exc
