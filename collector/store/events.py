"""Events in the store (docs/event.md): one row per event id, filters, pagination and a change sequence.

The pure part (turning an event into a row, a filter into SQL, page tokens) comes first; `EventStoreMixin`
holds the transactions and is mixed into SqlStore, so both backends share them.

Rows: `events` keeps the filter columns and the event's JSON; `event_feeds` and `event_domains` hold
record.feeds and record.suspicious_domains one value per row (indexed both ways), so a feed or domain filter
is an indexed lookup rather than a LIKE over text. Every insert or update takes the next number from the
one-row `event_sequence` table, locked first in each event write: writers commit in sequence order, so a
watcher that reads "seq > N" after a commit can never later see a smaller number appear (no gap).

Group commit: concurrent `ingest_events` calls (several agents, or one agent with several batches in flight)
are written together. Each call takes its place in line when it is made; one writer at a time takes every
batch ready at the head of the line, applies them in that order in one transaction (one commit, one fsync),
and only then answers each call with its own result. While it writes, the next batches are parsed on the
event loop, so parsing and writing overlap. A failed transaction fails every call of its group, and none of
them is acknowledged: an agent resends, and the per-id rules make that harmless.

The ingest's cost per event is what bounds it (20,000 events/s into SQLite, docs/architecture.md), so the work is split
by where it can run: agents' batches come as JSON texts (`ingest_json`), read field by field by msgspec on
the parsing thread, which also flattens each batch's INSERT values in advance; the writer thread, which is
the limit, then only runs SQLite, and a group whose ids are all new (the usual case) goes in as prepared,
without looking its ids up first (see `_insert_new_group`).
"""

from __future__ import annotations

import asyncio
import base64
import collections
import concurrent.futures
import datetime as dt
import itertools
import json
import sqlite3
import time
from typing import Any, Callable, Iterable, NamedTuple, TypeVar

import msgspec

from dnswatch.names import canonical_name
from dnswatch.eventfilter import EventFilter
from collector.store.base import BadEvent, BadPageToken, IngestResult, StoredEvent, StoreError

T = TypeVar("T")

MAX_PAGE_SIZE = 1000
"""list_events and events_since return at most this many events per call, whatever is asked."""

# Parameters per statement at most: SQLite allows 32766 since 3.32 (999 before), PostgreSQL 65535. Few
# statements per write matter more than small ones: the store's thread takes the GIL back after each
# statement, and while the event loop is busy parsing the next batches each taking back can wait up to the
# interpreter's switch interval (5 ms), so a group is written in a handful of statements whatever its size.
_MAX_PARAMETERS = 32_000 if sqlite3.sqlite_version_info >= (3, 32) else 999

# Ids per `WHERE id IN (...)` when looking up a batch.
_LOOKUP_CHUNK = _MAX_PARAMETERS

# Events per group transaction at most: the fsync a group saves is already paid for long before this, and a
# bigger group would only hold back the answers to its first batches.
_GROUP_MAX_EVENTS = 20_000

MAX_CHANGES_READ = _GROUP_MAX_EVENTS
"""event_changes returns at most this many changes per call: as many as one group commit writes."""

_ROW_COLUMNS = ("id, seq, time, first_seen, last_seen, count, type, host, namespace, pod, pod_aggr, body, "
                "stored_at")
_NEW_EVENT_COLUMNS = ("id", "time", "first_seen", "last_seen", "count", "type", "host", "namespace", "pod",
                      "pod_aggr", "body", "stored_at")


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


# -- pure ---------------------------------------------------------------------------------------------------


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


def json_event_row(text: str) -> EventRow:
    """The row for one event given as its JSON text (as agents send it), stored as it is; BadEvent if the
    text is not JSON, not an object, or not an event (see event_row)."""
    try:
        head = _HEAD.decode(text)
    except msgspec.ValidationError as error:
        raise BadEvent(_not_an_event(text, error)) from None
    except (msgspec.DecodeError, UnicodeEncodeError) as error:
        raise BadEvent(f"not JSON: {error}") from None
    record = head.record or _RecordHead()
    return _row(head.id, head.time, head.type, head.host, head.source_namespace, head.source_name,
                head.source_name_aggr, record.first_seen, record.last_seen, record.count, record.feeds,
                record.suspicious_domains, text)


def _not_an_event(text: str, error: msgspec.ValidationError) -> str:
    if str(error).endswith("- at `$`") or "- at" not in str(error):
        kinds = {"[": "list", '"': "str", "t": "bool", "f": "bool", "n": "null"}
        return f"a JSON {kinds.get(text.lstrip()[:1], 'number')}, not an object"
    return f"not an event: {error}"


def _row(event_id: Any, time_text: Any, event_type: Any, host: Any, namespace: Any, pod: Any, pod_aggr: Any,
         first_text: Any, last_text: Any, count: Any, feeds: Any, domains: Any, body: str) -> EventRow:
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
                    frozenset(_texts(feeds)), frozenset(_texts(domains)))


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


def filter_sql(where: EventFilter, *, driver: str | None = None,
               pod_column: str | None = None) -> tuple[list[str], list[Any]]:
    """The conditions (on `e`, the events table) and their parameters for a filter; empty lists match all.

    `driver` names the side table (`event_feeds` or `event_domains`, alias `x`) a list query reads from:
    its own value, the namespace and the time range are then tested on `x`, whose index gives them in page
    order. `pod_column` (`pod` or `pod_aggr`) tests the pod filter on that column alone."""
    conditions: list[str] = []
    params: list[Any] = []
    timed = "x.time" if driver else "e.time"
    if where.namespace is not None:
        # The side tables repeat the namespace (migration 3), so a feed or domain filter with a namespace reads
        # its page from their (value, namespace, time, event_id) index however rarely the two meet.
        conditions.append(f"{'x' if driver else 'e'}.namespace = ?")
        params.append(where.namespace)
    if where.pod is not None and pod_column is not None:
        conditions.append(f"e.{pod_column} = ?")
        params.append(where.pod)
    elif where.pod is not None:
        conditions.append("(e.pod = ? OR e.pod_aggr = ?)")
        params += [where.pod, where.pod]
    for table, column, value in _side_filters(where):
        if table == driver:
            conditions.append(f"x.{column} = ?")
        else:
            conditions.append(f"EXISTS (SELECT 1 FROM {table} s WHERE s.event_id = e.id AND s.{column} = ?)")
        params.append(value)
    if where.type is not None:
        conditions.append("e.type = ?")
        params.append(where.type)
    if where.host is not None:
        conditions.append("e.host = ?")
        params.append(where.host)
    if where.since is not None:
        conditions.append(f"{timed} >= ?")
        params.append(_epoch(where.since, "since"))
    if where.until is not None:
        conditions.append(f"{timed} < ?")
        params.append(_epoch(where.until, "until"))
    return conditions, params


def list_sql(where: EventFilter, after: tuple[float, str] | None, size: int) -> tuple[str, tuple[Any, ...]]:
    """The query for one page, newest first, starting after the (time, id) `after`; it reads `size` rows.

    With a pod filter the page is read from the pod's indexes: a pod has few events, however many a feed has.
    It matches the pod's name or its aggregated name, and an OR of the two would walk the whole time index for
    a rare pod, so each column's index gives a page of its own and the two are merged (UNION drops an event
    found by both). Else with a domain (or else a feed) filter the page is read from that side table's index
    (after the namespace too, when one is given); otherwise from events' (time, id) index, or an equality
    filter's (namespace, time, id) one."""
    if where.pod is None:
        return _page_sql(where, None, after, size)
    branches = [_page_sql(where, column, after, size) for column in ("pod", "pod_aggr")]
    merged = " UNION ".join(f"SELECT * FROM ({statement}) AS {alias}"
                            for (statement, _), alias in zip(branches, ("by_pod", "by_pod_aggr")))
    return (f"SELECT * FROM ({merged}) AS page ORDER BY 3 DESC, 4 DESC LIMIT ?",
            (*branches[0][1], *branches[1][1], size))


def _page_sql(where: EventFilter, pod_column: str | None, after: tuple[float, str] | None,
              size: int) -> tuple[str, tuple[Any, ...]]:
    sides = _side_filters(where) if pod_column is None else []
    driver = sides[0][0] if sides else None
    conditions, params = filter_sql(where, driver=driver, pod_column=pod_column)
    if driver:
        source, time_id = f"{driver} x JOIN events e ON e.id = x.event_id", "x.time, x.event_id"
    else:
        source, time_id = "events e", "e.time, e.id"
    if after is not None:
        conditions.append(f"({time_id}) < (?, ?)")
        params += list(after)
    where_sql = f" WHERE {' AND '.join(conditions)}" if conditions else ""
    order = " DESC, ".join(time_id.split(", ")) + " DESC"
    return (f"SELECT e.seq, e.body, {time_id} FROM {source}{where_sql} ORDER BY {order} LIMIT ?",
            (*params, size))


def _side_filters(where: EventFilter) -> list[tuple[str, str, str]]:
    """(table, column, value) of the filters answered by a side table, the domain first: a domain names few
    events and a feed many, so a page of both is found sooner by reading the domain's."""
    sides = []
    if where.domain is not None:
        sides.append(("event_domains", "domain", canonical_name(where.domain) or where.domain))
    if where.feed is not None:
        sides.append(("event_feeds", "feed", where.feed))
    return sides


class EventChange:
    """One row of the change sequence as a watch reads it: the filter's columns beside the body, so that one
    read of new rows can serve watches with any filter (`change_filter`). The feeds and domains are read from
    the body, and only when a filter asks for them: most watches never do."""

    __slots__ = ("seq", "id", "body", "time", "type", "host", "namespace", "pod", "pod_aggr", "_sides")

    def __init__(self, seq: int, id: str, body: bytes | str, time: float, type: str, host: str, namespace: str,
                 pod: str, pod_aggr: str) -> None:
        self.seq = seq
        """The row's change sequence number."""
        self.id = id
        """The event's id: a later change of the same id supersedes this one."""
        self.body = body
        """The event's JSON text as stored: UTF-8 bytes when read from the store (what the wire takes: no
        decoding and encoding again), the text itself when handed over by the ingest that wrote it."""
        self.time = time
        """The event's `time`, epoch seconds."""
        self.type = type
        """The event's `type`."""
        self.host = host
        """The node that reported it (`host`)."""
        self.namespace = namespace
        """`source_namespace`."""
        self.pod = pod
        """`source_name`."""
        self.pod_aggr = pod_aggr
        """`source_name_aggr`."""
        self._sides: tuple[frozenset[str], frozenset[str]] | None = None

    @property
    def feeds(self) -> frozenset[str]:
        """record.feeds, as the event_feeds side table holds them."""
        return self._side_values()[0]

    @property
    def domains(self) -> frozenset[str]:
        """record.suspicious_domains, as the event_domains side table holds them."""
        return self._side_values()[1]

    def _side_values(self) -> tuple[frozenset[str], frozenset[str]]:
        if self._sides is None:
            try:
                row = json_event_row(self.body)
                self._sides = (row.feeds, row.domains)
            except BadEvent:  # stored before the store checked events: what _side_values reads
                side = _side_values("", 0.0, "", self.body)
                self._sides = (side.feeds, side.domains)
        return self._sides

    def __repr__(self) -> str:
        return f"EventChange(seq={self.seq}, body={self.body[:40]!r}...)"


_CHANGE_COLUMNS = "e.seq, e.id, {body}, e.time, e.type, e.host, e.namespace, e.pod, e.pod_aggr"


def change_filter(where: EventFilter) -> Callable[[EventChange], bool] | None:
    """The test an EventChange passes when its event matches `where`, exactly as filter_sql's conditions
    select rows; None when `where` filters nothing (every change matches)."""
    tests: list[Callable[[EventChange], bool]] = []
    if where.namespace is not None:
        namespace = where.namespace
        tests.append(lambda change: change.namespace == namespace)
    if where.pod is not None:
        pod = where.pod
        tests.append(lambda change: change.pod == pod or change.pod_aggr == pod)
    if where.type is not None:
        event_type = where.type
        tests.append(lambda change: change.type == event_type)
    if where.host is not None:
        host = where.host
        tests.append(lambda change: change.host == host)
    if where.since is not None:
        since = _epoch(where.since, "since")
        tests.append(lambda change: change.time >= since)
    if where.until is not None:
        until = _epoch(where.until, "until")
        tests.append(lambda change: change.time < until)
    # The side tables' tests parse the body: they come last, after every column's.
    for table, _, value in _side_filters(where):
        if table == "event_domains":
            tests.append(lambda change, domain=value: domain in change.domains)
        else:
            tests.append(lambda change, feed=value: feed in change.feeds)
    if not tests:
        return None
    if len(tests) == 1:
        return tests[0]
    return lambda change: all(test(change) for test in tests)


def encode_page_token(event_time: float, event_id: str) -> str:
    """The opaque token for the page after the event at (time, id): url-safe, no padding."""
    raw = json.dumps([1, event_time, event_id], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_page_token(token: str) -> tuple[float, str]:
    """(time, id) from a token made by encode_page_token; BadPageToken otherwise."""
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        tag, event_time, event_id = json.loads(raw)
        if tag != 1 or not isinstance(event_time, (int, float)) or isinstance(event_time, bool) \
                or not isinstance(event_id, str):
            raise ValueError
    except (ValueError, TypeError, UnicodeDecodeError):
        raise BadPageToken(f"not a page token of this store: {token[:40]!r}") from None
    return float(event_time), event_id


def check_limit(value: int, what: str, cap: int = MAX_PAGE_SIZE) -> int:
    """`value` capped at `cap`; ValueError unless it is a positive int."""
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ValueError(f"{what} must be a positive integer, not {value!r}")
    return min(value, cap)


def _epoch(value: dt.datetime, what: str) -> float:
    if not isinstance(value, dt.datetime) or value.tzinfo is None:
        raise ValueError(f"filter {what} must be a timezone-aware datetime, not {value!r}")
    return value.timestamp()


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
    """_NEW_EVENT_COLUMNS per row, in row order."""
    feeds: tuple[Any, ...]
    """(event_id, feed, time, namespace) per feed of each row."""
    domains: tuple[Any, ...]
    """(event_id, domain, time, namespace) per domain of each row."""


def prepare_batch(events: list[dict[str, Any]], bodies: list[str] | None = None) -> PreparedBatch:
    """The batch's rows (one per id, see merge_batch) and their flattened INSERT values; BadEvent as
    event_row."""
    return _prepared(list(_batch_rows(events, bodies).values()))


def prepare_json_batch(bodies: list[str], ids: list[str] | None = None) -> PreparedBatch:
    """prepare_batch of events given as their JSON texts; `ids`, if given, are the ids the texts must hold.
    BadEvent names the first unusable event by its place in the batch."""
    rows = []
    for index, text in enumerate(bodies):
        try:
            row = json_event_row(text)
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


def _side_values(event_id: str, event_time: float, namespace: str, body: str | bytes) -> EventRow:
    """What the side tables hold for a stored event (its feeds and domains read back from its body)."""
    try:
        record = json.loads(body).get("record")
    except (ValueError, AttributeError):
        record = None
    record = record if isinstance(record, dict) else {}
    return EventRow(event_id, event_time, 0.0, 0.0, 0, "", "", namespace, "", "", "",
                    frozenset(_texts(record.get("feeds"))), frozenset(_texts(record.get("suspicious_domains"))))


def _stored(row: Any) -> StoredEvent:
    return StoredEvent(seq=row[0], body=row[1])


# -- the transactions, mixed into SqlStore --------------------------------------------------------------------


class EventStoreMixin:
    """The event methods of the Store protocol, over SqlStore's connection thread and dialect."""

    # Provided by SqlStore.
    _dialect: Any
    _call: Callable[..., Any]
    _call_reading: Callable[..., Any]
    _exec: Callable[..., Any]
    _transaction: Callable[..., Any]

    async def ingest_events(self, events: list[dict[str, Any]], *,
                            bodies: list[str] | None = None) -> IngestResult:
        return await self._ingest(len(events), prepare_batch, events, bodies)

    async def ingest_json(self, bodies: list[str], *, ids: list[str] | None = None) -> IngestResult:
        return await self._ingest(len(bodies), prepare_json_batch, bodies, ids)

    async def _ingest(self, count: int, prepare: Callable[..., PreparedBatch], *args: Any) -> IngestResult:
        line = self._ingest_line()
        waiting = _PendingWrite(asyncio.get_running_loop())
        line.pending.append(waiting)  # the place in line is the call's: batches are written in call order
        try:
            # Off the event loop, and BadEvent before anything is written. One parsing thread, so batches come
            # out parsed in the order they are in line: the head of the line is ready first, rather than all
            # at once after several threads shared the GIL.
            prepared = (await asyncio.get_running_loop().run_in_executor(line.parser, prepare, *args)
                        if count > 50 else prepare(*args))
        except BaseException:
            line.pending.remove(waiting)
            self._start_ingest_writer(line)
            raise
        waiting.rows = prepared
        self._start_ingest_writer(line)
        inserted, updated = await waiting.done
        return IngestResult(inserted=inserted, updated=updated, unchanged=count - inserted - updated)

    def _ingest_line(self) -> "_IngestLine":
        line: _IngestLine | None = self.__dict__.get("_ingest_line_state")
        if line is None:
            line = self.__dict__["_ingest_line_state"] = _IngestLine()
        return line

    def _close_ingest_line(self) -> None:
        """The store is closing: let the parsing thread go once it has nothing left to do."""
        line: _IngestLine | None = self.__dict__.get("_ingest_line_state")
        if line is not None:
            line.parser.shutdown(wait=False)

    def _start_ingest_writer(self, line: "_IngestLine") -> None:
        if line.writer is None and line.pending and line.pending[0].rows is not None:
            line.writer = asyncio.get_running_loop().create_task(self._write_ingest_groups(line),
                                                                 name="event group commit")

    async def _write_ingest_groups(self, line: "_IngestLine") -> None:
        """Write groups of the batches ready at the head of the line until the head is not ready."""
        group: list[_PendingWrite] = []
        try:
            while line.pending and line.pending[0].rows is not None:
                group, size = [], 0
                while (line.pending and line.pending[0].rows is not None
                       and (not group or size + len(line.pending[0].rows.rows) <= _GROUP_MAX_EVENTS)):
                    waiting = line.pending.popleft()
                    group.append(waiting)
                    size += len(waiting.rows.rows)  # type: ignore[union-attr]
                try:
                    written = await self._call(self._ingest_group, [waiting.rows for waiting in group])
                except Exception as error:  # noqa: BLE001 - every caller of the group gets it
                    for waiting in group:
                        waiting.fail(error)
                    continue
                results = written.results
                if written.rows:
                    self._publish_changes(written)
                for waiting, result in zip(group, results):
                    if not waiting.done.done():
                        waiting.done.set_result(result)
                group = []
        except BaseException:
            # Cancelled (the loop is ending): nobody may wait for ever on a write that will not happen.
            gone = StoreError("the store's event writer stopped before this batch was written")
            for waiting in [*group, *(w for w in line.pending if w.rows is not None)]:
                waiting.fail(gone)
            raise
        finally:
            line.writer = None

    async def list_events(self, filter: EventFilter, page_size: int,
                          page_token: str = "") -> tuple[list[StoredEvent], str]:
        size = check_limit(page_size, "page_size")
        after = decode_page_token(page_token) if page_token else None
        statement, params = list_sql(filter, after, size + 1)
        rows = await self._call(self._fetch_events, statement, params)
        token = encode_page_token(rows[size - 1][2], rows[size - 1][3]) if len(rows) > size else ""
        return [_stored(row) for row in rows[:size]], token

    async def events_since(self, seq: int, filter: EventFilter, limit: int) -> list[StoredEvent]:
        size = check_limit(limit, "limit")
        conditions, params = filter_sql(filter)
        conditions.insert(0, "e.seq > ?")
        rows = await self._call(self._fetch_events,
                                f"SELECT e.seq, e.body FROM events e WHERE {' AND '.join(conditions)} "
                                "ORDER BY e.seq LIMIT ?", (int(seq), *params, size))
        return [_stored(row) for row in rows]

    async def event_changes(self, seq: int, limit: int,
                            filter: EventFilter | None = None) -> tuple[int, list[EventChange]]:
        """(latest, changes): the latest change sequence number handed out, read first, then at most `limit`
        rows changed after `seq` (matching `filter`, if given), in sequence order. Writers commit in sequence
        order, so when fewer than `limit` come back, no matching change up to `latest` is left unread.

        `limit` is capped at MAX_CHANGES_READ, not MAX_PAGE_SIZE: one reader serving every watch reads what
        a whole group commit wrote at once, or it falls behind the ingest, one read per commit."""
        size = check_limit(limit, "limit", cap=MAX_CHANGES_READ)
        conditions, params = filter_sql(filter) if filter is not None else ([], [])
        conditions.insert(0, "e.seq > ?")
        return await self._call_reading(self._read_changes,
                                f"SELECT {_CHANGE_COLUMNS.format(body=self._dialect.utf8_of('e.body'))} "
                                f"FROM events e WHERE {' AND '.join(conditions)} "
                                "ORDER BY e.seq LIMIT ?", (int(seq), *params, size))

    async def latest_event_seq(self) -> int:
        rows = await self._call(self._fetch_events, "SELECT last_seq FROM event_sequence WHERE one = 1", ())
        return int(rows[0][0])

    async def delete_events_before(self, cutoff: dt.datetime) -> int:
        return await self._call(self._delete_events_before, _epoch(cutoff, "cutoff"))

    # -- on the store's thread --------------------------------------------------------------------------

    def _fetch_events(self, conn: Any, statement: str, params: tuple[Any, ...]) -> list[Any]:
        return self._exec(conn, statement, params).fetchall()

    def _read_changes(self, conn: Any, statement: str, params: tuple[Any, ...]) -> tuple[int, list[EventChange]]:
        # Two statements, each its own snapshot: the number first, so the rows read after it hold every change
        # it counts.
        latest = int(self._exec(conn, "SELECT last_seq FROM event_sequence WHERE one = 1", ()).fetchone()[0])
        return latest, [EventChange(*row) for row in self._exec(conn, statement, params).fetchall()]

    def _lock_sequence(self, conn: Any) -> int:
        return int(self._exec(conn, "SELECT last_seq FROM event_sequence WHERE one = 1"
                                    f"{self._dialect.for_update}", ()).fetchone()[0])

    def add_change_listener(self, listener: Callable[[int, list[EventRow]], None]) -> None:
        """Call `listener(first_seq, rows)` on the event loop after each group commit of this store, with
        every row it wrote, numbered first_seq, first_seq + 1, ... in order: the event watches of the process
        take new rows from here rather than reading them back (other writers' rows they still read)."""
        self.__dict__.setdefault("_change_listeners", []).append(listener)

    def remove_change_listener(self, listener: Callable[[int, list[EventRow]], None]) -> None:
        listeners = self.__dict__.get("_change_listeners", [])
        if listener in listeners:
            listeners.remove(listener)

    def _publish_changes(self, written: "_GroupWritten") -> None:
        for listener in list(self.__dict__.get("_change_listeners", ())):
            listener(written.first_seq, written.rows)

    def _ingest_group(self, conn: Any, batches: list[PreparedBatch]) -> "_GroupWritten":
        """Apply the batches in order in one transaction: insert the new ids, replace the grown ones; each
        batch's (inserted, updated), as if each had been written alone, and the rows written in sequence
        order. Only the last change of an id is written (with one sequence number): a watcher reads rows,
        and the row ends as the last change left it. Idempotent, so a retry after a lost connection that had
        in fact committed finds everything unchanged."""
        results = self._write_group(conn, batches)
        written = self.__dict__.pop("_group_rows", None)
        if written is None:
            return _GroupWritten(results, 0, [])
        return _GroupWritten(results, *written)

    def _written(self, first_seq: int, rows: list[EventRow]) -> None:
        """Note the rows a group numbered from first_seq, for _ingest_group (on the store's thread)."""
        self.__dict__["_group_rows"] = (first_seq, rows)

    def _write_group(self, conn: Any, batches: list[PreparedBatch]) -> list[tuple[int, int]]:
        self.__dict__.pop("_group_rows", None)
        if not any(batch.rows for batch in batches):
            return [(0, 0)] * len(batches)
        with self._transaction(conn):
            last_seq = self._lock_sequence(conn)
            every_id = [row.id for batch in batches for row in batch.rows]
            ids = list(dict.fromkeys(every_id))
            if len(ids) == len(every_id) and self._dialect.backend == "sqlite":
                done = self._insert_new_group(conn, last_seq, batches)
                if done is not None:
                    return done
            stored: dict[str, int] = {}
            for start in range(0, len(ids), _LOOKUP_CHUNK):
                chunk = ids[start:start + _LOOKUP_CHUNK]
                marks = ", ".join("?" * len(chunk))
                stored.update(self._exec(conn, f"SELECT id, count FROM events WHERE id IN ({marks})",
                                         tuple(chunk)).fetchall())
            held = dict(stored)
            changed: dict[str, EventRow] = {}
            results = []
            for rows in (batch.rows for batch in batches):
                inserted = updated = 0
                for row in rows:
                    count = held.get(row.id)
                    if count is None:
                        inserted += 1
                    elif row.count > count:
                        updated += 1
                    else:
                        continue
                    held[row.id] = row.count
                    changed[row.id] = row
                results.append((inserted, updated))
            new = [row for row in changed.values() if row.id not in stored]
            grown = [row for row in changed.values() if row.id in stored]
            if not new and not grown:
                return results
            now = time.time()
            seqs = iter(range(last_seq + 1, last_seq + 1 + len(new) + len(grown)))
            cursor = conn.cursor()
            sql = self._dialect.sql
            # Side rows: a new event's, and a grown event's only when they differ from what is stored (its time
            # or namespace moved; its feeds and names are in its id, so they stay) - then the old ones go first,
            # deleted by their full key, which both layouts index (migration 5 has no event_id index on SQLite).
            sided = new + self._side_rows_moved(conn, grown)
            if new:
                self._insert_many(conn, f"events ({_ROW_COLUMNS})", 13,
                                  [(r.id, next(seqs), r.time, r.first_seen, r.last_seen, r.count, r.type, r.host,
                                    r.namespace, r.pod, r.pod_aggr, r.body, now) for r in new])
            if grown:
                cursor.executemany(sql("UPDATE events SET seq = ?, time = ?, first_seen = ?, last_seen = ?, "
                                       "count = ?, type = ?, host = ?, namespace = ?, pod = ?, pod_aggr = ?, "
                                       "body = ?, stored_at = ? WHERE id = ?"),
                                   [(next(seqs), r.time, r.first_seen, r.last_seen, r.count, r.type, r.host,
                                     r.namespace, r.pod, r.pod_aggr, r.body, now, r.id) for r in grown])
            feeds = [(r.id, feed, r.time, r.namespace) for r in sided for feed in sorted(r.feeds)]
            domains = [(r.id, domain, r.time, r.namespace) for r in sided for domain in sorted(r.domains)]
            if feeds:
                self._insert_many(conn, "event_feeds (event_id, feed, time, namespace)", 4, feeds)
            if domains:
                self._insert_many(conn, "event_domains (event_id, domain, time, namespace)", 4, domains)
            self._exec(conn, "UPDATE event_sequence SET last_seq = ? WHERE one = 1",
                       (last_seq + len(new) + len(grown),))
            self._written(last_seq + 1, new + grown)  # numbered in that order above
            return results

    def _insert_new_group(self, conn: Any, last_seq: int,
                          batches: list[PreparedBatch]) -> list[tuple[int, int]] | None:
        """The common case, a group whose ids are all new (and each once): its prepared values go in as they
        are, with no lookup first: the insert's own unique check on the id finds a stored one, and then
        everything done here is undone and None returned (the caller takes the general way). SQLite only:
        PostgreSQL would need each VALUES column cast to its type.

        The rows are numbered by SQLite: while the highest stored seq is the last one handed out (retention
        may have deleted that row), a new row's rowid is the highest + 1, in VALUES order; otherwise
        row_number() hands out last_seq + 1... (which row gets which number does not matter: the whole
        group commits at once)."""
        width = len(_NEW_EVENT_COLUMNS)
        values = tuple(itertools.chain.from_iterable(batch.events for batch in batches))
        count = len(values) // width
        by_rowid = (self._seq_is_rowid(conn)
                    and self._exec(conn, "SELECT MAX(seq) FROM events", ()).fetchone()[0] == (last_seq or None))
        per_statement = (_MAX_PARAMETERS - 1) // width
        columns = ", ".join(_NEW_EVENT_COLUMNS)
        self._exec(conn, "SAVEPOINT new_events", ())
        for start in range(0, count, per_statement):
            rows = min(per_statement, count - start)
            marks = ", ".join(["(" + ", ".join("?" * width) + ")"] * rows)
            chunk = values[start * width:(start + rows) * width]
            if by_rowid:
                done = self._exec(conn, f"INSERT INTO events ({columns}) VALUES {marks} ON CONFLICT (id) DO NOTHING",
                                  chunk)
            else:
                done = self._exec(conn, f"INSERT INTO events (seq, {columns}) SELECT ? + row_number() OVER (), * "
                                        f"FROM (VALUES {marks}) WHERE true ON CONFLICT (id) DO NOTHING",
                                  (last_seq + start, *chunk))
            if done.rowcount != rows:  # an id is stored already
                self._exec(conn, "ROLLBACK TO new_events", ())
                self._exec(conn, "RELEASE new_events", ())
                return None
        self._exec(conn, "RELEASE new_events", ())
        for table, column in (("event_feeds", "feed"), ("event_domains", "domain")):
            side = tuple(itertools.chain.from_iterable(getattr(batch, column + "s") for batch in batches))
            if side:
                self._insert_flat(conn, f"{table} (event_id, {column}, time, namespace)", 4, side)
        self._exec(conn, "UPDATE event_sequence SET last_seq = ? WHERE one = 1", (last_seq + count,))
        self._written(last_seq + 1, [row for batch in batches for row in batch.rows])  # in VALUES order
        return [(len(batch.rows), 0) for batch in batches]

    def _seq_is_rowid(self, conn: Any) -> bool:
        """Whether events.seq is the rowid (SQLite from migration 5 on); asked once, the schema being migrated
        when the store opens."""
        known = self.__dict__.get("_seq_is_rowid_state")
        if known is None:
            known = self.__dict__["_seq_is_rowid_state"] = any(
                name == "seq" and primary for _, name, _, _, _, primary in
                self._exec(conn, "PRAGMA table_info(events)", ()).fetchall())
        return known

    def _side_rows_moved(self, conn: Any, grown: list[EventRow]) -> list[EventRow]:
        """The grown rows whose side rows (value, time, namespace) differ from the stored ones; those stored
        side rows are deleted here, before the events are updated."""
        before: dict[str, EventRow] = {}
        for start in range(0, len(grown), _LOOKUP_CHUNK):
            chunk = [r.id for r in grown[start:start + _LOOKUP_CHUNK]]
            marks = ", ".join("?" * len(chunk))
            for event_id, event_time, namespace, body in self._exec(
                    conn, f"SELECT id, time, namespace, body FROM events WHERE id IN ({marks})",
                    tuple(chunk)).fetchall():
                before[event_id] = _side_values(event_id, event_time, namespace, body)
        moved: list[EventRow] = []
        doomed: dict[str, list[tuple[str, float, str]]] = {"feed": [], "domain": []}
        for row in grown:
            old = before.get(row.id)
            if old is not None and (old.time, old.namespace, old.feeds, old.domains) == (
                    row.time, row.namespace, row.feeds, row.domains):
                continue
            moved.append(row)
            if old is not None:
                doomed["feed"] += [(feed, old.time, old.id) for feed in old.feeds]
                doomed["domain"] += [(domain, old.time, old.id) for domain in old.domains]
        for column, keys in doomed.items():
            if keys:
                conn.cursor().executemany(self._dialect.sql(
                    f"DELETE FROM event_{column}s WHERE {column} = ? AND time = ? AND event_id = ?"), keys)
        return moved

    def _insert_many(self, conn: Any, into: str, width: int, rows: list[tuple[Any, ...]]) -> None:
        """INSERT the rows with one multi-row statement per chunk rather than one execution per row: the engine
        then does a chunk in one step, and Python's sqlite3 lets go of the GIL once per chunk instead of once
        per row (with a busy event loop in the other thread, each taking back of the GIL can wait up to the
        interpreter's switch interval: per row, that was most of the ingest's time)."""
        self._insert_flat(conn, into, width, tuple(itertools.chain.from_iterable(rows)))

    def _insert_flat(self, conn: Any, into: str, width: int, values: tuple[Any, ...]) -> None:
        """_insert_many of rows already flattened: `width` values per row, one after the other."""
        per_statement = max(1, _MAX_PARAMETERS // width) * width
        group = "(" + ", ".join("?" * width) + ")"
        for start in range(0, len(values), per_statement):
            chunk = values[start:start + per_statement]
            self._exec(conn, f"INSERT INTO {into} VALUES {', '.join([group] * (len(chunk) // width))}", chunk)

    def _delete_events_before(self, conn: Any, cutoff: float) -> int:
        with self._transaction(conn):
            # The sequence lock keeps an ingest from moving an event's last_seen between these statements.
            self._lock_sequence(conn)
            doomed = "SELECT id FROM events WHERE last_seen < ?"
            self._exec(conn, f"DELETE FROM event_feeds WHERE event_id IN ({doomed})", (cutoff,))
            self._exec(conn, f"DELETE FROM event_domains WHERE event_id IN ({doomed})", (cutoff,))
            return int(self._exec(conn, "DELETE FROM events WHERE last_seen < ?", (cutoff,)).rowcount)


class _GroupWritten(NamedTuple):
    """What one group commit did: each batch's (inserted, updated), and the rows it numbered from first_seq
    on, one after the other."""

    results: list[tuple[int, int]]
    first_seq: int
    rows: list[EventRow]


class _PendingWrite:
    """One ingest_events call in line: its rows once parsed, and the answer its group's writer gives."""

    __slots__ = ("rows", "done")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.rows: PreparedBatch | None = None
        self.done: asyncio.Future[tuple[int, int]] = loop.create_future()

    def fail(self, error: BaseException) -> None:
        if not self.done.done():
            self.done.set_exception(error)
            # A caller cancelled meanwhile never reads it; don't let asyncio log it as unretrieved.
            self.done.exception()


class _IngestLine:
    """The ingest_events calls of one store, in call order, the thread parsing their batches, and the task
    writing them (if one runs)."""

    __slots__ = ("pending", "writer", "parser")

    def __init__(self) -> None:
        self.pending: collections.deque[_PendingWrite] = collections.deque()
        self.writer: asyncio.Task[None] | None = None
        self.parser = concurrent.futures.ThreadPoolExecutor(max_workers=1,
                                                            thread_name_prefix="dnswatch-store-parse")
