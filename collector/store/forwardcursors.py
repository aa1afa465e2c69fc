"""Where each forwarding target stands in the event store's change sequence (docs/forwarding.md).

One row per target in `forward_cursors` (migration 6): the change sequence number up to which every change
has reached that target. The forwarder saves it only after the target has what it counts, so a restarted
collector resumes there and loses nothing; what it had sent since the last save is sent again.

`ForwardCursorMixin` is mixed into SqlStore, like the event transactions, so both backends share it.
"""

from __future__ import annotations

import time
from typing import Any, Callable


class ForwardCursorMixin:
    """The forwarding cursors of the Store protocol, over SqlStore's connection thread."""

    # Provided by SqlStore.
    _call: Callable[..., Any]
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

    # -- on the store's thread --------------------------------------------------------------------------

    def _read_forward_cursor(self, conn: Any, target: str) -> int | None:
        row = self._exec(conn, "SELECT seq FROM forward_cursors WHERE target = ?", (target,)).fetchone()
        return None if row is None else int(row[0])

    def _save_forward_cursor(self, conn: Any, target: str, seq: int, now: float) -> None:
        with self._transaction(conn):
            self._exec(conn, "INSERT INTO forward_cursors (target, seq, saved_at) VALUES (?, ?, ?) "
                             "ON CONFLICT (target) DO UPDATE SET seq = excluded.seq, saved_at = excluded.saved_at "
                             "WHERE forward_cursors.seq < excluded.seq", (target, seq, now))
