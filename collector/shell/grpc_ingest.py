"""The collector's event ingest over grpc.aio: `EventIngest.Send`, agents' batches into the store.

Delivery is at-least-once and the store holds each event once: a batch is acknowledged only after the
store's transaction that holds it has committed (durable), acks go back in the order the batches came, and
de-duplication by event id is the store's (`ingest_events`), so an agent that resends after a reconnect
changes nothing it had already delivered.

A stream is read ahead: up to `window` batches are handed to the store before the first of them is
acknowledged, so that the store's group commit can write them (and other agents' batches) in one
transaction while the next ones are parsed. Per stream the order stays the order of arrival. Across streams
at most `max_events_held` events are read and not yet written: past that, streams are not read (HTTP/2 flow
control holds their agents back) until writes free room, so a thousand agents reconnecting with a backlog
cannot hold a thousand windows in the collector's memory.

The servicer only translates: a batch goes to the store as its events' JSON texts and ids
(`Store.ingest_json`, which parses them off the event loop and stores each text as it came), with the batch's
bytes as received, from which an event watch cuts each event's encoding to send it on (batchwire.py). The one
exception is a match whose feed line the agent left to the collector (`"line":null`): it is filled in from the
feed body of the version it names (collector/core/matchlines.py, in a worker thread), and that batch then goes
without its bytes, so that a watch sends the texts as stored. A batch that
cannot be stored (JSON that does not parse, an `id` that differs from `Event.id`, an event the store
refuses) ends the stream with INVALID_ARGUMENT naming the batch and the event; the batches before it are
still acknowledged, nothing of it is stored, and nothing after it is acknowledged (a later batch already read
ahead may have been written: the agent resends it, harmlessly).
"""

from __future__ import annotations

import asyncio
import collections
import functools
import logging
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass
from typing import Any

import grpc

from collector.core.matchlines import UNFILLED, fill_lines
from collector.shell.batchwire import BatchWire
from collector.store import BadEvent, StoreError
from dnswatch.feeds.entrylines import EntryLines
from dnswatch_pb.v1 import events_pb2, events_pb2_grpc

__all__ = ["EntryLinesSource", "EventBudget", "EventIngestServicer", "IngestSettings", "add_ingest_service"]

EntryLinesSource = Callable[[], "Mapping[tuple[str, int], EntryLines]"]
"""The feed bodies held now by (feed, version) (`FeedHub.entry_lines`), to fill in the matches' lines."""

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class IngestSettings:
    """How the ingest treats each stream."""

    window: int = 32
    """Batches of one stream handed to the store before the oldest is acknowledged: as many as an agent
    sends unacknowledged (`ShipperSettings.max_batches_in_flight`), so that one agent's backlog is written in
    a few large transactions; beyond it the stream is not read (HTTP/2 flow control holds the agent back)."""
    max_events_held: int = 40_000
    """Events of all streams read and not yet written, at most (a batch larger than this still goes, alone):
    a few kB of memory each while parsed and waiting. Twice the store's largest transaction, so the writer
    always has the next group ready."""


@dataclass(frozen=True)
class _Write:
    """One batch handed to the store: its id, and the task writing it."""

    batch_id: int
    task: asyncio.Task[Any]


_END = object()


class EventBudget:
    """Events read and not yet written, across every stream, at most `limit`; streams wait their turn in
    the order they asked (a large batch is not overtaken for ever by small ones)."""

    def __init__(self, limit: int) -> None:
        self._limit = limit
        self._held = 0
        self._waiting: collections.deque[tuple[int, asyncio.Future[None]]] = collections.deque()

    @property
    def held(self) -> int:
        return self._held

    async def take(self, count: int) -> int:
        """Wait until `count` events fit, hold them and return what was held (to give back): a batch larger
        than the whole budget takes all of it, so it waits for the others and then travels alone."""
        count = min(count, self._limit)
        if not self._waiting and self._held + count <= self._limit:
            self._held += count
            return count
        turn = (count, asyncio.get_running_loop().create_future())
        self._waiting.append(turn)
        try:
            await turn[1]  # resolved once the events are held for this call
        except BaseException:
            if turn[1].done() and not turn[1].cancelled():
                self.give_back(count)  # granted, but the call was cancelled before it could use them
            else:
                self._waiting.remove(turn)
                self._grant()
            raise
        return count

    def give_back(self, count: int) -> None:
        self._held -= count
        self._grant()

    def _grant(self) -> None:
        while self._waiting and self._held + self._waiting[0][0] <= self._limit:
            count, granted = self._waiting.popleft()
            self._held += count
            granted.set_result(None)


class EventIngestServicer(events_pb2_grpc.EventIngestServicer):
    """`EventIngest.Send`: each agent's stream of batches, acknowledged in order after their durable write."""

    def __init__(self, store: Any, *, on_stored: Callable[[], None] | None = None,
                 settings: IngestSettings = IngestSettings(), entry_lines: EntryLinesSource | None = None) -> None:
        self._store = store
        self._entry_lines = entry_lines
        self._on_stored = on_stored
        self._settings = settings
        self.budget = EventBudget(settings.max_events_held)

    async def Send(self, request_iterator: AsyncIterator[ReceivedBatch],
                   context: grpc.aio.ServicerContext) -> AsyncIterator[events_pb2.Ack]:  # noqa: N802
        writes: asyncio.Queue[Any] = asyncio.Queue(maxsize=self._settings.window)
        reader = asyncio.create_task(self._read(request_iterator, writes), name="ingest reader")
        try:
            while True:
                item = await writes.get()
                if item is _END:
                    break
                if isinstance(item, BaseException):
                    raise item
                try:
                    result = await item.task
                except BadEvent as error:
                    message = f"batch {item.batch_id}: {error}"
                    log.warning("refused an event batch: %s", message)
                    await context.abort(grpc.StatusCode.INVALID_ARGUMENT, message)
                except StoreError as error:
                    log.error("event batch %d not stored: %s", item.batch_id, error)
                    await context.abort(grpc.StatusCode.UNAVAILABLE,
                                        f"batch {item.batch_id} not stored: {error}; resend it")
                if (result.inserted or result.updated) and self._on_stored is not None:
                    self._on_stored()
                yield events_pb2.Ack(batch_id=item.batch_id, inserted=result.inserted, replaced=result.updated)
            await reader  # the stream ended normally: surface a reader failure, if any
        finally:
            # Writes already handed to the store carry on (harmless: the agent resends what it saw no Ack
            # for, and the store de-duplicates); only their outcome is no longer awaited.
            reader.cancel()

    async def _read(self, request_iterator: AsyncIterator[ReceivedBatch], writes: asyncio.Queue[Any]) -> None:
        try:
            async for batch, wire in request_iterator:
                texts = [event.json for event in batch.events]
                ids = [event.id for event in batch.events]
                held = await self.budget.take(len(texts))
                if self._entry_lines is not None and any(UNFILLED in text for text in texts):
                    # The first lookup of an entry searches its feed's body (milliseconds): off the event loop.
                    filled = await asyncio.to_thread(fill_lines, texts, self._entry_lines())
                    if filled is not None:
                        texts, wire = filled, None  # a watch sends the texts as stored, not the bytes received
                task = asyncio.create_task(self._store.ingest_json(texts, ids=ids, wire=wire),
                                           name=f"ingest batch {batch.batch_id}")
                # Awaited below when its turn comes, unless the stream ends first: then nobody reads its
                # outcome, and asyncio must not log a failure of it as never retrieved. Either way the
                # budget gets its events back once the write is over.
                task.add_done_callback(functools.partial(self._written, held))
                # put() waits while `window` writes are unanswered: the stream is then not read further.
                await writes.put(_Write(batch.batch_id, task))
        except Exception as error:  # noqa: BLE001 - the stream broke: the acking side ends the call with it
            await writes.put(error)
            return
        await writes.put(_END)


    def _written(self, held: int, task: asyncio.Task[Any]) -> None:
        self.budget.give_back(held)
        if not task.cancelled():
            task.exception()


def add_ingest_service(server: grpc.aio.Server, store: Any, *, on_stored: Callable[[], None] | None = None,
                       settings: IngestSettings = IngestSettings(),
                       entry_lines: EntryLinesSource | None = None) -> EventIngestServicer:
    """Register EventIngest on `server`, writing into `store`; `on_stored()` is called after each durable
    write that changed something (an `EventBell.ring`, so that watches look at once); `entry_lines()` gives
    the feed bodies in which the matches' lines are found (collector/core/matchlines.py)."""
    servicer = EventIngestServicer(store, on_stored=on_stored, settings=settings, entry_lines=entry_lines)
    # As events_pb2_grpc.add_EventIngestServicer_to_server, but each batch comes with its bytes as received.
    handlers = {"Send": grpc.stream_stream_rpc_method_handler(
        servicer.Send, request_deserializer=received_batch,
        response_serializer=events_pb2.Ack.SerializeToString)}
    service = events_pb2.DESCRIPTOR.services_by_name["EventIngest"].full_name
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(service, handlers),))
    return servicer


ReceivedBatch = tuple[events_pb2.EventBatch, BatchWire]
"""A batch as parsed, and its bytes as received."""


def received_batch(raw: bytes) -> ReceivedBatch:
    return events_pb2.EventBatch.FromString(raw), BatchWire(raw)
