"""The guard's Prometheus metrics, in a registry of its own.

Names and labels are a contract with the alert rules and the dashboard in
deploy/ (tests/unit/test_deploy.py checks they only use these). Every metric
has a `host` label: one guard may watch several engines.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, start_http_server

from bilge.model import ActionOutcome, Filesystem, Result
from bilge.planner.summary import KindUsage


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.used_bytes = Gauge(
            "bilge_filesystem_used_bytes",
            "Bytes used on the data-root's filesystem",
            ["host"],
            registry=r,
        )
        self.size_bytes = Gauge(
            "bilge_filesystem_size_bytes",
            "Size of the data-root's filesystem",
            ["host"],
            registry=r,
        )
        self.used_inodes = Gauge(
            "bilge_filesystem_used_inodes",
            "Inodes used on the data-root's filesystem",
            ["host"],
            registry=r,
        )
        self.inodes = Gauge(
            "bilge_filesystem_inodes", "Inodes of the data-root's filesystem", ["host"], registry=r
        )
        self.above_high = Gauge(
            "bilge_above_high_watermark",
            "1 while usage is at or above a high watermark",
            ["host"],
            registry=r,
        )
        self.reclaimable = Gauge(
            "bilge_reclaimable_bytes",
            "Bytes the policy would reclaim, by kind",
            ["host", "kind"],
            registry=r,
        )
        self.removals = Counter(
            "bilge_removals",
            "Objects removed, by kind and reason",
            ["host", "kind", "reason"],
            registry=r,
        )
        self.freed = Counter(
            "bilge_freed_bytes",
            "Bytes freed (predicted per removal), by kind and reason",
            ["host", "kind", "reason"],
            registry=r,
        )
        self.evictions = Counter(
            "bilge_evictions",
            "Evictions run because a high watermark was crossed",
            ["host"],
            registry=r,
        )
        self.shortfall = Gauge(
            "bilge_eviction_shortfall",
            "1 when the last eviction could not reach the low watermark",
            ["host"],
            registry=r,
        )
        self.last_sample = Gauge(
            "bilge_last_sample_timestamp_seconds",
            "Unix time of the last usage sample",
            ["host"],
            registry=r,
        )
        self.last_eviction = Gauge(
            "bilge_last_eviction_timestamp_seconds",
            "Unix time of the last eviction",
            ["host"],
            registry=r,
        )
        self.errors = Counter(
            "bilge_errors", "Errors, by kind (engine, state, alert, apply)", ["host", "kind"],
            registry=r,
        )  # fmt: skip

    def serve(self, address: str) -> None:
        """Serve /metrics on HOST:PORT in a daemon thread."""
        host, _, port = address.rpartition(":")
        start_http_server(int(port), addr=host.strip("[]") or "127.0.0.1", registry=self.registry)

    def sample(self, host: str, fs: Filesystem, above: bool, at: float) -> None:
        self.used_bytes.labels(host).set(fs.used_bytes)
        self.size_bytes.labels(host).set(fs.total_bytes)
        self.used_inodes.labels(host).set(fs.used_inodes)
        self.inodes.labels(host).set(fs.total_inodes)
        self.above_high.labels(host).set(1 if above else 0)
        self.last_sample.labels(host).set(at)

    def usage(self, host: str, rows: tuple[KindUsage, ...]) -> None:
        for row in rows:
            self.reclaimable.labels(host, row.kind).set(row.reclaimable_bytes)

    def removed(self, host: str, outcome: ActionOutcome) -> None:
        if outcome.result is Result.REMOVED:
            kind, reason = str(outcome.action.kind), _reason_class(outcome.action.reason)
            self.removals.labels(host, kind, reason).inc()
            self.freed.labels(host, kind, reason).inc(outcome.action.bytes)
        elif outcome.result is Result.FAILED:
            self.errors.labels(host, "apply").inc()

    def evicted(self, host: str, at: float, short: bool) -> None:
        self.evictions.labels(host).inc()
        self.last_eviction.labels(host).set(at)
        self.shortfall.labels(host).set(1 if short else 0)

    def error(self, host: str, kind: str) -> None:
        self.errors.labels(host, kind).inc()


def _reason_class(reason: str) -> str:
    """A label value with few distinct values: the reason's first words, not its figures."""
    words = []
    for word in reason.split():
        if any(ch.isdigit() for ch in word) or word.startswith("("):
            break
        words.append(word)
    return " ".join(words[:4]) or "policy"
