"""Events between protobuf messages (dnswatch_pb.v1 events) and the shared model, both ways.

The collector's Events service reads a request's filter (`filter_from_pb`) and resume token, and sends stored
events (`event_to_pb`); the consumer's command builds the filter (`filter_to_pb`) and reads the events back
(`decompressed_events`, `event_from_pb`). The collector's own encoding of watch pages, joined from encoded
fields on its hot path, stays with its servicer (collector/shell/grpc_events.py).
"""

from __future__ import annotations

import base64
import datetime as dt
import json
from typing import Any

import zstandard
from google.protobuf import timestamp_pb2
from google.protobuf.message import DecodeError

from dnswatch.eventfilter import EventFilter
from dnswatch_pb.v1 import events_pb2

__all__ = ["BadResumeToken", "BadWatchResponse", "decode_resume_token", "decompressed_events",
           "encode_resume_token", "event_from_pb", "event_to_pb", "filter_from_pb", "filter_to_pb"]

_RESUME_TAG = "w1"


class BadResumeToken(ValueError):
    """A resume token this collector never handed out (or a damaged one)."""


class BadWatchResponse(ValueError):
    """A watch response whose compressed events cannot be read."""


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
                       since=_time_from_pb(message, "since"), until=_time_from_pb(message, "until"),
                       include_excepted=message.include_excepted, include_dismissed=message.include_dismissed,
                       dismissed_only=message.dismissed_only)


def filter_to_pb(where: EventFilter) -> events_pb2.EventFilter:
    """The request's filter for a store filter (the client side of `filter_from_pb`)."""
    message = events_pb2.EventFilter(namespace=where.namespace or "", pod=where.pod or "", feed=where.feed or "",
                                     domain=where.domain or "", type=where.type or "", host=where.host or "",
                                     include_excepted=where.include_excepted,
                                     include_dismissed=where.include_dismissed, dismissed_only=where.dismissed_only)
    for name in ("since", "until"):
        moment = getattr(where, name)
        if moment is not None:
            stamp = timestamp_pb2.Timestamp()
            stamp.FromDatetime(moment.astimezone(dt.timezone.utc))
            getattr(message, name).CopyFrom(stamp)
    return message


def event_to_pb(body: str, excepted_by: str = "", dismissed_by: str | None = None,
                dismissed_at: float | None = None) -> events_pb2.Event:
    """The message of a stored event's body: its id and its event JSON (docs/event.md) exactly as stored (never parsed
    here: on a List page that would be most of the call's time), and its marks (docs/alert-operations.md)."""
    message = events_pb2.Event(id=_id_of(body), json=body, excepted_by=excepted_by,
                               dismissed=dismissed_at is not None, dismissed_by=dismissed_by or "")
    if dismissed_at is not None:
        message.dismissed_time.FromDatetime(dt.datetime.fromtimestamp(dismissed_at, dt.timezone.utc))
    return message


def _id_of(body: str) -> str:
    """The `id` of a stored body, which the store wrote with `id` first; parsed in full only otherwise."""
    if body.startswith('{"id":"'):
        end = body.find('"', 7)
        if end > 7 and "\\" not in body[7:end]:
            return body[7:end]
    event_id = json.loads(body).get("id")
    return event_id if isinstance(event_id, str) else ""


def event_from_pb(message: events_pb2.Event) -> dict[str, Any]:
    """The event object (docs/event.md) a message carries; ValueError if its JSON is not an object."""
    event = json.loads(message.json)
    if not isinstance(event, dict):
        raise ValueError(f"event {message.id!r} is not a JSON object")
    return event


def _time_from_pb(message: events_pb2.EventFilter, name: str) -> dt.datetime | None:
    if not message.HasField(name):
        return None
    return getattr(message, name).ToDatetime(tzinfo=dt.timezone.utc)


def decompressed_events(response: events_pb2.EventWatchResponse,
                        max_bytes: int = 64 << 20) -> list[events_pb2.Event]:
    """A watch response's events, wherever they are: `compressed_events` (BadWatchResponse when damaged, or
    larger than `max_bytes` once decompressed), `events`, or `event` (one event per response)."""
    if response.compressed_events:
        try:
            size = zstandard.frame_content_size(response.compressed_events)
            if not 0 <= size <= max_bytes:
                raise BadWatchResponse(f"compressed_events: a zstd frame of {size} bytes, where at most "
                                       f"{max_bytes} with the size in its header are taken")
            inner = events_pb2.EventWatchResponse.FromString(
                zstandard.ZstdDecompressor().decompress(response.compressed_events, max_output_size=max_bytes))
        except (zstandard.ZstdError, DecodeError) as error:
            raise BadWatchResponse(f"compressed_events: {error}") from None
        return list(inner.events)
    if response.events:
        return list(response.events)
    return [response.event] if response.HasField("event") else []
