"""The forwarders' Prometheus series, in the collector's registry (docs/operations.md, docs/forwarding.md).

    metrics = ForwardMetrics(collector_metrics.registry)
    metrics.forwarded(target, 500); metrics.error(target); metrics.lag(target, 1200)
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge

__all__ = ["ForwardMetrics"]

PREFIX = "dnswatch_collector_forward"


class ForwardMetrics:
    """Events forwarded, failures and the lag, per target (its --forward text). Thread-safe."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self._events = Counter(f"{PREFIX}_events", "Events handed to a forwarding target (a grown event counts "
                               "again; what is sent again after a failure or a restart counts again).",
                               ["target"], registry=registry)
        self._errors = Counter(f"{PREFIX}_errors", "Failed attempts to hand events to a forwarding target (it "
                               "stays behind in the change sequence and tries again).", ["target"],
                               registry=registry)
        self._lag = Gauge(f"{PREFIX}_lag_events", "How far a forwarding target is behind the store: change "
                          "sequence numbers not yet forwarded (an upper bound on the events behind).", ["target"],
                          registry=registry)
        self._connected = Gauge(f"{PREFIX}_target_up", "1 while the last attempt to reach the forwarding target "
                                "worked, 0 after a failure.", ["target"], registry=registry)

    def start(self, target: str) -> None:
        """A target's series, present at 0 from the start."""
        self._events.labels(target)
        self._errors.labels(target)
        self._lag.labels(target)
        self._connected.labels(target).set(1)

    def forwarded(self, target: str, count: int) -> None:
        self._events.labels(target).inc(count)
        self._connected.labels(target).set(1)

    def error(self, target: str) -> None:
        self._errors.labels(target).inc()
        self._connected.labels(target).set(0)

    def lag(self, target: str, behind: int) -> None:
        self._lag.labels(target).set(max(0, behind))
