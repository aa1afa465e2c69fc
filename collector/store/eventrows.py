"""The store's rows of events: an event (or its JSON text) turned into the row and side-table values the
store writes, and a batch of them prepared for its INSERT.

Rows: `events` keeps the filter columns and the event's JSON; `event_feeds` and `event_domains` hold
record.feeds and record.suspicious_domains one value per row (indexed both ways), so a feed or domain filter
is an indexed lookup rather than a LIKE over text.

Agents' batches come as JSON texts (`prepare_json_batch`), read field by field by msgspec on the ingest's
parsing thread, which also flattens each batch's INSERT values in advance (`PreparedBatch`): the writer
thread, which bounds the ingest, then only runs the database. Pure: no I/O.
"""

from __future__ import annotations

import datetime as dt
import itertools
import json
import time
from typing import Any, Iterable, NamedTuple

import msgspec

from collector.store.base import BadEvent

NEW_EVENT_COLUMNS = ("id", "time", "first_seen", "last_seen", "count", "type", "host", "namespace", "pod",
                     "pod_aggr", "body", "stored_at")
"""The columns of a new event's INSERT, in the order PreparedBatch.events holds their values."""


class EventRow(NamedTuple):
    """An event as the store keeps it: its columns (times in epoch seconds) and its side-table values."""

    id: str
    time: float
    first_seen: float
    last_seen: float
    count: int
    type: str
    host: str
    namespace: str
    pod: str
    pod_aggr: str
    body: str
    feeds: frozenset[str]
    domains: frozenset[str]
    wire: Any = None
    """Where the event's encoding as the agent sent it can be had, for event watches to send on as it came:
    (the received batch, the event's place in it), from `ingest_json(..., wire=)`; None otherwise."""


def event_row(event: dict[str, Any], body: str | None = None) -> EventRow:
    """The row for one event; BadEvent if it has no id or no parsable time.

    `body` is the JSON text `event` was parsed from, when the caller has it: it is stored as it came, which
    spares encoding every event again."""
    if not isinstance(event, dict):
        raise BadEvent(f"an event must be a JSON object, not {type(event).__name__}")
    record = event.get("record")
    record = record if isinstance(record, dict) else {}
    row = _row(event.get("id"), event.get("time"), event.get("type"), event.get("host"),
               event.get("source_namespace"), event.get("source_name"), event.get("source_name_aggr"),
               record.get("first_seen"), record.get("last_seen"), record.get("count", 1), record.get("feeds"),
               record.get("suspicious_domains"), body or "")
    if body is None:
        try:
            body = json.dumps(event, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
        except (TypeError, ValueError) as error:
            raise BadEvent(f"event {row.id}: not JSON: {error}") from None
        row = row._replace(body=body)
    return row


class _RecordHead(msgspec.Struct):
    """What the store reads of an event's record (the rest of the JSON is checked, not kept as objects)."""

    first_seen: Any = None
    last_seen: Any = None
    count: Any = 1
    feeds: Any = None
    suspicious_domains: Any = None


class _EventHead(msgspec.Struct):
    """What the store reads of an event: typed Any, so that each field is judged as event_row judges it."""

    id: Any = None
    time: Any = None
    type: Any = None
    host: Any = None
    source_namespace: Any = None
    source_name: Any = None
    source_name_aggr: Any = None
    record: _RecordHead | None = None


# msgspec rather than a whole parse (orjson, json): it checks the whole text as strictly (no NaN, no lone
# surrogates) but builds only these fields, not the ~60 objects of the event: 2.8 times faster here, and
# far less for the garbage collector to look at while batches wait for their commit.
_HEAD = msgspec.json.Decoder(_EventHead)


def json_event_row(text: str, wire: Any = None) -> EventRow:
    """The row for one event given as its JSON text (as agents send it), stored as it is; BadEvent if the
    text is not JSON, not an object, or not an event (see event_row). `wire` is kept on the row."""
    try:
        head = _HEAD.decode(text)
    except msgspec.ValidationError as error:
        raise BadEvent(_not_an_event(text, error)) from None
    except (msgspec.DecodeError, UnicodeEncodeError) as error:
        raise BadEvent(f"not JSON: {error}") from None
    record = head.record or _RecordHead()
    return _row(head.id, head.time, head.type, head.host, head.source_namespace, head.source_name,
                head.source_name_aggr, record.first_seen, record.last_seen, record.count, record.feeds,
                record.suspicious_domains, text, wire)


def _not_an_event(text: str, error: msgspec.ValidationError) -> str:
    if str(error).endswith("- at `$`") or "- at" not in str(error):
        kinds = {"[": "list", '"': "str", "t": "bool", "f": "bool", "n": "null"}
        return f"a JSON {kinds.get(text.lstrip()[:1], 'number')}, not an object"
    return f"not an event: {error}"


def _row(event_id: Any, time_text: Any, event_type: Any, host: Any, namespace: Any, pod: Any, pod_aggr: Any,
         first_text: Any, last_text: Any, count: Any, feeds: Any, domains: Any, body: str,
         wire: Any = None) -> EventRow:
    if not isinstance(event_id, str) or not event_id:
        raise BadEvent("an event has no id")
    event_time = parse_time(time_text, f"event {event_id}: time")
    # An event's time is its first_seen, and a fresh event's last_seen is the same again: a repeated text is
    # not parsed again (three parses were a quarter of this function).
    first_seen = (event_time if first_text is None or first_text == time_text
                  else parse_time(first_text, f"event {event_id}: record.first_seen"))
    last_seen = (first_seen if last_text is None or last_text == (first_text or time_text)
                 else parse_time(last_text, f"event {event_id}: record.last_seen"))
    if not isinstance(count, int) or isinstance(count, bool) or count < 0:
        raise BadEvent(f"event {event_id}: record.count is not a count: {count!r}")
    return EventRow(event_id, event_time, first_seen, last_seen, count, _text(event_type), _text(host),
                    _text(namespace), _text(pod), _text(pod_aggr), body,
                    frozenset(_texts(feeds)), frozenset(_texts(domains)), wire)


def parse_time(value: Any, what: str) -> float:
    """An RFC 3339 time (`2026-11-27T20:11:36.123Z`) as epoch seconds; BadEvent naming `what` if not one."""
    if not isinstance(value, str):
        raise BadEvent(f"{what} is missing or not a string")
    try:
        parsed = dt.datetime.fromisoformat(value)
    except ValueError:
        raise BadEvent(f"{what} is not an RFC 3339 time: {value!r}") from None
    if parsed.tzinfo is None:
        raise BadEvent(f"{what} has no timezone: {value!r}")
    return parsed.timestamp()


def merge_batch(rows: Iterable[EventRow]) -> dict[str, EventRow]:
    """One row per id: of the rows sharing an id, the first with the highest count (insertion order kept)."""
    merged: dict[str, EventRow] = {}
    for row in rows:
        held = merged.get(row.id)
        if held is None or row.count > held.count:
            merged[row.id] = row
    return merged


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ""


def _texts(values: Any) -> list[str]:
    return [value for value in values if isinstance(value, str)] if isinstance(values, list) else []


def _batch_rows(events: list[dict[str, Any]], bodies: list[str] | None = None) -> dict[str, EventRow]:
    if bodies is None:
        return merge_batch(event_row(event) for event in events)
    if len(bodies) != len(events):
        raise ValueError(f"{len(bodies)} bodies given for {len(events)} events")
    return merge_batch(event_row(event, body) for event, body in zip(events, bodies))


class PreparedBatch(NamedTuple):
    """One ingest_events call's rows, and their INSERT values flattened in advance.

    The flattening runs on the parsing thread, while the writer is busy with the group before: when every row
    of a group is new (the usual case), the writer's own Python work is then a few tuple concatenations, and
    the writer, which must take the interpreter lock back from the event loop after every statement, is
    the thread that waits least for it."""

    rows: list[EventRow]
    events: tuple[Any, ...]
    """NEW_EVENT_COLUMNS per row, in row order."""
    feeds: tuple[Any, ...]
    """(event_id, feed, time, namespace) per feed of each row."""
    domains: tuple[Any, ...]
    """(event_id, domain, time, namespace) per domain of each row."""


def prepare_batch(events: list[dict[str, Any]], bodies: list[str] | None = None) -> PreparedBatch:
    """The batch's rows (one per id, see merge_batch) and their flattened INSERT values; BadEvent as
    event_row."""
    return _prepared(list(_batch_rows(events, bodies).values()))


def prepare_json_batch(bodies: list[str], ids: list[str] | None = None, wire: Any = None) -> PreparedBatch:
    """prepare_batch of events given as their JSON texts; `ids`, if given, are the ids the texts must hold;
    `wire`, if given, the batch as received, kept on each row with the event's place in it (EventRow.wire).
    BadEvent names the first unusable event by its place in the batch."""
    rows = []
    for index, text in enumerate(bodies):
        try:
            row = json_event_row(text, None if wire is None else (wire, index))
        except BadEvent as error:
            said = f" (id {ids[index]!r})" if ids is not None else ""
            raise BadEvent(f"event {index}{said}: {error}") from None
        if ids is not None and row.id != ids[index]:
            raise BadEvent(f"event {index}: Event.id {ids[index]!r} differs from the id in its JSON ({row.id!r})")
        rows.append(row)
    return _prepared(list(merge_batch(rows).values()))


def _prepared(rows: list[EventRow]) -> PreparedBatch:
    now = time.time()
    chain = itertools.chain.from_iterable
    return PreparedBatch(rows, tuple(chain((*row[:11], now) for row in rows)),
                         tuple(chain((r.id, feed, r.time, r.namespace) for r in rows for feed in sorted(r.feeds))),
                         tuple(chain((r.id, domain, r.time, r.namespace) for r in rows
                                     for domain in sorted(r.domains))))


def side_values(event_id: str, event_time: float, namespace: str, body: str | bytes) -> EventRow:
    """What the side tables hold for a stored event (its feeds and domains read back from its body)."""
    try:
        record = json.loads(body).get("record")
    except (ValueError, AttributeError):
        record = None
    record = record if isinstance(record, dict) else {}
    return EventRow(event_id, event_time, 0.0, 0.0, 0, "", "", namespace, "", "", "",
                    frozenset(_texts(record.get("feeds"))), frozenset(_texts(record.get("suspicious_domains"))))
