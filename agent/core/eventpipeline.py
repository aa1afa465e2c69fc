"""From matched DNS messages to security event dicts: the one facade the replay and live shells drive.

sighting → TransactionTracker → (attribution, DNS-server suppression) → Aggregator → build_event.
Capture time is the only clock: the shell calls `tick(now)` about every second of capture time, and
`finish()` at the end of a capture or on shutdown.

An event that cannot be built (whatever the reason: the sighting came from untrusted bytes) is counted in
`build_errors`, its error kept in `last_build_error`, and dropped; the other events of the same call still
come out. The core does not log: the shells report the count and the last error.
"""

from __future__ import annotations

from typing import Any

from agent.core.aggregate import Aggregator, Event
from agent.core.attribution import LabelSelector, PodDirectory, is_dns_server
from agent.core.events import build_event
from agent.core.sighting import Sighting
from agent.core.transactions import Transaction, TransactionTracker


class EventPipeline:
    def __init__(
        self,
        node: str,
        pods: PodDirectory | None,
        window: float = 60.0,
        aggregate_by: str = "pod",
        dns_server_selector: str = "k8s-app=kube-dns",
        tx_timeout: float = 5.0,
    ) -> None:
        self.node = node
        self.pods = pods
        self._dns_servers = LabelSelector.parse(dns_server_selector)  # raises BadSelector for a bad flag
        self._tracker = TransactionTracker(timeout=tx_timeout)
        self._aggregator = Aggregator(window=window, aggregate_by=aggregate_by)
        self.transactions = 0
        """Every transaction completed, suppressed ones included."""
        self.suppressed_dns_server = 0
        """Transactions whose client is a DNS server pod forwarding for someone else (no event)."""
        self.events_emitted = 0
        self.build_errors = 0
        """Events dropped because building them raised."""
        self.last_build_error: str | None = None
        """`ExceptionType: message` of the latest of those, None while there was none."""

    @property
    def tx_evicted(self) -> int:
        return self._tracker.evicted

    def observe(self, s: Sighting) -> list[dict[str, Any]]:
        return self._dicts(self._fold(self._tracker.observe(s)))

    def tick(self, now: float) -> list[dict[str, Any]]:
        """Expire unanswered queries and ended windows as of capture time `now`."""
        emitted = self._fold(self._tracker.expire(now))
        # A query made just before a window's end is only known to be unanswered `tx_timeout` later: windows
        # close that much after their end, so the query counts in the window it was made in.
        return self._dicts(emitted + self._aggregator.expire(now - self._tracker.timeout))

    def finish(self) -> list[dict[str, Any]]:
        """End of capture: every pending query becomes a transaction, every grown window is emitted."""
        emitted = self._fold(self._tracker.drain())
        return self._dicts(emitted + self._aggregator.flush())

    def counters(self) -> dict[str, int]:
        return {
            "transactions": self.transactions,
            "suppressed_dns_server": self.suppressed_dns_server,
            "events_emitted": self.events_emitted,
            "tx_evicted": self.tx_evicted,
            "tx_duplicates": self._tracker.duplicates,
            "aggregates_evicted": self._aggregator.evicted,
            "build_errors": self.build_errors,
        }

    def _fold(self, transactions: list[Transaction]) -> list[Event]:
        emitted: list[Event] = []
        for tx in transactions:
            self.transactions += 1
            pod = self.pods.lookup(tx.client, tx.first_ts) if self.pods is not None else None
            if pod is not None and is_dns_server(pod, self._dns_servers):
                self.suppressed_dns_server += 1
                continue
            emitted += self._aggregator.add(tx, pod)
        return emitted

    def _dicts(self, emitted: list[Event]) -> list[dict[str, Any]]:
        built = []
        for ev in emitted:
            try:
                built.append(build_event(ev, self.node))
            except Exception as error:  # noqa: BLE001 - one event that cannot be built must not sink the rest
                self.build_errors += 1
                self.last_build_error = f"{type(error).__name__}: {error}"
        self.events_emitted += len(built)
        return built
