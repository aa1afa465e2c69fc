"""The webhook delivery queue (docs/webhooks.md, "Delivery"): what each SecurityEventWebhook is to be sent, and
where its dispatch stands in the event store's change sequence.

One row per (webhook, event id, count) in `webhook_deliveries` (migration 8), with the event's JSON as it was
emitted, its state (`pending`, `delivered`, `dead`), the attempts made, when the next may be made and the last
error (redacted before it is written). `webhook_cursors` holds, per webhook, the change up to which every
emission has been looked at. The dispatcher writes both in one transaction (`enqueue_webhook_deliveries`), so
an emission is queued exactly once however often the collector restarts; the primary key makes a repeat a
no-op besides.

`WebhookQueueMixin` is mixed into SqlStore, like the event transactions, so both backends share it. Its reads
go to the store's reading connection, beside the writes: on the writer's thread they would queue between the
ingest's group commits.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from typing import Any, Callable, NamedTuple

__all__ = ["PENDING", "DELIVERED", "DEAD", "AttemptResult", "QueuedDelivery", "WebhookQueueMixin"]

PENDING = "pending"
DELIVERED = "delivered"
DEAD = "dead"


class QueuedDelivery(NamedTuple):
    """One emission queued for one webhook."""

    webhook: str
    event_id: str
    count: int
    seq: int
    """The emission's change sequence number: the queue's order."""
    body: str
    """The event's JSON as stored when it was emitted."""
    attempts: int
    next_attempt_at: float
    enqueued_at: float

    @property
    def key(self) -> tuple[str, str, int]:
        return (self.webhook, self.event_id, self.count)


class AttemptResult(NamedTuple):
    """What one attempt gave, to be written back: the row's new state, attempts, next attempt and error."""

    key: tuple[str, str, int]
    state: str
    attempts: int
    next_attempt_at: float
    error: str = ""


_QUEUED_COLUMNS = "webhook, event_id, count, seq, body, attempts, next_attempt_at, enqueued_at"


class WebhookQueueMixin:
    """The webhook queue of the Store protocol, over SqlStore's connection thread."""

    # Provided by SqlStore.
    _call: Callable[..., Any]
    _call_reading: Callable[..., Any]
    _exec: Callable[..., Any]
    _transaction: Callable[..., Any]

    async def start_webhook_cursors(self, webhooks: Iterable[str]) -> dict[str, int]:
        """Every webhook's dispatch cursor; a webhook the store has never seen starts at the store's latest
        change (it is sent what comes from now on, not the history)."""
        return await self._call(self._start_webhook_cursors, sorted(set(webhooks)), time.time())

    async def enqueue_webhook_deliveries(self, rows: list[tuple[str, str, int, int, str]],
                                         cursors: Mapping[str, int]) -> int:
        """Queue `rows` (webhook, event id, count, seq, body) and move the webhooks' cursors to `cursors`, in
        one transaction: the number of rows queued (a row queued already is left as it is). A cursor never
        moves back."""
        return await self._call(self._enqueue, rows, dict(cursors), time.time())

    async def due_webhook_deliveries(self, webhook: str, now: float, limit: int) -> list[QueuedDelivery]:
        """At most `limit` of the webhook's pending deliveries whose next attempt is due at `now`, in change
        order."""
        rows = await self._call_reading(self._fetch_queue,
                                f"SELECT {_QUEUED_COLUMNS} FROM webhook_deliveries WHERE webhook = ? AND state = ? "
                                "AND next_attempt_at <= ? ORDER BY seq LIMIT ?",
                                (webhook, PENDING, float(now), int(limit)))
        return [QueuedDelivery(*row) for row in rows]

    async def next_webhook_attempt(self, webhook: str) -> float | None:
        """When the webhook's next pending delivery is due; None when none is pending."""
        rows = await self._call_reading(self._fetch_queue, "SELECT MIN(next_attempt_at) FROM webhook_deliveries "
                                "WHERE webhook = ? AND state = ?", (webhook, PENDING))
        return None if rows[0][0] is None else float(rows[0][0])

    async def record_webhook_attempts(self, results: list[AttemptResult]) -> None:
        """Write the attempts' outcomes back, in one transaction; a row no longer pending is left alone (an
        acknowledged delivery is never made pending again)."""
        await self._call(self._record_attempts, results, time.time())

    async def webhook_queue_counts(self) -> dict[str, tuple[int, int]]:
        """(pending, dead) per webhook that has any."""
        rows = await self._call_reading(self._fetch_queue, "SELECT webhook, state, COUNT(*) FROM webhook_deliveries "
                                "WHERE state <> ? GROUP BY webhook, state", (DELIVERED,))
        counts: dict[str, tuple[int, int]] = {}
        for webhook, state, number in rows:
            pending, dead = counts.get(webhook, (0, 0))
            counts[webhook] = (int(number), dead) if state == PENDING else (pending, int(number))
        return counts

    async def webhook_deliveries(self, webhook: str, state: str | None = None) -> list[tuple[QueuedDelivery, str, str]]:
        """(delivery, state, last error) of every row of the webhook, in change order: for tests and tools."""
        where, params = ("webhook = ?", (webhook,)) if state is None else ("webhook = ? AND state = ?",
                                                                           (webhook, state))
        rows = await self._call_reading(self._fetch_queue, f"SELECT {_QUEUED_COLUMNS}, state, last_error FROM "
                                f"webhook_deliveries WHERE {where} ORDER BY seq", params)
        return [(QueuedDelivery(*row[:8]), row[8], row[9]) for row in rows]

    async def prune_webhook_deliveries(self, delivered_before: float, dead_before: float) -> int:
        """Delete the rows delivered before `delivered_before` and those given up on before `dead_before`
        (epoch seconds); the number deleted."""
        return await self._call(self._prune, float(delivered_before), float(dead_before))

    # -- on the store's thread --------------------------------------------------------------------------

    def _fetch_queue(self, conn: Any, statement: str, params: tuple[Any, ...]) -> list[Any]:
        return self._exec(conn, statement, params).fetchall()

    def _start_webhook_cursors(self, conn: Any, webhooks: list[str], now: float) -> dict[str, int]:
        with self._transaction(conn):
            latest = int(self._exec(conn, "SELECT last_seq FROM event_sequence WHERE one = 1", ()).fetchone()[0])
            for webhook in webhooks:
                self._exec(conn, "INSERT INTO webhook_cursors (webhook, seq, saved_at) VALUES (?, ?, ?) "
                                 "ON CONFLICT (webhook) DO NOTHING", (webhook, latest, now))
            rows = self._exec(conn, "SELECT webhook, seq FROM webhook_cursors", ()).fetchall()
        wanted = set(webhooks)
        return {row[0]: int(row[1]) for row in rows if row[0] in wanted}

    def _enqueue(self, conn: Any, rows: list[tuple[str, str, int, int, str]], cursors: dict[str, int],
                 now: float) -> int:
        queued = 0
        with self._transaction(conn):
            for webhook, event_id, count, seq, body in rows:
                queued += self._exec(conn, "INSERT INTO webhook_deliveries (webhook, event_id, count, seq, body, "
                                           "state, attempts, next_attempt_at, enqueued_at) "
                                           "VALUES (?, ?, ?, ?, ?, ?, 0, ?, ?) "
                                           "ON CONFLICT (webhook, event_id, count) DO NOTHING",
                                     (webhook, event_id, int(count), int(seq), body, PENDING, now, now)).rowcount
            for webhook, seq in cursors.items():
                self._exec(conn, "INSERT INTO webhook_cursors (webhook, seq, saved_at) VALUES (?, ?, ?) "
                                 "ON CONFLICT (webhook) DO UPDATE SET seq = excluded.seq, saved_at = excluded.saved_at "
                                 "WHERE webhook_cursors.seq < excluded.seq", (webhook, int(seq), now))
        return queued

    def _record_attempts(self, conn: Any, results: list[AttemptResult], now: float) -> None:
        with self._transaction(conn):
            for (webhook, event_id, count), state, attempts, next_at, error in results:
                self._exec(conn, "UPDATE webhook_deliveries SET state = ?, attempts = ?, next_attempt_at = ?, "
                                 "last_error = ?, done_at = ? WHERE webhook = ? AND event_id = ? AND count = ? "
                                 "AND state = ?",
                           (state, attempts, next_at, error, None if state == PENDING else now, webhook, event_id,
                            count, PENDING))

    def _prune(self, conn: Any, delivered_before: float, dead_before: float) -> int:
        with self._transaction(conn):
            gone = self._exec(conn, "DELETE FROM webhook_deliveries WHERE state = ? AND done_at < ?",
                              (DELIVERED, delivered_before)).rowcount
            gone += self._exec(conn, "DELETE FROM webhook_deliveries WHERE state = ? AND done_at < ?",
                               (DEAD, dead_before)).rowcount
        return int(gone)
