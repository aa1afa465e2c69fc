"""Aggregation: transactions folded into events per client, names and feeds (docs/detection.md).

A key is (client, matched names, feeds), the client being the pod (`--aggregate-by pod`), the pod's owning
workload (`workload`, Calico's `dnsLogsFileAggregationKind` 1), or the address for a client that is no pod.
The first transaction of a key opens a window and is emitted at once; repeats within the window only count;
when the window ends (in capture time) a key that grew is emitted again, cumulative, under the same id, and
the window closes. A later transaction opens a new window, whose start makes a new id.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass

from agent.core.attribution import PodInfo, address_text
from agent.core.sighting import Match
from agent.core.transactions import Transaction

AGGREGATE_BY = ("pod", "workload")

# (client identity, sorted matched names, sorted feeds)
AggregateKey = tuple[str, tuple[str, ...], tuple[str, ...]]


@dataclass(frozen=True, slots=True)
class Event:
    """One emission of an aggregated event, before it is dressed as the event dict (agent.core.events)."""

    identity: str
    """Who the key folds: `ns/pod`, `ns/Kind/workload`, or the client address."""
    names: tuple[str, ...]
    """Matched names (and matched answer addresses), sorted: part of the key."""
    feeds: tuple[str, ...]
    aggregate_by: str
    window_start: float
    """Capture time of the window's first transaction; part of the event id."""
    count: int
    """Transactions folded so far in this window (cumulative across emissions)."""
    first_seen: float
    last_seen: float
    client: bytes | None
    """The client address, or None when the key folds several (a workload's replicas)."""
    pod: PodInfo | None
    """The client pod (the latest seen, for a workload); None for a client that is no pod."""
    labels: tuple[tuple[str, str], ...]
    """Labels every folded pod shares (a workload's replicas differ in pod-template-hash across rollouts)."""
    matches: tuple[Match, ...]
    """Every match folded in this window, de-duplicated, in the order first seen."""
    transaction: Transaction
    """The latest transaction folded that had a response (the latest of all when none had): the event's
    qname, rcode, server and answers come from it."""


class _Window:
    """The open window of one key (mutable; lives only inside the aggregator)."""

    __slots__ = ("start", "count", "emitted", "first_seen", "last_seen", "client", "pod", "labels", "matches", "tx")

    def __init__(self, tx: Transaction, pod: PodInfo | None, client: bytes | None) -> None:
        self.start = self.first_seen = tx.first_ts
        self.last_seen = tx.last_ts
        self.count = 0
        self.emitted = 0
        self.client = client
        self.pod = pod
        self.labels = dict(pod.labels) if pod else {}
        self.matches: list[Match] = []
        self.tx = tx
        self.fold(tx, pod)

    def fold(self, tx: Transaction, pod: PodInfo | None) -> None:
        self.count += 1
        self.first_seen = min(self.first_seen, tx.first_ts)
        self.last_seen = max(self.last_seen, tx.last_ts)
        if tx.response is not None or self.tx.response is None:
            self.tx = tx  # an unanswered retry must not hide what the server answered before
        if pod is not None:
            self.pod = pod
            self.labels = {k: v for k, v in pod.labels if self.labels.get(k) == v}
        for m in tx.matches:
            if m not in self.matches:
                self.matches.append(m)


class Aggregator:
    def __init__(self, window: float = 60.0, aggregate_by: str = "pod", max_keys: int = 100_000) -> None:
        if aggregate_by not in AGGREGATE_BY:
            raise ValueError(f"aggregate_by must be one of {', '.join(AGGREGATE_BY)}, not {aggregate_by!r}")
        self.window = window
        self.aggregate_by = aggregate_by
        self.max_keys = max_keys
        self._open: OrderedDict[AggregateKey, _Window] = OrderedDict()  # in order of window start
        self.evicted = 0
        """Windows closed early because `max_keys` were open (a flood of distinct names)."""

    def add(self, tx: Transaction, pod: PodInfo | None) -> list[Event]:
        """Fold one transaction; returns the events due now (a first occurrence, a window it closed)."""
        names = tuple(sorted({m.name for m in tx.matches}))
        feeds = tuple(sorted({m.feed for m in tx.matches}))
        identity, client = self._client_of(tx, pod)
        key = (identity, names, feeds)
        out: list[Event] = []
        window = self._open.get(key)
        if window is not None and tx.first_ts >= window.start + self.window:
            # The caller had not expired it yet: close it before opening the next one.
            del self._open[key]
            out += self._closing(key, window)
            window = None
        if window is not None:
            window.fold(tx, pod)
            return out
        if len(self._open) >= self.max_keys:
            old_key, old = self._open.popitem(last=False)
            self.evicted += 1
            out += self._closing(old_key, old)
        window = self._open[key] = _Window(tx, pod, client)
        out.append(self._emit(key, window))
        return out

    def expire(self, now: float) -> list[Event]:
        """Close the windows that ended by capture time `now`, re-emitting the keys that grew."""
        out: list[Event] = []
        while self._open:
            key, window = next(iter(self._open.items()))
            if window.start + self.window > now:
                break
            del self._open[key]
            out += self._closing(key, window)
        return out

    def flush(self) -> list[Event]:
        """End of capture (or of the agent): emit every key that grew and close every window."""
        out: list[Event] = []
        for key, window in self._open.items():
            out += self._closing(key, window)
        self._open.clear()
        return out

    def __len__(self) -> int:
        return len(self._open)

    def _client_of(self, tx: Transaction, pod: PodInfo | None) -> tuple[str, bytes | None]:
        if pod is None:
            return address_text(tx.client), tx.client
        if self.aggregate_by == "workload":
            return f"{pod.namespace}/{pod.workload.kind}/{pod.workload.name}", None
        return f"{pod.namespace}/{pod.name}", tx.client

    def _closing(self, key: AggregateKey, window: _Window) -> list[Event]:
        return [self._emit(key, window)] if window.count > window.emitted else []

    def _emit(self, key: AggregateKey, w: _Window) -> Event:
        w.emitted = w.count
        identity, names, feeds = key
        return Event(identity, names, feeds, self.aggregate_by, w.start, w.count, w.first_seen, w.last_seen,
                     w.client, w.pod, tuple(sorted(w.labels.items())), tuple(w.matches), w.tx)
