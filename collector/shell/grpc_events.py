"""The consumer's event service over grpc.aio (docs/grpc-api.md): `Events.List` and `Events.Watch`.

The servicer only translates: a request's filter to the store's `EventFilter`, stored events to `Event`
messages (the event JSON exactly as stored), store errors to gRPC status codes. Protobuf types stop here.

List is the store's keyset pages (`list_events`), the page token passed through as it is. List, Dismiss and
Undismiss call collector/shell/eventops.py, as the HTTP API does (collector/shell/httpapi/).

Watch follows the store's change sequence: every insert or replacement of an event takes the next number,
and writers commit in number order, so "everything after N" read after a commit can never later grow a number
at or below N. The resume token carries N. The stream has the shape of every dnswatch stream: sync (events
stored after the token), follow (wait for the next read of new rows), and a client that lost the stream
resumes from its last token with no gap and no duplicate. Bookmarks (a token without an event) move a quiet
watch's resume point on, so resuming it does not re-read events its filter skipped.

Where the time goes at scale decides the shape. New rows are read once for every watch of the process
(collector/shell/eventtail.py), not once per watch; each row's wire encoding is made once there too, and a
response is the concatenation of its events' encodings and its token's (the protobuf encoding of a message
is the concatenation of its fields', in any order), so a page costs a watch a join, not a message built
event by event. A client asking for `max_events` gets up to that many events per response: one gRPC message
per page rather than per event; one asking for `compression` gets each page as one zstd frame, compressed once
for every watch at the same place (a hundred watches of every event sent a hundred copies of each, and the
copying, not the making of pages, was then most of the collector's work). A watch whose resume point is older than what the tail holds reads its own
pages from the store, with its filter in SQL, until it reaches the tail.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import grpc
import zstandard

from collector.shell.eventbell import EventBell
from collector.shell.eventops import DEFAULT_PAGE_SIZE, dismiss_events, list_events, page_size, undismiss_events
from collector.shell.eventtail import EventTail, TailSettings
from collector.shell.security.interceptor import CALLER
from collector.store import BadPageToken, StoreError
from collector.store.eventqueries import MAX_PAGE_SIZE, EventChange
from collector.store.eventrows import EventRow
from dnswatch.eventfilter import EventFilter
from dnswatch.pbconvert.events import (BadResumeToken, decode_resume_token, encode_resume_token, event_to_pb,
                                      filter_from_pb)
from dnswatch_pb.v1 import events_pb2, events_pb2_grpc

__all__ = ["EventsServicer", "EventsSettings", "add_events_service"]

log = logging.getLogger(__name__)

@dataclass(frozen=True)
class EventsSettings:
    """How the Events service pages and follows."""

    default_page_size: int = DEFAULT_PAGE_SIZE
    """List page size when the request asks for 0."""
    max_page_size: int = MAX_PAGE_SIZE
    """The largest List page served, whatever is asked."""
    poll_seconds: float = 1.0
    """Watch: the longest wait between two reads of the store when the bell stays silent (other replicas'
    writes are seen within this)."""
    bookmark_seconds: float = 30.0
    """Watch: a quiet stream gets a bookmark after this many seconds without a message."""
    watch_batch: int = 500
    """Watch: events read from the store per query by a watch older than what the tail holds."""
    max_events: int = MAX_PAGE_SIZE
    """Watch: the most events in one response, whatever the request's `max_events` asks."""
    max_response_bytes: int = 1 << 20
    """Watch: a response holds more events only while it stays within this (a client takes at most 4 MB per
    message by default, and a page of large events must not cross that)."""
    max_compressed_events: int = 10 * MAX_PAGE_SIZE
    """Watch: the most events in one compressed response. Each response costs every watch a message, whatever
    its size: compressed pages are small, and larger ones spare a hundred watches most of their messages."""
    max_compressed_bytes: int = 3 << 20
    """Watch: the largest compressed response the tail's shared pages make (within a client's default 4 MB);
    and what a response made for one watch holds before compression (a zstd frame of bytes that do not
    compress is a few bytes longer than they are)."""
    max_shared_page_bytes: int = 16 << 20
    """Watch: the events of a shared compressed page before compression, at most. Event JSON compresses
    tenfold or more, so a page is then as large as a read brings (a message per watch per read, not one per
    3 MB); a page that compresses worse than max_compressed_bytes is made again within that."""
    tail_events: int = TailSettings.window_events
    """Watch: the newest events held in memory for every watch (see collector/shell/eventtail.py)."""


# ---------------------------------------------------------------------------------------------- the servicer


class EventsServicer(events_pb2_grpc.EventsServicer):
    """`dnswatch events list|watch`."""

    def __init__(self, store: Any, bell: EventBell, settings: EventsSettings = EventsSettings()) -> None:
        self._store = store
        self._bell = bell
        self._settings = settings
        self._tail = EventTail(store, bell, encode_watched_event, _page,
                               TailSettings(window_events=settings.tail_events, poll_seconds=settings.poll_seconds))

    async def List(self, request: events_pb2.ListEventsRequest, context: grpc.aio.ServicerContext
                   ) -> events_pb2.ListEventsResponse:  # noqa: N802 - the generated servicer's names
        size = page_size(request.page_size, default=self._settings.default_page_size,
                         largest=self._settings.max_page_size)
        where = filter_from_pb(request.filter)
        try:
            page, token = await list_events(self._store, where, size, request.page_token)
        except BadPageToken as error:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT,
                                f"page_token: {error}; pass the next_page_token of the previous response with "
                                "the same filter, or none for the first page")
        except StoreError as error:
            log.warning("List: the store failed: %s", error)
            await context.abort(grpc.StatusCode.UNAVAILABLE, f"the event store failed: {error}")
        return events_pb2.ListEventsResponse(events=[event_to_pb(stored.body, stored.excepted_by, stored.dismissed_by,
                                                                 stored.dismissed_at) for stored in page],
                                             next_page_token=token)

    async def Dismiss(self, request: events_pb2.DismissEventsRequest, context: grpc.aio.ServicerContext
                      ) -> events_pb2.DismissEventsResponse:  # noqa: N802
        return await self._dismissal(context, dismiss_events(self._store, list(request.ids), CALLER.get()))

    async def Undismiss(self, request: events_pb2.DismissEventsRequest, context: grpc.aio.ServicerContext
                        ) -> events_pb2.DismissEventsResponse:  # noqa: N802
        return await self._dismissal(context, undismiss_events(self._store, list(request.ids)))

    async def _dismissal(self, context: grpc.aio.ServicerContext, done: Any) -> events_pb2.DismissEventsResponse:
        try:
            result = await done
        except StoreError as error:
            log.warning("Dismiss: the store failed: %s", error)
            await context.abort(grpc.StatusCode.UNAVAILABLE, f"the event store failed: {error}")
        return events_pb2.DismissEventsResponse(changed=result.changed, unknown=result.unknown)

    async def Watch(self, request: events_pb2.WatchEventsRequest, context: grpc.aio.ServicerContext
                    ) -> AsyncIterator[bytes]:  # noqa: N802
        # Responses are yielded encoded (see _serialize_watch_response): joined from the tail's encodings.
        where = filter_from_pb(request.filter)
        settings, store = self._settings, self._store
        compress = request.compression == events_pb2.WATCH_COMPRESSION_ZSTD
        # 0: one event per response, in `event`
        per_response = min(request.max_events, settings.max_compressed_events if compress else settings.max_events)
        budget = settings.max_compressed_bytes if compress else settings.max_response_bytes
        if request.compression not in (events_pb2.WATCH_COMPRESSION_NONE, events_pb2.WATCH_COMPRESSION_ZSTD):
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT,
                                f"compression: {request.compression} is not a WatchCompression this collector "
                                "knows; ask for WATCH_COMPRESSION_ZSTD or none")
        if compress and not per_response:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT,
                                "compression applies to pages of events: set max_events too (up to "
                                f"{settings.max_compressed_events})")
        tail = self._tail
        async with tail.attached() as place:
            try:
                # From now: the store's latest number, not what the tail has read, which may lag it a little.
                cursor = (decode_resume_token(request.resume_token) if request.resume_token
                          else await store.latest_event_seq())
            except BadResumeToken as error:
                await context.abort(grpc.StatusCode.INVALID_ARGUMENT,
                                    f"resume_token: {error}; pass a resume_token this collector sent, or none to "
                                    "watch from now")
            except StoreError as error:
                await context.abort(grpc.StatusCode.UNAVAILABLE, f"the event store failed: {error}")
            # The first message says where this stream starts, so a client stopped before any event can still
            # resume from here.
            place.cursor = cursor
            yield _token_field(cursor)
            last_sent = time.monotonic()
            while not tail.closed:
                if tail.failure is not None:
                    await context.abort(grpc.StatusCode.UNAVAILABLE, f"the event store failed: {tail.failure}")
                try:
                    responses, reached, more = await self._responses(tail, cursor, where, per_response,
                                                                     budget, compress)
                except StoreError as error:
                    log.warning("Watch: the store failed: %s", error)
                    await context.abort(grpc.StatusCode.UNAVAILABLE, f"the event store failed: {error}")
                for response in responses:
                    yield response
                cursor = place.cursor = max(cursor, reached)
                if responses:
                    last_sent = time.monotonic()
                if more:
                    continue  # more to read at once
                if time.monotonic() - last_sent >= settings.bookmark_seconds:
                    yield _token_field(cursor)
                    last_sent = time.monotonic()
                await tail.wait(cursor)  # the tail reads at least every poll_seconds
        await context.abort(grpc.StatusCode.UNAVAILABLE, "the collector is shutting down; resume with the last "
                                                         "resume_token")


    async def _responses(self, tail: EventTail, cursor: int, where: EventFilter, per_response: int,
                         budget: int, compress: bool) -> tuple[list[bytes], int, bool]:
        """The next responses of a watch at `cursor` (each of at most `per_response` events and, past its
        first, `budget` bytes of them), the resume point after them, and whether more can be read at once.
        Pages of several events come from the tail as they are (made once for every watch at the same
        place); a watch older than the tail reads its own pages from the store, filtered there."""
        settings = self._settings
        if tail.holds(cursor) and per_response:
            response, count, reached = tail.page(cursor, where, limit=per_response, compress=compress,
                                                 max_bytes=settings.max_shared_page_bytes if compress else budget)
            if len(response) > settings.max_compressed_bytes and compress:  # a page that hardly compresses
                response, count, reached = tail.page(cursor, where, limit=per_response, max_bytes=budget,
                                                     compress=True)
            return ([response] if count else []), reached, reached < tail.shown
        if tail.holds(cursor):
            encoded, seqs, reached = tail.after(cursor, where, limit=settings.watch_batch,
                                                max_bytes=budget, with_seqs=True)
            more = reached < tail.shown
        else:
            latest, changes = await self._store.event_changes(cursor, settings.watch_batch, where)
            encoded = [encode_watched_event(change) for change in changes]
            seqs = [change.seq for change in changes]
            more = len(changes) >= settings.watch_batch
            reached = seqs[-1] if more else max(cursor, latest, *seqs[-1:])
        if not per_response:
            return [_as_single(one) + _token_field(seq) for seq, one in zip(seqs, encoded)], reached, more
        # Each response ends at its last event, the last one where this read ended; and stays within the
        # byte budget (the tail's pages do so already).
        responses, start = [], 0
        while start < len(encoded):
            end, size = start + 1, len(encoded[start])
            while (end < len(encoded) and end - start < per_response
                   and size + len(encoded[end]) <= budget):
                size += len(encoded[end])
                end += 1
            responses.append(_page(reached if end == len(encoded) else seqs[end - 1], encoded[start:end],
                                   compress))
            start = end
        return responses, reached, more


# ---------------------------------------------------------------------------------------------- the wire

# The protobuf encoding of a message is the concatenation of its fields' encodings, in any order, and a
# repeated field's elements are each a field of their own: so a response is joined from an encoded token and
# the events' encodings, each made once for every watch (the tail keeps them).
_EVENT_FIELD = 1


def encode_watched_event(change: EventChange | EventRow) -> bytes:
    """A stored event as one element of EventWatchResponse.events, encoded: `events` (3) holding an Event of
    `id` (1) and `json` (2). Cut from the agent's batch as it came when this process ingested it and the cut
    is exactly that (batchwire.py); else written out rather than built as messages, in half the time (a tail
    encodes every new event once); tests/collector/test_events_wire.py checks both against protobuf's
    encoder."""
    if change.excepted_by or change.dismissed:  # seldom sent: only to watches that ask for marked events
        body = change.body.decode() if isinstance(change.body, bytes) else change.body
        return events_pb2.EventWatchResponse(events=[events_pb2.Event(
            id=change.id, json=body, excepted_by=change.excepted_by, dismissed=change.dismissed)]).SerializeToString()
    wire = getattr(change, "wire", None)
    if wire is not None:
        element = wire[0].element(wire[1])
        if element is not None and len(element) == _canonical_length(change):
            return element
    event_id = change.id.encode()
    body = change.body if isinstance(change.body, bytes) else change.body.encode()
    # proto3 leaves empty strings out. Joined once: the body (1-2 kB) is copied once, not at every level.
    id_field = b"\x0a" + _varint(len(event_id)) + event_id if event_id else b""
    body_head = b"\x12" + _varint(len(body)) if body else b""
    return b"".join((b"\x1a", _varint(len(id_field) + len(body_head) + len(body)), id_field, body_head, body))


def _canonical_length(change: EventChange | EventRow) -> int:
    """The length of the element encode_watched_event would write, for an ASCII id and body (-1 otherwise):
    a cut of that length holds the two fields alone, which the ingest checked against the stored text."""
    event_id, body = change.id, change.body
    if not (event_id.isascii() and isinstance(body, str) and body.isascii()):
        return -1
    id_size = len(event_id)
    payload = (1 + _varint_size(id_size) + id_size if id_size else 0) + (
        1 + _varint_size(len(body)) + len(body) if body else 0)
    return 1 + _varint_size(payload) + payload


def _varint_size(number: int) -> int:
    return 1 if number < 0x80 else 2 if number < 0x4000 else len(_varint(number))


_ONE_BYTE = [bytes((number,)) for number in range(0x80)]


def _varint(number: int) -> bytes:
    if number < 0x80:
        return _ONE_BYTE[number]
    if number < 0x4000:  # an event's usual length: 1-2 kB
        return bytes((number & 0x7F | 0x80, number >> 7))
    out = bytearray()
    while number >= 0x80:
        out.append(number & 0x7F | 0x80)
        number >>= 7
    out.append(number)
    return bytes(out)


def _as_single(encoded: bytes) -> bytes:
    """An element of `events` as the `event` field instead: the same length-delimited payload under the other
    field's tag (both tags are one byte: field number << 3 | 2)."""
    return bytes([_EVENT_FIELD << 3 | 2]) + encoded[1:]


_COMPRESSED_EVENTS_FIELD = 4
# Level 1: on event JSON it compresses a page 13× in 0.6 µs an event, where zlib's fastest level takes 2.5 µs
# for 13× (bench events). One compressor for the process: every watch runs on the one event loop's thread.
_COMPRESSOR = zstandard.ZstdCompressor(level=1, write_content_size=True)


def _page(resume: int, encoded: list[bytes], compress: bool = False) -> bytes:
    """A response of several events, the token first as protobuf's own encoder would put it; the events in
    `events`, or with `compress` in `compressed_events` as one zstd frame of their encodings joined (which are
    an EventWatchResponse of `events` alone)."""
    if not compress:
        return b"".join([_token_field(resume), *encoded])
    if not encoded:
        return _token_field(resume)
    frame = _COMPRESSOR.compress(b"".join(encoded))
    return b"".join([_token_field(resume), bytes([_COMPRESSED_EVENTS_FIELD << 3 | 2]), _varint(len(frame)), frame])


def _token_field(seq: int) -> bytes:
    return events_pb2.EventWatchResponse(resume_token=encode_resume_token(seq)).SerializeToString()


def _serialize_watch_response(response: bytes | events_pb2.EventWatchResponse) -> bytes:
    return response if isinstance(response, bytes) else response.SerializeToString()


def add_events_service(server: grpc.aio.Server, store: Any, bell: EventBell,
                       settings: EventsSettings = EventsSettings()) -> EventsServicer:
    """Register the Events service on `server`; close `bell` when stopping to end the watches at once."""
    servicer = EventsServicer(store, bell, settings)
    # As events_pb2_grpc.add_EventsServicer_to_server, but Watch's responses are already encoded.
    handlers = {
        "List": grpc.unary_unary_rpc_method_handler(
            servicer.List, request_deserializer=events_pb2.ListEventsRequest.FromString,
            response_serializer=events_pb2.ListEventsResponse.SerializeToString),
        "Watch": grpc.unary_stream_rpc_method_handler(
            servicer.Watch, request_deserializer=events_pb2.WatchEventsRequest.FromString,
            response_serializer=_serialize_watch_response),
        "Dismiss": grpc.unary_unary_rpc_method_handler(
            servicer.Dismiss, request_deserializer=events_pb2.DismissEventsRequest.FromString,
            response_serializer=events_pb2.DismissEventsResponse.SerializeToString),
        "Undismiss": grpc.unary_unary_rpc_method_handler(
            servicer.Undismiss, request_deserializer=events_pb2.DismissEventsRequest.FromString,
            response_serializer=events_pb2.DismissEventsResponse.SerializeToString),
    }
    service = events_pb2.DESCRIPTOR.services_by_name["Events"].full_name
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(service, handlers),))
    server.add_registered_method_handlers(service, handlers)
    return servicer
