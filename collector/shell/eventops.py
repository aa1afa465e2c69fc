"""The consumers' event operations, one function each, for every API that serves them: the gRPC Events
service (collector/shell/grpc_events.py) and the HTTP API (collector/shell/httpapi/). Each takes and returns
the store's values; the APIs translate them to protobuf or JSON and the store's errors to their status codes.

    page, token = await list_events(store, where, page_size=50, page_token="")
    result = await dismiss_events(store, ["id1", "id2"], CALLER.get())
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from collector.shell.security.interceptor import Caller
from collector.store.base import MarkResult, StoredEvent
from collector.store.eventqueries import MAX_PAGE_SIZE
from dnswatch.eventfilter import EventFilter

__all__ = ["ANONYMOUS", "DEFAULT_PAGE_SIZE", "dismiss_events", "get_event", "list_events",
           "page_size", "undismiss_events", "who"]

DEFAULT_PAGE_SIZE = 100
"""Events per page when a request asks for none (0)."""

ANONYMOUS = "anonymous (--insecure)"
"""Who dismissed an event when the collector checks no credentials."""


def page_size(asked: int, *, default: int = DEFAULT_PAGE_SIZE, largest: int = MAX_PAGE_SIZE) -> int:
    """The page size served for a request's: the default for 0, at most `largest`, whatever is asked."""
    return min(asked or default, largest)


async def list_events(store: Any, where: EventFilter, size: int, page_token: str = ""
                      ) -> tuple[list[StoredEvent], str]:
    """One page of the events `where` selects, newest first, and the token of the next page ("" at the end).
    BadPageToken for a token this store never handed out; StoreError when the store fails."""
    return await store.list_events(where, size, page_token)


async def get_event(store: Any, event_id: str) -> StoredEvent | None:
    """The stored event with this id, or None."""
    return await store.get_event(event_id)


def who(caller: Caller | None) -> str:
    """The identity a dismissal records: how the caller was recognised, never its token."""
    return caller.identity if caller is not None else ANONYMOUS


async def dismiss_events(store: Any, ids: list[str], caller: Caller | None) -> MarkResult:
    """Dismiss these events as `caller`, now: which changed, which are unknown."""
    return await store.dismiss_events(list(ids), who(caller), dt.datetime.now(dt.timezone.utc))


async def undismiss_events(store: Any, ids: list[str]) -> MarkResult:
    """Show these events again."""
    return await store.undismiss_events(list(ids))
