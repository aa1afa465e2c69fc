"""The event routes: list (every filter of the gRPC EventFilter, keyset pages), get, dismiss and undismiss,
and the stream (eventstream.py). Each calls collector/shell/eventops.py, as the gRPC servicer does."""

from __future__ import annotations

import datetime as dt
import json
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Header, Path as PathParam, Query, Request
from fastapi.responses import Response, StreamingResponse
from pydantic import BaseModel, Field

from collector.shell import eventops
from collector.shell.httpapi.auth import READ, WRITE, Gate
from collector.shell.httpapi.errors import ApiError, ErrorBody
from collector.shell.httpapi.eventjson import stored_json
from collector.shell.httpapi.eventstream import EventStream
from collector.shell.security.interceptor import Caller
from collector.store import BadPageToken, StoreError
from collector.store.eventqueries import MAX_PAGE_SIZE
from dnswatch.eventfilter import EventFilter
from dnswatch.pbconvert.events import BadResumeToken

__all__ = ["events_router"]

MAX_IDS = 10_000
"""The most ids one dismissal names."""


class StoredEventModel(BaseModel):
    id: str
    excepted_by: str = Field(description="the active alert exception that matched the event, or empty")
    dismissed: bool
    dismissed_by: str | None = Field(description="who dismissed it (the caller's identity), or null")
    dismissed_at: str | None = Field(description="when it was dismissed (RFC 3339), or null")
    event: dict[str, Any] = Field(description="the event as stored (docs/event.md)")


class EventPage(BaseModel):
    events: list[StoredEventModel]
    next_page_token: str = Field(description="pass as page_token for the next page; empty at the end")
    next: str | None = Field(description="the next page's URL (path and query), or null at the end")


class EventIds(BaseModel):
    ids: list[Annotated[str, Field(min_length=1, max_length=512)]] = Field(min_length=1, max_length=MAX_IDS)


class MarkResultModel(BaseModel):
    changed: list[str] = Field(description="the ids whose dismissal changed")
    unknown: list[str] = Field(description="the ids no stored event has")


def _aware(moment: dt.datetime | None, field: str) -> dt.datetime | None:
    if moment is not None and moment.tzinfo is None:
        raise ApiError(422, f"query.{field}: give a time zone (e.g. 2026-11-27T20:00:00Z)", field=f"query.{field}")
    return moment


def _filter(namespace: str | None = Query(None, description="source_namespace"),
            pod: str | None = Query(None, description="the pod's name or aggregated name (web-7d4b9c-*)"),
            host: str | None = Query(None, description="the node that reported the event"),
            feed: str | None = Query(None, description="a feed in record.feeds"),
            domain: str | None = Query(None, description="a name in record.suspicious_domains"),
            type: str | None = Query(None, description="the event's type, e.g. gtf_suspicious_dns_query"),
            since: dt.datetime | None = Query(None, description="events at or after this time (RFC 3339)"),
            until: dt.datetime | None = Query(None, description="events before this time (RFC 3339)"),
            include_excepted: bool = Query(False, description="also events an active alert exception matched"),
            include_dismissed: bool = Query(False, description="also dismissed events"),
            dismissed_only: bool = Query(False, description="only dismissed events")) -> EventFilter:
    return EventFilter(namespace=namespace or None, pod=pod or None, host=host or None, feed=feed or None,
                       domain=domain or None, type=type or None, since=_aware(since, "since"),
                       until=_aware(until, "until"), include_excepted=include_excepted,
                       include_dismissed=include_dismissed, dismissed_only=dismissed_only)


def _unavailable(error: StoreError) -> ApiError:
    return ApiError(503, f"the event store failed: {error}", headers={"Retry-After": "1"})


def events_router(store: Any, stream: EventStream, gate: Gate) -> APIRouter:
    router = APIRouter(prefix="/events", tags=["events"],
                       responses={401: {"model": ErrorBody}, 403: {"model": ErrorBody}, 422: {"model": ErrorBody},
                                  503: {"model": ErrorBody}})
    reader = Depends(gate.requiring(READ, "reading events"))
    writer = Depends(gate.requiring(WRITE, "dismissing events"))

    @router.get("", response_model=EventPage, summary="List events, newest first",
                dependencies=[reader])
    async def list_events(request: Request, where: EventFilter = Depends(_filter),
                          limit: int = Query(eventops.DEFAULT_PAGE_SIZE, ge=1, le=MAX_PAGE_SIZE),
                          page_token: str = Query("", max_length=1024,
                                                  description="next_page_token of the previous page")) -> Response:
        try:
            page, token = await eventops.list_events(store, where, eventops.page_size(limit), page_token)
        except BadPageToken as error:
            raise ApiError(422, f"query.page_token: {error}; pass the next_page_token of the previous page with "
                           "the same filters, or none for the first page", field="query.page_token") from None
        except StoreError as error:
            raise _unavailable(error) from None
        following = None
        if token:
            query = [(key, value) for key, value in request.query_params.multi_items() if key != "page_token"]
            following = f"{request.url.path}?{urlencode([*query, ('page_token', token)])}"
        body = ('{"events":[' + ",".join(stored_json(stored) for stored in page) + '],"next_page_token":'
                + json.dumps(token) + ',"next":' + (json.dumps(following) if following else "null") + "}")
        return Response(body, media_type="application/json")

    @router.get("/stream", summary="Server-Sent Events of new events, resumable with Last-Event-ID",
                dependencies=[reader],
                responses={200: {"content": {"text/event-stream": {"schema": {"type": "string"}}},
                                 "description": "the stream (docs/http-api.md)"}})
    async def stream_events(where: EventFilter = Depends(_filter),
                            last_event_id: str | None = Header(None, max_length=1024,
                                                               description="the id of the last event seen")
                            ) -> StreamingResponse:
        try:
            cursor = stream.resume_point(last_event_id) if last_event_id else await stream.start()
        except BadResumeToken as error:
            raise ApiError(422, f"header.last-event-id: {error}; send an id this collector sent, or none to "
                           "stream from now", field="header.last-event-id") from None
        except StoreError as error:
            raise _unavailable(error) from None
        return StreamingResponse(stream.follow(where, cursor), media_type="text/event-stream",
                                 headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})

    @router.get("/{event_id}", response_model=StoredEventModel, summary="One event",
                dependencies=[reader], responses={404: {"model": ErrorBody}})
    async def get_event(event_id: str = PathParam(max_length=512, description="the event's id")) -> Response:
        try:
            stored = await eventops.get_event(store, event_id)
        except StoreError as error:
            raise _unavailable(error) from None
        if stored is None:
            raise ApiError(404, f"no event with id {event_id!r}")
        return Response(stored_json(stored), media_type="application/json")

    @router.post("/dismiss", response_model=MarkResultModel, summary="Dismiss events (recorded as the caller)")
    async def dismiss(ids: EventIds, caller: Caller | None = writer) -> MarkResultModel:
        try:
            result = await eventops.dismiss_events(store, ids.ids, caller)
        except StoreError as error:
            raise _unavailable(error) from None
        return MarkResultModel(changed=result.changed, unknown=result.unknown)

    @router.post("/undismiss", response_model=MarkResultModel, summary="Show dismissed events again",
                 dependencies=[writer])
    async def undismiss(ids: EventIds) -> MarkResultModel:
        try:
            result = await eventops.undismiss_events(store, ids.ids)
        except StoreError as error:
            raise _unavailable(error) from None
        return MarkResultModel(changed=result.changed, unknown=result.unknown)

    return router
