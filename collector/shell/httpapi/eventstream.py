"""`GET /api/v1/events/stream`: Server-Sent Events of the events stored from now, or after a resume point.

Each event's `id:` is a resume token (the gRPC Watch's: the two APIs' tokens are interchangeable); a client
that lost the stream sends the last one it saw as `Last-Event-ID` (browsers' EventSource do so by themselves)
and gets every event stored after it, none twice. The stream follows the store's change sequence exactly as
the gRPC Watch does (collector/shell/grpc_events.py), through an EventTail (collector/shell/eventtail.py)
shared by every stream of the API: the newest rows are read once for all of them, each row's SSE text made
once, and a stream further behind than what the tail holds reads its own rows from the store, its filter in
SQL, until it is held.

The stream opens with a `bookmark` (an `id:` and no event): a client stopped before any event can still
resume from there. A quiet stream gets a bookmark every `bookmark_seconds`, which moves its resume point past
the events its filter skipped and keeps proxies from closing an idle connection.

    id: <token>
    event: bookmark
    data: {}

    id: <token>
    data: {"id": "…", "excepted_by": "", "dismissed": false, …, "event": {…}}
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from collector.shell.eventbell import EventBell
from collector.shell.eventtail import EventTail, TailSettings
from collector.shell.httpapi.eventjson import change_json
from collector.store import StoreError
from dnswatch.eventfilter import EventFilter
from dnswatch.pbconvert.events import decode_resume_token, encode_resume_token

__all__ = ["EventStream", "StreamSettings"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class StreamSettings:
    """How the streams read and follow."""

    batch: int = 500
    """Events written per read, at most."""
    max_bytes: int = 1 << 20
    """Bytes of events written per read, past the first, at most."""
    bookmark_seconds: float = 15.0
    """A quiet stream gets a bookmark after this many seconds without a line (proxies close idle connections
    after 30-60 s)."""
    poll_seconds: float = 1.0
    """The longest wait between two reads of the store when the bell stays silent (other replicas)."""


def _encode(change: Any) -> bytes:
    return b"data: " + change_json(change).encode() + b"\n\n"


def _frame(resume: int, encoded: list[bytes], compress: bool = False) -> bytes:
    return b"".join(encoded)  # unused: each event is written with its own id (EventTail.after)


def bookmark(seq: int) -> bytes:
    return b"id: " + encode_resume_token(seq).encode() + b"\nevent: bookmark\ndata: {}\n\n"


def _with_id(seq: int, encoded: bytes) -> bytes:
    return b"id: " + encode_resume_token(seq).encode() + b"\n" + encoded


class EventStream:
    """The streams of one HTTP API, sharing one tail."""

    def __init__(self, store: Any, bell: EventBell, settings: StreamSettings = StreamSettings()) -> None:
        self._store = store
        self._settings = settings
        self._tail = EventTail(store, bell, _encode, _frame, TailSettings(poll_seconds=settings.poll_seconds))

    @staticmethod
    def resume_point(last_event_id: str) -> int:
        """The seq a Last-Event-ID names; BadResumeToken when it is none of ours."""
        return decode_resume_token(last_event_id.strip())

    async def start(self) -> int:
        """Where a stream with no Last-Event-ID starts: the store's latest change."""
        return await self._store.latest_event_seq()

    async def follow(self, where: EventFilter, cursor: int) -> AsyncIterator[bytes]:
        """The stream's text after `cursor`, until the collector stops (then it ends; the client resumes)."""
        settings, tail = self._settings, self._tail
        async with tail.attached() as place:
            place.cursor = cursor
            yield bookmark(cursor)
            last_sent = time.monotonic()
            while not tail.closed:
                if tail.failure is not None:
                    yield _failure(tail.failure)
                    return
                try:
                    chunks, reached, more = await self._next(cursor, where)
                except StoreError as error:
                    log.warning("event stream: the store failed: %s", error)
                    yield _failure(error)
                    return
                if chunks:
                    yield b"".join(chunks)
                    last_sent = time.monotonic()
                cursor = place.cursor = max(cursor, reached)
                if more:
                    continue
                if time.monotonic() - last_sent >= settings.bookmark_seconds:
                    yield bookmark(cursor)
                    last_sent = time.monotonic()
                await tail.wait(cursor)

    async def _next(self, cursor: int, where: EventFilter) -> tuple[list[bytes], int, bool]:
        settings, tail = self._settings, self._tail
        if tail.holds(cursor):
            encoded, seqs, reached = tail.after(cursor, where, limit=settings.batch, max_bytes=settings.max_bytes,
                                                with_seqs=True)
            return [_with_id(seq, one) for seq, one in zip(seqs, encoded)], reached, reached < tail.shown
        latest, changes = await self._store.event_changes(cursor, settings.batch, where)
        more = len(changes) >= settings.batch
        seqs = [change.seq for change in changes]
        reached = seqs[-1] if more else max(cursor, latest, *seqs[-1:])
        return [_with_id(change.seq, _encode(change)) for change in changes], reached, more


def _failure(error: Exception) -> bytes:
    # The client resumes from its last id once the store answers again.
    data = json.dumps({"error": {"code": "unavailable", "message": f"the event store failed: {error}"}})
    return b"event: error\ndata: " + data.encode() + b"\n\n"
