"""Where each forwarding target stands in the event store's change sequence (docs/forwarding.md).

One row per target in `forward_cursors` (migration 6): the change sequence number up to which every change
has reached that target. The forwarder saves it only after the target has what it counts, so a restarted
collector resumes there and loses nothing; what it had sent since the last save is sent again.

The forwarder reads the changes themselves with `forward_changes`: the change sequence as `event_changes`
gives it to watches, but only each row's number, body and marks (the forwarder parses the body anyway, and
the columns a watch filters on cost it a tenth of its time at full ingest).

`ForwardCursorMixin` is mixed into SqlStore, like the event transactions, so both backends share it.
"""

from __future__ import annotations

import time
from typing import Any, Callable

from collector.store.eventqueries import check_limit
from collector.store.events import MAX_CHANGES_READ


class ForwardCursorMixin:
    """The forwarding cursors of the Store protocol, over SqlStore's connection thread."""

    # Provided by SqlStore.
    _call: Callable[..., Any]
    _call_reading: Callable[..., Any]
    _dialect: Any
    _exec: Callable[..., Any]
    _transaction: Callable[..., Any]

    async def forward_cursor(self, target: str) -> int | None:
        """The change sequence number `target` has received every change up to, or None for a target never
        saved (a new one)."""
        return await self._call(self._read_forward_cursor, target)

    async def save_forward_cursor(self, target: str, seq: int) -> None:
        """Durably record that `target` has every change numbered up to `seq`. A cursor never moves back:
        a lower `seq` than the saved one changes nothing."""
        await self._call(self._save_forward_cursor, target, int(seq), time.time())

    async def forward_changes(self, seq: int, limit: int) -> tuple[int, list[tuple[int, bytes, str, bool]]]:
        """(latest, rows): the latest change sequence number handed out, read first, then at most `limit`
        (seq, body as UTF-8, excepted_by, dismissed) rows changed after `seq`, in sequence order; as
        `event_changes`, when fewer than `limit` come back no change up to `latest` is left unread. Read beside
        the writes, on the reading connection."""
        size = check_limit(limit, "limit", cap=MAX_CHANGES_READ)
        return await self._call_reading(self._read_forward_changes, int(seq), size)

    # -- on the store's thread --------------------------------------------------------------------------

    def _read_forward_changes(self, conn: Any, seq: int,
                              size: int) -> tuple[int, list[tuple[int, bytes, str, bool]]]:
        # Two statements, each its own snapshot: the number first, so the rows read after it hold every change
        # it counts.
        latest = int(self._exec(conn, "SELECT last_seq FROM event_sequence WHERE one = 1", ()).fetchone()[0])
        rows = self._exec(conn, f"SELECT seq, {self._dialect.utf8_of('body')}, excepted_by, "
                                "dismissed_at IS NOT NULL FROM events WHERE seq > ? ORDER BY seq LIMIT ?",
                          (seq, size)).fetchall()
        return latest, [(row[0], row[1], row[2], bool(row[3])) for row in rows]

    def _read_forward_cursor(self, conn: Any, target: str) -> int | None:
        row = self._exec(conn, "SELECT seq FROM forward_cursors WHERE target = ?", (target,)).fetchone()
        return None if row is None else int(row[0])

    def _save_forward_cursor(self, conn: Any, target: str, seq: int, now: float) -> None:
        with self._transaction(conn):
            self._exec(conn, "INSERT INTO forward_cursors (target, seq, saved_at) VALUES (?, ?, ?) "
                             "ON CONFLICT (target) DO UPDATE SET seq = excluded.seq, saved_at = excluded.saved_at "
                             "WHERE forward_cursors.seq < excluded.seq", (target, seq, now))
