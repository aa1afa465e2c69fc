"""Forwarding every event to a SIEM: one forwarder per `--forward` target follows the store's change sequence
(docs/forwarding.md).

    forwarding = Forwarding(settings.forward, store, bell, ForwardMetrics(metrics.registry))
    forwarding.start()                  # one task per target
    ...
    await forwarding.close()            # before the store closes: each cursor saved where its target is

Each forwarder reads the changes after its cursor in pages (`forward_changes`, on the store's reading
connection), in sequence order, hands the forwarded ones to its sink (collector/shell/forwardfile.py,
collector/shell/forwardsyslog.py) and moves on; between reads it waits on the ingest's bell, as event watches
do, with a read at least every `poll_seconds` for other replicas' writes, and reads at most every
`read_interval_seconds` while the bell keeps ringing. A target far behind reads page after page at once.

Rows this process's ingest commits are handed over by the store (`add_change_listener`) and forwarded as
they are while the forwarder keeps up, with no reading back: reading them cost the ingest a fifth of its
rate. Other replicas' rows, and a target that is behind, are read from the store.

The store is the buffer: while a target is away the forwarder stays where it is and tries again with
backoff; nothing is lost unless retention deletes events it has not reached. The cursor it saves in the
store (`save_forward_cursor`, at most every `save_interval_seconds`) counts only what the target has: after
the file's write and fsync, after the syslog bytes went out and `resend_seconds` passed without a failure.
"""

from __future__ import annotations

import asyncio
import collections
import datetime as dt
import logging
import os
import socket
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from collector.core.forwardline import Forwarded, forwarded_event, rfc3339_ms
from collector.core.forwardpolicy import is_forwarded
from collector.core.forwardtarget import FILE, SYSLOG_TLS, ForwardTarget
from collector.core.rfc5424 import octet_counted, syslog_message
from collector.shell.failurepause import pause_after_failure
from collector.shell.eventbell import EventBell
from collector.shell.forwardfile import FileSink
from collector.shell.forwardmetrics import ForwardMetrics
from collector.shell.forwardsettings import ForwardSettings
from collector.shell.forwardsyslog import SyslogSink
from collector.store import StoreError

__all__ = ["Forwarder", "ForwarderSettings", "Forwarding", "Sink"]

log = logging.getLogger("dnswatch.collector.forward")

_SINK_ERRORS = (OSError, asyncio.TimeoutError, ssl.SSLError)


class Sink(Protocol):
    """Where a forwarder's pages go."""

    resend_seconds: float
    """After a failure, what was sent within this many seconds before it is sent again."""

    async def send(self, payloads: list[bytes]) -> None:
        """Hand the payloads to the target, in order; OSError (or TimeoutError) if it cannot take them."""

    async def settle(self) -> None:
        """Make what was sent durable before the cursor counts it (a file's fsync)."""

    async def close(self) -> None: ...


@dataclass(frozen=True)
class ForwarderSettings:
    """How a forwarder reads and retries."""

    page_events: int = 10_000
    """Changes read per query at most: a target far behind catches up this many at a time."""
    max_held_events: int = 20_000
    """New rows of this process's ingest held for the forwarder while it keeps up (about 1 kB each); past
    that it reads them from the store when it gets to them."""
    poll_seconds: float = 1.0
    """The longest wait between two reads when the bell stays silent (other replicas ring no bell here)."""
    read_interval_seconds: float = 0.1
    """The shortest time between two reads while the bell keeps ringing: larger pages, fewer writes."""
    save_interval_seconds: float = 1.0
    """The cursor is saved at most this often (each save is a durable write): after a crash, what was
    forwarded since the last save is forwarded again."""
    backoff_seconds: float = 0.5
    """The first wait after a failure; doubled after each further one, up to max_backoff_seconds."""
    max_backoff_seconds: float = 30.0


class Forwarder:
    """Follows the store's change sequence for one target."""

    def __init__(self, name: str, sink: Sink, render: Callable[[list[Forwarded]], list[bytes]], store: Any,
                 bell: EventBell, metrics: ForwardMetrics, settings: ForwarderSettings = ForwarderSettings()) -> None:
        """`render` makes the sink's payloads of a page of forwarded events (a line or a syslog frame each)."""
        self.name = name
        self.sink = sink
        self._render = render
        self._store = store
        self._bell = bell
        self._metrics = metrics
        self._settings = settings
        self.position = 0
        """Every change up to this has been handed to the sink (or declined by `is_forwarded`)."""
        self.saved: int | None = None
        """The cursor as saved in the store; None before it is read."""
        self._sent: collections.deque[tuple[float, int]] = collections.deque()  # (when, position before a page)
        self._saved_at = 0.0
        self._failures = 0
        self._stop = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        # This process's new rows, right after _frontier: (seq, body, excepted_by, dismissed).
        self._held: list[tuple[int, bytes | str, str, bool]] = []
        self._frontier = 0  # the last change read or taken, forwarded or not yet

    def start(self) -> None:
        """Run the forwarder in a task of its own, until `close`."""
        self._task = asyncio.get_running_loop().create_task(self.run(), name=f"forward {self.name}")
        if hasattr(self._store, "add_change_listener"):
            self._store.add_change_listener(self._published)

    async def run(self) -> None:
        """Forward until `close` (or the bell closes)."""
        self._metrics.start(self.name)
        while self.saved is None and not self._stopping:
            try:
                self.saved = await self._store.forward_cursor(self.name)
            except StoreError as error:
                await self._failed(f"reading its cursor failed: {error}")
                continue
            if self.saved is None:
                self.saved = 0  # a new target: every event the store holds
            self.position = self.saved
            log.info("forwarding to %s from change %d", self.name, self.position)
        settings = self._settings
        while not self._stopping:
            ticket = self._bell.ticket()
            started = time.monotonic()
            if self._held and self._held[0][0] == self.position + 1:
                # Rows this process's ingest just wrote, handed over: no reading them back.
                latest, changes = self._held[-1][0], self._held[:settings.page_events]
                del self._held[:settings.page_events]
                full = bool(self._held)
            else:
                self._held = []
                self._frontier = self.position
                try:
                    latest, changes = await self._store.forward_changes(self.position, settings.page_events)
                except StoreError as error:
                    await self._failed(f"reading the store failed: {error}")
                    continue
                full = len(changes) >= settings.page_events
            self._frontier = max(self._frontier, changes[-1][0] if changes else 0, 0 if full else latest)
            if not await self._forward(changes):
                continue
            if changes:
                self.position = max(self.position, changes[-1][0])
            if not full:
                self.position = max(self.position, latest)  # nothing else up to latest is left unread
            full = full or bool(self._held)
            self._metrics.lag(self.name, latest - self.position)
            if time.monotonic() - self._saved_at >= settings.save_interval_seconds:
                await self.save()
            if full:
                continue
            if await self._bell.wait(settings.poll_seconds, after=ticket):
                pause = settings.read_interval_seconds - (time.monotonic() - started)
                if pause > 0 and not self._stopping:
                    await asyncio.sleep(pause)

    async def save(self) -> None:
        """Record in the store how far the target is sure to have every change: the sink settled first."""
        self._saved_at = time.monotonic()
        safe = self._safe_position()
        if self.saved is None or safe <= self.saved:
            return
        try:
            await self.sink.settle()
            await self._store.save_forward_cursor(self.name, safe)
        except (*_SINK_ERRORS, StoreError) as error:
            self._metrics.error(self.name)
            log.warning("forwarding to %s: saving the cursor failed: %s", self.name, error)
            return
        self.saved = safe

    async def close(self, timeout: float = 10.0) -> None:
        """Stop after the step under way (a page being sent is counted, not sent again after a restart; one
        stuck for `timeout` seconds is abandoned), save the cursor, close the sink."""
        self._stop.set()
        if hasattr(self._store, "remove_change_listener"):
            self._store.remove_change_listener(self._published)
        if not self._bell.closed:
            self._bell.ring()  # wakes the forwarder if it waits for new events (and other waiters, harmlessly)
        if self._task is not None:
            try:
                await asyncio.wait_for(asyncio.shield(self._task), timeout)
            except asyncio.TimeoutError:
                self._task.cancel()
            except Exception as error:  # noqa: BLE001 - a bug in the loop: said, and the cursor saved still
                log.error("forwarding to %s failed: %r", self.name, error)
            await asyncio.gather(self._task, return_exceptions=True)
        try:
            await self.save()
        finally:
            await self.sink.close()

    @property
    def _stopping(self) -> bool:
        return self._stop.is_set() or self._bell.closed

    # -- the steps -------------------------------------------------------------------------------------------

    async def _forward(self, changes: list[tuple[int, bytes | str, str, bool]]) -> bool:
        """Hand the changes' forwarded events to the sink; False (after the backoff) when it failed."""
        if not changes:
            return True
        stamp = rfc3339_ms(dt.datetime.now(dt.timezone.utc))
        page: list[Forwarded] = []
        for seq, body, excepted_by, dismissed in changes:
            if not is_forwarded(excepted_by, dismissed):
                continue  # hidden when emitted: declined, and never parsed
            try:
                forwarded = forwarded_event(body, seq, stamp)
            except ValueError as error:  # the ingest stores JSON objects only: a damaged row, skipped
                self._metrics.error(self.name)
                log.error("forwarding to %s: change %d is no JSON event, skipped: %s", self.name, seq, error)
                continue
            page.append(forwarded)
        if not page:
            return True
        try:
            await self.sink.send(self._render(page))
        except _SINK_ERRORS as error:
            self._rewind()
            await self._failed(f"{type(error).__name__}: {error}")
            return False
        if self._failures:
            log.info("forwarding to %s: resumed after %d failed attempts", self.name, self._failures)
            self._failures = 0
        self._sent.append((time.monotonic(), self.position))
        self._metrics.forwarded(self.name, len(page))
        return True

    def _published(self, first_seq: int, rows: list[Any]) -> None:
        """This process's store committed `rows`, numbered first_seq on: held for the next page when they
        follow what is held (or the position) and the forwarder keeps up; else they are read from the store
        in their turn (another writer's rows come between, or the target is behind)."""
        skip = (self._held[-1][0] if self._held else self._frontier) + 1 - first_seq
        if skip < 0 or len(self._held) + len(rows) > self._settings.max_held_events:
            self._held = []
            return
        self._held += [(first_seq + index, rows[index].body, rows[index].excepted_by, rows[index].dismissed)
                       for index in range(skip, len(rows))]

    def _rewind(self) -> None:
        """After a failure: go back to the first page sent within the sink's resend_seconds, which may not
        have reached the target."""
        self._held = []
        horizon = time.monotonic() - self.sink.resend_seconds
        unsure = [before for when, before in self._sent if when > horizon]
        if unsure:
            self.position = min(self.position, unsure[0])
        self._sent.clear()
        self._frontier = self.position

    def _safe_position(self) -> int:
        """The position minus what was sent too recently to be sure of (syslog); trims what is sure."""
        horizon = time.monotonic() - self.sink.resend_seconds
        while self._sent and self._sent[0][0] <= horizon:
            self._sent.popleft()
        return self._sent[0][1] if self._sent else self.position

    async def _failed(self, why: str) -> None:
        self._failures += 1
        self._metrics.error(self.name)
        if self._failures == 1:
            log.warning("forwarding to %s: %s; trying again with backoff, the events wait in the store",
                        self.name, why)
        else:
            log.debug("forwarding to %s: attempt %d failed: %s", self.name, self._failures, why)
        await pause_after_failure(self._stop, self._failures, self._settings.backoff_seconds,
                                  self._settings.max_backoff_seconds)


class Forwarding:
    """Every target's forwarder, assembled from the settings: started and closed together."""

    def __init__(self, settings: ForwardSettings, store: Any, bell: EventBell, metrics: ForwardMetrics,
                 forwarder_settings: ForwarderSettings = ForwarderSettings()) -> None:
        hostname = socket.gethostname()
        procid = str(os.getpid())
        context = None
        if any(target.kind == SYSLOG_TLS for target in settings.targets):
            context = settings.ssl_context()
        self.forwarders = [
            Forwarder(target.name, *_sink(target, settings, context, hostname, procid), store, bell, metrics,
                      forwarder_settings)
            for target in settings.targets]

    def start(self) -> None:
        for forwarder in self.forwarders:
            forwarder.start()

    async def close(self) -> None:
        """Stop every forwarder and save its cursor."""
        await asyncio.gather(*(forwarder.close() for forwarder in self.forwarders))


def _sink(target: ForwardTarget, settings: ForwardSettings, context: ssl.SSLContext | None, hostname: str,
          procid: str) -> tuple[Sink, Callable[[list[Forwarded]], list[bytes]]]:
    if target.kind == FILE:
        return (FileSink(Path(target.path), max_bytes=settings.max_bytes, keep=settings.keep),
                lambda page: [forwarded.line for forwarded in page])

    def frames(page: list[Forwarded]) -> list[bytes]:
        return [octet_counted(syslog_message(forwarded.body, forwarded.line, hostname=hostname, procid=procid))
                for forwarded in page]

    return SyslogSink(target, ssl_context=context), frames
