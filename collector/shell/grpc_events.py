"""The consumer's event service over grpc.aio (SPEC §6): `Events.List` and `Events.Watch`.

The servicer only translates: a request's filter to the store's `EventFilter`, stored events to `Event`
messages (the SPEC §3 JSON exactly as stored), store errors to gRPC status codes. Protobuf types stop here.

List is the store's keyset pages (`list_events`), the page token passed through as it is.

Watch follows the store's change sequence (`events_since`): every insert or replacement of an event takes the
next number, and writers commit in number order, so "everything after N" read after a commit can never later
grow a number at or below N. The resume token carries N. The stream has the shape of every dnswatch stream:
sync (events stored after the token), follow (wait for the bell, or poll: other replicas writing to the same
PostgreSQL database ring no bell here), and a client that lost the stream resumes from its last token with
no gap and no duplicate. Bookmarks (a token without an event) move a quiet watch's resume point on, so
resuming it does not re-read events its filter skipped.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import logging
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import grpc
from google.protobuf import timestamp_pb2

from collector.shell.eventbell import EventBell
from collector.store import BadPageToken, EventFilter, StoredEvent, StoreError
from collector.store.events import MAX_PAGE_SIZE
from dnswatch_pb.v1 import events_pb2, events_pb2_grpc

__all__ = ["BadResumeToken", "EventsServicer", "EventsSettings", "add_events_service", "decode_resume_token",
           "encode_resume_token", "event_from_pb", "event_to_pb", "filter_from_pb", "filter_to_pb"]

log = logging.getLogger(__name__)

DEFAULT_PAGE_SIZE = 100
"""Events per List page when the request says 0."""

_RESUME_TAG = "w1"


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
    """Watch: events read from the store per query."""


class BadResumeToken(ValueError):
    """A resume token this collector never handed out (or a damaged one)."""


# ---------------------------------------------------------------------------------------------- conversions


def encode_resume_token(seq: int) -> str:
    """The opaque resume token for "after change sequence number `seq`"."""
    raw = f"{_RESUME_TAG}:{int(seq)}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_resume_token(token: str) -> int:
    """The sequence number in a token made by encode_resume_token; BadResumeToken otherwise."""
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode("ascii")
        tag, _, number = raw.partition(":")
        if tag != _RESUME_TAG or not number.isdigit():
            raise ValueError
        return int(number)
    except (ValueError, UnicodeDecodeError):
        raise BadResumeToken(f"not a resume token of this collector: {token[:40]!r}") from None


def filter_from_pb(message: events_pb2.EventFilter) -> EventFilter:
    """The store's filter for a request's; empty strings and unset times do not filter."""
    return EventFilter(namespace=message.namespace or None, pod=message.pod or None, feed=message.feed or None,
                       domain=message.domain or None, type=message.type or None, host=message.host or None,
                       since=_time_from_pb(message, "since"), until=_time_from_pb(message, "until"))


def filter_to_pb(where: EventFilter) -> events_pb2.EventFilter:
    """The request's filter for a store filter (the client side of `filter_from_pb`)."""
    message = events_pb2.EventFilter(namespace=where.namespace or "", pod=where.pod or "", feed=where.feed or "",
                                     domain=where.domain or "", type=where.type or "", host=where.host or "")
    for name in ("since", "until"):
        moment = getattr(where, name)
        if moment is not None:
            stamp = timestamp_pb2.Timestamp()
            stamp.FromDatetime(moment.astimezone(dt.timezone.utc))
            getattr(message, name).CopyFrom(stamp)
    return message


def event_to_pb(stored: StoredEvent) -> events_pb2.Event:
    """The message of a stored event: its id and its SPEC §3 JSON text exactly as stored (never parsed here:
    on a List page that would be most of the call's time)."""
    return events_pb2.Event(id=_id_of(stored.body), json=stored.body)


def _id_of(body: str) -> str:
    """The `id` of a stored body, which the store wrote with `id` first; parsed in full only otherwise."""
    if body.startswith('{"id":"'):
        end = body.find('"', 7)
        if end > 7 and "\\" not in body[7:end]:
            return body[7:end]
    event_id = json.loads(body).get("id")
    return event_id if isinstance(event_id, str) else ""


def event_from_pb(message: events_pb2.Event) -> dict[str, Any]:
    """The SPEC §3 object a message carries; ValueError if its JSON is not an object."""
    event = json.loads(message.json)
    if not isinstance(event, dict):
        raise ValueError(f"event {message.id!r} is not a JSON object")
    return event


def _time_from_pb(message: events_pb2.EventFilter, name: str) -> dt.datetime | None:
    if not message.HasField(name):
        return None
    return getattr(message, name).ToDatetime(tzinfo=dt.timezone.utc)


# ---------------------------------------------------------------------------------------------- the servicer


class EventsServicer(events_pb2_grpc.EventsServicer):
    """`dnswatch events list|watch`."""

    def __init__(self, store: Any, bell: EventBell, settings: EventsSettings = EventsSettings()) -> None:
        self._store = store
        self._bell = bell
        self._settings = settings

    async def List(self, request: events_pb2.ListEventsRequest, context: grpc.aio.ServicerContext
                   ) -> events_pb2.ListEventsResponse:  # noqa: N802 - the generated servicer's names
        size = request.page_size or self._settings.default_page_size
        size = min(size, self._settings.max_page_size)
        where = filter_from_pb(request.filter)
        try:
            page, token = await self._store.list_events(where, size, request.page_token)
        except BadPageToken as error:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT,
                                f"page_token: {error}; pass the next_page_token of the previous response with "
                                "the same filter, or none for the first page")
        except StoreError as error:
            log.warning("List: the store failed: %s", error)
            await context.abort(grpc.StatusCode.UNAVAILABLE, f"the event store failed: {error}")
        return events_pb2.ListEventsResponse(events=[event_to_pb(stored) for stored in page],
                                             next_page_token=token)

    async def Watch(self, request: events_pb2.WatchEventsRequest, context: grpc.aio.ServicerContext
                    ) -> AsyncIterator[events_pb2.EventWatchResponse]:  # noqa: N802
        where = filter_from_pb(request.filter)
        settings, store, bell = self._settings, self._store, self._bell
        try:
            if request.resume_token:
                cursor = decode_resume_token(request.resume_token)
            else:
                cursor = await store.latest_event_seq()
        except BadResumeToken as error:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT,
                                f"resume_token: {error}; pass a resume_token this collector sent, or none to "
                                "watch from now")
        except StoreError as error:
            await context.abort(grpc.StatusCode.UNAVAILABLE, f"the event store failed: {error}")
        # The first message says where this stream starts, so a client stopped before any event can still
        # resume from here.
        yield events_pb2.EventWatchResponse(resume_token=encode_resume_token(cursor))
        last_sent = time.monotonic()
        while not bell.closed:
            ticket = bell.ticket()
            try:
                # The latest number is read before the events: every write numbered up to it has committed,
                # so if the query returns less than a full batch, nothing matching up to it is left unread.
                latest = await store.latest_event_seq()
                batch = await store.events_since(cursor, where, settings.watch_batch)
            except StoreError as error:
                log.warning("Watch: the store failed: %s", error)
                await context.abort(grpc.StatusCode.UNAVAILABLE, f"the event store failed: {error}")
            for stored in batch:
                cursor = stored.seq
                yield events_pb2.EventWatchResponse(event=event_to_pb(stored),
                                                    resume_token=encode_resume_token(cursor))
            if batch:
                last_sent = time.monotonic()
            if len(batch) >= settings.watch_batch:
                continue  # more to read at once
            cursor = max(cursor, latest)
            if time.monotonic() - last_sent >= settings.bookmark_seconds:
                yield events_pb2.EventWatchResponse(resume_token=encode_resume_token(cursor))
                last_sent = time.monotonic()
            wait = min(settings.poll_seconds, max(0.0, settings.bookmark_seconds - (time.monotonic() - last_sent)))
            await bell.wait(wait, after=ticket)
        await context.abort(grpc.StatusCode.UNAVAILABLE, "the collector is shutting down; resume with the last "
                                                         "resume_token")


def add_events_service(server: grpc.aio.Server, store: Any, bell: EventBell,
                       settings: EventsSettings = EventsSettings()) -> EventsServicer:
    """Register the Events service on `server`; close `bell` when stopping to end the watches at once."""
    servicer = EventsServicer(store, bell, settings)
    events_pb2_grpc.add_EventsServicer_to_server(servicer, server)
    return servicer
