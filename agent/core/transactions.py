"""Transactions: a DNS query and its response counted once (docs/detection.md).

A transaction is keyed by the client's address and port, the transport, the DNS id and the question — and
deliberately not by the server's address: on a node the same exchange is often sighted twice, on the client
pod's interface (server = the DNS service IP) and on the DNS server pod's (server = its pod IP, after
kube-proxy's DNAT). The client is the source of a query and the destination of a response.

Only matched messages arrive here, so the tables hold few entries; they are bounded all the same, because a
hostile client can make every query match (random subdomains of a wildcard entry).
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass

from agent.core.sighting import Match, Sighting

# (client address, client port, transport, DNS id, qname, qtype)
TxKey = tuple[bytes, int, str, int, str, int]


@dataclass(frozen=True, slots=True)
class Transaction:
    client: bytes
    client_port: int
    server: bytes
    """As first sighted: the service IP when the client's interface saw the query first."""
    server_port: int
    first_ts: float
    last_ts: float
    query: Sighting | None
    """None when only the response was captured."""
    response: Sighting | None
    """None when the query timed out, was evicted, or the capture ended first."""
    matches: tuple[Match, ...]
    """Every match of the query and the response, de-duplicated, in the order first seen."""

    @property
    def message(self) -> Sighting:
        """The most informative sighting: the response when there is one."""
        return self.response or self.query  # type: ignore[return-value]  # one of them is always set


class _Pending:
    """A query still waiting for its response (mutable; lives only inside the tracker)."""

    __slots__ = ("query", "last_ts", "matches")

    def __init__(self, query: Sighting) -> None:
        self.query = query
        self.last_ts = query.ts
        self.matches = list(query.matches)


def transaction_key(s: Sighting) -> TxKey:
    if s.is_response:
        return (s.dst, s.dport, s.transport, s.dns_id, s.qname, s.qtype)
    return (s.src, s.sport, s.transport, s.dns_id, s.qname, s.qtype)


class TransactionTracker:
    """Pairs queries with responses; each observe/expire/drain returns the transactions completed by it."""

    def __init__(self, timeout: float = 5.0, max_pending: int = 50_000) -> None:
        self.timeout = timeout
        self.max_pending = max_pending
        self._pending: OrderedDict[TxKey, _Pending] = OrderedDict()
        # Keys of transactions already reported, with when: a copy sighted on the other interface (or a late
        # response to an expired query) within the timeout is the same transaction, not a new one.
        self._recent: OrderedDict[TxKey, float] = OrderedDict()
        self.evicted = 0
        """Pending queries reported early because the table was full."""
        self.duplicates = 0
        """Sightings folded into a transaction already pending or reported (the second interface's copy)."""

    def observe(self, s: Sighting) -> list[Transaction]:
        key = transaction_key(s)
        pending = self._pending.get(key)
        if pending is not None:
            if not s.is_response:
                self.duplicates += 1
                pending.last_ts = max(pending.last_ts, s.ts)
                _merge(pending.matches, s.matches)
                return []
            del self._pending[key]
            self._remember(key, s.ts)
            return [_completed(pending, s)]
        if key in self._recent:
            self.duplicates += 1
            return []
        if s.is_response:
            self._remember(key, s.ts)
            return [_response_only(s)]
        out = []
        if len(self._pending) >= self.max_pending:
            old_key, old = self._pending.popitem(last=False)
            self.evicted += 1
            self._remember(old_key, s.ts)
            out.append(_unanswered(old))
        self._pending[key] = _Pending(s)
        return out

    def expire(self, now: float) -> list[Transaction]:
        """Queries that waited `timeout` without a response: still transactions, the query was made."""
        out = []
        while self._pending:
            key, pending = next(iter(self._pending.items()))
            if pending.query.ts + self.timeout > now:
                break  # insertion order is capture order, so the rest are younger
            del self._pending[key]
            self._remember(key, now)  # from now on, a late response is remembered as already reported
            out.append(_unanswered(pending))
        while self._recent:
            key, seen = next(iter(self._recent.items()))
            if seen + self.timeout > now:
                break
            del self._recent[key]
        return out

    def drain(self) -> list[Transaction]:
        """End of capture: every pending query is a transaction without a response."""
        out = [_unanswered(p) for p in self._pending.values()]
        self._pending.clear()
        self._recent.clear()
        return out

    def __len__(self) -> int:
        return len(self._pending)

    def _remember(self, key: TxKey, ts: float) -> None:
        """Remember `key` as reported at capture time `ts`, for `timeout` seconds."""
        self._recent[key] = ts
        self._recent.move_to_end(key)
        if len(self._recent) > self.max_pending:
            # Forgetting a key only risks counting a late duplicate twice; nothing is lost.
            self._recent.popitem(last=False)


def _merge(into: list[Match], more: tuple[Match, ...]) -> None:
    for m in more:
        if m not in into:
            into.append(m)


def _completed(pending: _Pending, response: Sighting) -> Transaction:
    q = pending.query
    _merge(pending.matches, response.matches)
    return Transaction(q.src, q.sport, q.dst, q.dport, q.ts, max(pending.last_ts, response.ts), q, response,
                       tuple(pending.matches))


def _unanswered(pending: _Pending) -> Transaction:
    q = pending.query
    return Transaction(q.src, q.sport, q.dst, q.dport, q.ts, pending.last_ts, q, None, tuple(pending.matches))


def _response_only(r: Sighting) -> Transaction:
    matches: list[Match] = []
    _merge(matches, r.matches)
    return Transaction(r.dst, r.dport, r.src, r.sport, r.ts, r.ts, None, r, tuple(matches))
