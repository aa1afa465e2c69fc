"""Webhook delivery's Prometheus series, in the collector's registry (docs/webhooks.md, "Delivery").

    metrics = WebhookMetrics(collector_metrics.registry)
    metrics.attempt("soc-slack", "delivered", seconds=0.12, waited=0.5)
    metrics.queue("soc-slack", pending=12, dead=0)
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

__all__ = ["OUTCOMES", "WebhookMetrics"]

PREFIX = "dnswatch_collector_webhook"
OUTCOMES = ("delivered", "retried", "dead")
"""An attempt's outcome: acknowledged; failed and to be tried again; failed and given up on (a dead letter)."""


class WebhookMetrics:
    """Deliveries by webhook and outcome, the queue's pending and dead rows, and the latencies. Thread-safe."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self._deliveries = Counter(f"{PREFIX}_deliveries", "Delivery attempts to a SecurityEventWebhook, by "
                                   "outcome: delivered (acknowledged with 2xx), retried (failed, tried again "
                                   "later), dead (given up on: a dead letter).", ["webhook", "outcome"],
                                   registry=registry)
        self._pending = Gauge(f"{PREFIX}_pending", "Deliveries queued for a webhook and not yet acknowledged.",
                              ["webhook"], registry=registry)
        self._dead = Gauge(f"{PREFIX}_dead_letters", "Deliveries given up on, kept in the queue as dead letters "
                           "until they are pruned.", ["webhook"], registry=registry)
        self._attempt_seconds = Histogram(f"{PREFIX}_attempt_seconds", "How long one delivery attempt took, "
                                          "until the receiver's answer or the failure.", ["webhook"],
                                          registry=registry)
        self._latency = Histogram(f"{PREFIX}_delivery_latency_seconds", "From an emission's queueing to its "
                                  "acknowledgement by the webhook's receiver.", ["webhook"], registry=registry,
                                  buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600))

    def start(self, webhook: str) -> None:
        """A webhook's series, present at 0 from the start."""
        for outcome in OUTCOMES:
            self._deliveries.labels(webhook, outcome)
        self._pending.labels(webhook)
        self._dead.labels(webhook)

    def attempt(self, webhook: str, outcome: str, *, seconds: float, waited: float | None = None) -> None:
        """One attempt: its outcome and duration, and for a delivery how long it waited since it was queued."""
        self._deliveries.labels(webhook, outcome).inc()
        self._attempt_seconds.labels(webhook).observe(seconds)
        if waited is not None:
            self._latency.labels(webhook).observe(max(0.0, waited))

    def queue(self, webhook: str, *, pending: int, dead: int) -> None:
        self._pending.labels(webhook).set(pending)
        self._dead.labels(webhook).set(dead)

    def forget(self, webhook: str) -> None:
        """A webhook that is gone: its series go too."""
        for outcome in OUTCOMES:
            _remove(self._deliveries, webhook, outcome)
        for series in (self._pending, self._dead, self._attempt_seconds, self._latency):
            _remove(series, webhook)


def _remove(series, *labels: str) -> None:
    try:
        series.remove(*labels)
    except KeyError:
        pass
