"""A doorbell between the event ingest and the event watches of one collector process.

The ingest rings it after every durable write; the reader of new rows that every `Events.Watch` stream of
the process shares waits on it between two reads of the store's change sequence. It only shortens the wait:
with several replicas on one PostgreSQL database the other replicas' writes ring no bell here, so the reader
also re-reads the store every so often whatever the bell says (collector/shell/eventtail.py).

    bell = EventBell()
    ticket = bell.ticket()               # before reading the store
    ... read the store ...
    await bell.wait(1.0, after=ticket)   # True at once if it rang since the ticket

Taking the ticket before the read closes the race where a write lands between the read and the wait.
"""

from __future__ import annotations

import asyncio
import threading

__all__ = ["EventBell"]


class EventBell:
    """Wakes every waiter when events were stored. `ring` is cheap and never blocks; call it from the event
    loop (the ingest servicer) or from any other thread."""

    def __init__(self) -> None:
        self._rung = 0
        self._closed = False
        self._waiters: set[asyncio.Future[None]] = set()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._lock = threading.Lock()

    @property
    def closed(self) -> bool:
        """True once `close` was called: the collector is stopping and watches should end."""
        return self._closed

    def ticket(self) -> int:
        """How often the bell has rung so far; pass it to `wait(after=...)` to catch rings from now on."""
        return self._rung

    def ring(self) -> None:
        """Events were stored: wake every waiter."""
        with self._lock:
            self._rung += 1
            loop = self._loop
        if loop is None or loop.is_closed():
            return
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is loop:
            self._wake()
        else:
            try:
                loop.call_soon_threadsafe(self._wake)
            except RuntimeError:
                pass  # the loop closed meanwhile: nobody waits any more

    def close(self) -> None:
        """The collector is stopping: wake every waiter now and let `wait` return at once from now on."""
        self._closed = True
        self.ring()

    async def wait(self, timeout: float, *, after: int | None = None) -> bool:
        """Wait until the bell rings or `timeout` seconds pass; True if it rang (or had rung since `after`,
        a `ticket()`), or the bell is closed."""
        if self._closed or (after is not None and self._rung != after):
            return True
        loop = asyncio.get_running_loop()
        with self._lock:
            self._loop = loop
        waiter = loop.create_future()
        self._waiters.add(waiter)
        try:
            # Checked again now that the waiter is registered: a ring from another thread may have come
            # between the first check and the registration.
            if self._closed or (after is not None and self._rung != after):
                return True
            try:
                await asyncio.wait_for(asyncio.shield(waiter), timeout)
            except asyncio.TimeoutError:
                return False
            return True
        finally:
            self._waiters.discard(waiter)

    def _wake(self) -> None:
        for waiter in list(self._waiters):
            if not waiter.done():
                waiter.set_result(None)
