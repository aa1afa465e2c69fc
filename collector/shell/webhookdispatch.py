"""Queueing each emission for the SecurityEventWebhooks that want it (docs/webhooks.md, "Delivery").

The dispatcher follows the store's change sequence as a forwarder does (collector/shell/forwarder.py): rows
this process's ingest commits are handed over by the store (`add_change_listener`) while it keeps up, and
otherwise read with `forward_changes`; between reads it waits on the ingest's bell, and on the keeper's
changes, reading at least every `poll_seconds` for other replicas' writes.

Each webhook has a cursor in the store (`webhook_cursors`). For every emission after a webhook's cursor that is
not hidden (dnswatch.alerting.visibility: excepted or dismissed when emitted), and for every webhook that
`delivers` (Enabled or Debug, valid) and `wants` it (its query), a row is queued; the rows and the moved
cursors are written in one transaction, so each (webhook, event id, count) is queued once, across restarts.
A webhook the store has never seen starts at the store's latest change: it is sent what comes from then on.
A webhook that does not deliver (Disabled, Test, invalid) has its cursor moved on all the same, so enabling
it later does not send what came meanwhile.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import msgspec

from collector.core.webhookprefilter import COLUMN_ATTRIBUTES, prefilter
from collector.shell.failurepause import pause_after_failure
from collector.shell.eventbell import EventBell
from collector.shell.webhookkeeper import WebhookKeeper
from collector.store import StoreError
from dnswatch.alerting.visibility import is_hidden

__all__ = ["DispatchSettings", "WebhookDispatcher"]

log = logging.getLogger("dnswatch.collector.webhooks")

_decode = msgspec.json.Decoder().decode

# (seq, body, excepted_by, dismissed, the EventRow or None): the row is known for this process's rows.
Change = tuple[int, "bytes | str", str, bool, Any]

COLUMN_KEYS = frozenset(COLUMN_ATTRIBUTES)
"""Query keys that this process's new rows answer from their columns (collector/store/eventrows.py), without
parsing the event: parsing each event had been 5-6 µs of the event loop per event, beside an ingest whose own
share of the loop is about 4 µs (collector/core/webhookprefilter.py says the same of matching the queries)."""


def column_view(row: Any) -> dict[str, Any]:
    """The fields of COLUMN_KEYS as the store read them out of the event (text values as they were)."""
    return {"type": row.type, "host": row.host, "source_namespace": row.namespace, "source_name": row.pod,
            "source_name_aggr": row.pod_aggr,
            "record": {"feeds": sorted(row.feeds), "suspicious_domains": sorted(row.domains)}}


@dataclass(frozen=True)
class DispatchSettings:
    """How the dispatcher reads the change sequence."""

    page_events: int = 10_000
    """Changes read per query at most."""
    max_held_events: int = 20_000
    """New rows of this process's ingest held for the dispatcher while it keeps up."""
    poll_seconds: float = 1.0
    """The longest wait between two reads when neither the bell nor the keeper says anything."""
    read_interval_seconds: float = 0.25
    """The shortest time between two reads while the bell keeps ringing: fewer, larger queue writes (each a
    durable commit on the store's writer, between the ingest's)."""
    save_interval_seconds: float = 1.0
    """Cursors that moved with nothing queued are saved at most this often."""
    backoff_seconds: float = 0.5
    max_backoff_seconds: float = 30.0


class WebhookDispatcher:
    """Follows the change sequence for every webhook of the keeper and queues what each wants."""

    def __init__(self, store: Any, bell: EventBell, keeper: WebhookKeeper, on_queued: Callable[[set[str]], None],
                 settings: DispatchSettings = DispatchSettings()) -> None:
        """`on_queued(names)` is told which webhooks got new rows (their senders wake up)."""
        self._store = store
        self._bell = bell
        self._keeper = keeper
        self._on_queued = on_queued
        self._settings = settings
        self.cursors: dict[str, int] = {}
        """Each webhook's cursor as this dispatcher holds it (saved, or about to be)."""
        self._saved: dict[str, int] = {}
        self._saved_at = 0.0
        self._failures = 0
        self._stop = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._held: list[Change] = []
        self._frontier = 0  # the last change read or taken
        self._position = 0  # the lowest cursor of the webhooks followed

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self.run(), name="webhook dispatch")
        if hasattr(self._store, "add_change_listener"):
            self._store.add_change_listener(self._published)

    async def close(self, timeout: float = 10.0) -> None:
        """Stop after the step under way (a queue write is finished, not abandoned, within `timeout`)."""
        self._stop.set()
        if hasattr(self._store, "remove_change_listener"):
            self._store.remove_change_listener(self._published)
        if self._task is not None:
            try:
                await asyncio.wait_for(asyncio.shield(self._task), timeout)
            except asyncio.TimeoutError:
                self._task.cancel()
            except Exception as error:  # noqa: BLE001 - a bug in the loop: said, the queue is in the store
                log.error("webhook dispatch failed: %r", error)
            await asyncio.gather(self._task, return_exceptions=True)

    @property
    def _stopping(self) -> bool:
        return self._stop.is_set() or self._bell.closed

    async def run(self) -> None:
        settings = self._settings
        while not self._stopping:
            ticket, generation = self._bell.ticket(), self._keeper.generation
            webhooks = {webhook.name: webhook for webhook in self._keeper.webhooks}
            if not webhooks:
                self._held = []
                await self._wait(generation, None, settings.poll_seconds)
                continue
            started = time.monotonic()
            try:
                await self._know_cursors(list(webhooks))
                latest, changes, full = await self._next_page(min(self.cursors[name] for name in webhooks))
                await self._queue(webhooks, changes, latest, full)
            except StoreError as error:
                self._held = []
                await self._failed(str(error))
                continue
            if self._failures:
                log.info("webhook dispatch resumed after %d failed attempts", self._failures)
                self._failures = 0
            if full or self._held:
                continue
            if await self._wait(generation, ticket, settings.poll_seconds):
                pause = settings.read_interval_seconds - (time.monotonic() - started)
                if pause > 0 and not self._stopping:
                    await asyncio.sleep(pause)

    # -- the steps -------------------------------------------------------------------------------------------

    async def _know_cursors(self, names: list[str]) -> None:
        new = [name for name in names if name not in self.cursors]
        if not new:
            return
        started = await self._store.start_webhook_cursors(new)
        for name in new:
            self.cursors[name] = self._saved[name] = started[name]
            log.info("SecurityEventWebhook %s: queueing from change %d", name, started[name])
        self._held = []  # the position may have moved back: read from the store

    async def _next_page(self, position: int) -> tuple[int, list[Change], bool]:
        """(latest, changes after `position`, whether more are left to read)."""
        page = self._settings.page_events
        if self._held and self._held[0][0] == position + 1:
            latest, changes = self._held[-1][0], self._held[:page]
            del self._held[:page]
            full = bool(self._held)
        else:
            self._held = []
            self._frontier = position
            latest, read = await self._store.forward_changes(position, page)
            changes = [(seq, body, excepted_by, dismissed, None) for seq, body, excepted_by, dismissed in read]
            full = len(read) >= page
        self._position = position
        self._frontier = max(self._frontier, changes[-1][0] if changes else 0, 0 if full else latest)
        return latest, changes, full

    async def _queue(self, webhooks: dict[str, Any], changes: list[Change], latest: int, full: bool) -> None:
        reached = changes[-1][0] if changes else self._position
        if not full:
            reached = max(reached, latest)
        rows: list[tuple[str, str, int, int, str]] = []
        wanting = [webhook for webhook in webhooks.values() if webhook.delivers]
        queries = [webhook.query for webhook in wanting if webhook.query is not None]
        parse = bool(queries)
        from_columns = parse and all(query.keys() <= COLUMN_KEYS for query in queries)
        checks = [(webhook, prefilter(webhook.query)) for webhook in wanting]
        for seq, body, excepted_by, dismissed, row in changes:
            if not wanting or is_hidden(excepted_by, dismissed):
                continue
            text = body.decode("utf-8") if isinstance(body, bytes) else body
            event: Any = None
            if row is not None and (from_columns or not parse):
                event_id, count = row.id, row.count  # the view is made only if a query is matched
            else:
                try:
                    event = _decode(text)
                    event_id, count = event["id"], int(event["record"]["count"])
                except (msgspec.DecodeError, KeyError, TypeError, ValueError) as error:
                    log.error("webhook dispatch: change %d is no event this collector can deliver, skipped: %s",
                              seq, error)
                    continue
            for webhook, check in checks:
                if self.cursors[webhook.name] >= seq or (check is not None and row is not None and not check(row)):
                    continue
                if event is None and webhook.query is not None:
                    event = column_view(row)
                if webhook.query is None or webhook.wants(event):
                    rows.append((webhook.name, event_id, count, seq, text))
        moved = {name: reached for name in webhooks if self.cursors[name] < reached}
        due = bool(rows) or (moved and time.monotonic() - self._saved_at >= self._settings.save_interval_seconds)
        if due:
            await self._store.enqueue_webhook_deliveries(rows, moved)
            self._saved_at = time.monotonic()
            self._saved.update(moved)
        self.cursors.update(moved)
        if rows:
            self._on_queued({row[0] for row in rows})

    async def save(self) -> None:
        """Save the cursors that moved with nothing queued (at a stop)."""
        moved = {name: seq for name, seq in self.cursors.items() if self._saved.get(name, -1) < seq}
        if moved:
            try:
                await self._store.enqueue_webhook_deliveries([], moved)
                self._saved.update(moved)
            except StoreError as error:
                log.warning("webhook dispatch: saving the cursors failed: %s", error)

    def _published(self, first_seq: int, rows: list[Any]) -> None:
        """As the forwarder's: this process's committed rows, held when they follow what is held."""
        if not self._keeper.webhooks:
            return
        skip = (self._held[-1][0] if self._held else self._frontier) + 1 - first_seq
        if skip < 0 or len(self._held) + len(rows) > self._settings.max_held_events:
            self._held = []
            return
        self._held += [(first_seq + index, row.body, row.excepted_by, row.dismissed, row)
                       for index, row in enumerate(rows[skip:], start=skip)]

    async def _wait(self, generation: int, ticket: int | None, timeout: float) -> bool:
        """Until the bell rings (True), the keeper changes, a stop, or `timeout`."""
        bell = asyncio.ensure_future(self._bell.wait(timeout, after=ticket)) if ticket is not None else None
        changed = asyncio.ensure_future(self._keeper.wait_changed(generation))
        stopped = asyncio.ensure_future(self._stop.wait())
        waiting = [task for task in (bell, changed, stopped) if task is not None]
        try:
            await asyncio.wait(waiting, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in waiting:
                task.cancel()
            await asyncio.gather(*waiting, return_exceptions=True)
        return bool(bell is not None and bell.done() and not bell.cancelled() and bell.result())

    async def _failed(self, why: str) -> None:
        self._failures += 1
        if self._failures == 1:
            log.warning("webhook dispatch: %s; trying again with backoff, the events wait in the store", why)
        await pause_after_failure(self._stop, self._failures, self._settings.backoff_seconds,
                                  self._settings.max_backoff_seconds)
