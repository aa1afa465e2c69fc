"""Events in the store (SPEC §3, §6, §7): one row per event id, filters, pagination and a change sequence.

The pure part (turning an event into a row, a filter into SQL, page tokens) comes first; `EventStoreMixin`
holds the transactions and is mixed into SqlStore, so both backends share them.

Rows: `events` keeps the filter columns and the event's JSON; `event_feeds` and `event_domains` hold
record.feeds and record.suspicious_domains one value per row (indexed both ways), so a feed or domain filter
is an indexed lookup rather than a LIKE over text. Every insert or update takes the next number from the
one-row `event_sequence` table, locked first in each event write: writers commit in sequence order, so a
watcher that reads "seq > N" after a commit can never later see a smaller number appear (no gap).
"""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import json
import time
from typing import Any, Callable, Iterable, NamedTuple, TypeVar

from agent.core.names import canonical_name
from collector.store.base import BadEvent, BadPageToken, EventFilter, IngestResult, StoredEvent

T = TypeVar("T")

MAX_PAGE_SIZE = 1000
"""list_events and events_since return at most this many events per call, whatever is asked."""

# Ids per `WHERE id IN (...)` when looking up a batch: well under SQLite's and PostgreSQL's limits.
_LOOKUP_CHUNK = 500

_ROW_COLUMNS = ("id, seq, time, first_seen, last_seen, count, type, host, namespace, pod, pod_aggr, body, "
                "stored_at")


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


def event_row(event: dict[str, Any]) -> EventRow:
    """The row for one SPEC §3 event; BadEvent if it has no id or no parsable time."""
    if not isinstance(event, dict):
        raise BadEvent(f"an event must be a JSON object, not {type(event).__name__}")
    event_id = event.get("id")
    if not isinstance(event_id, str) or not event_id:
        raise BadEvent("an event has no id")
    record = event.get("record")
    record = record if isinstance(record, dict) else {}
    event_time = parse_time(event.get("time"), f"event {event_id}: time")
    first_seen = _optional_time(record.get("first_seen"), event_time, f"event {event_id}: record.first_seen")
    last_seen = _optional_time(record.get("last_seen"), first_seen, f"event {event_id}: record.last_seen")
    count = record.get("count", 1)
    if not isinstance(count, int) or isinstance(count, bool) or count < 0:
        raise BadEvent(f"event {event_id}: record.count is not a count: {count!r}")
    try:
        body = json.dumps(event, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    except (TypeError, ValueError) as error:
        raise BadEvent(f"event {event_id}: not JSON: {error}") from None
    return EventRow(event_id, event_time, first_seen, last_seen, count,
                    _text(event.get("type")), _text(event.get("host")), _text(event.get("source_namespace")),
                    _text(event.get("source_name")), _text(event.get("source_name_aggr")), body,
                    frozenset(_texts(record.get("feeds"))), frozenset(_texts(record.get("suspicious_domains"))))


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


def filter_sql(where: EventFilter, *, driver: str | None = None) -> tuple[list[str], list[Any]]:
    """The conditions (on `e`, the events table) and their parameters for a filter; empty lists match all.

    `driver` names the side table (`event_feeds` or `event_domains`, alias `x`) a list query reads from:
    its own value and the time range are then tested on `x`, whose index gives them in page order."""
    conditions: list[str] = []
    params: list[Any] = []
    timed = "x.time" if driver else "e.time"
    if where.namespace is not None:
        conditions.append("e.namespace = ?")
        params.append(where.namespace)
    if where.pod is not None:
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
    if where.since is not None:
        conditions.append(f"{timed} >= ?")
        params.append(_epoch(where.since, "since"))
    if where.until is not None:
        conditions.append(f"{timed} < ?")
        params.append(_epoch(where.until, "until"))
    return conditions, params


def list_sql(where: EventFilter, after: tuple[float, str] | None, size: int) -> tuple[str, tuple[Any, ...]]:
    """The query for one page, newest first, starting after the (time, id) `after`; it reads `size` rows.

    With a feed (or else a domain) filter the page is read from that side table's index; otherwise from
    events' (time, id) index, or an equality filter's (namespace, time, id) one."""
    sides = _side_filters(where)
    driver = sides[0][0] if sides else None
    conditions, params = filter_sql(where, driver=driver)
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
    """(table, column, value) of the filters answered by a side table, the feed first."""
    sides = []
    if where.feed is not None:
        sides.append(("event_feeds", "feed", where.feed))
    if where.domain is not None:
        sides.append(("event_domains", "domain", canonical_name(where.domain) or where.domain))
    return sides


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


def check_limit(value: int, what: str) -> int:
    """`value` capped at MAX_PAGE_SIZE; ValueError unless it is a positive int."""
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ValueError(f"{what} must be a positive integer, not {value!r}")
    return min(value, MAX_PAGE_SIZE)


def _optional_time(value: Any, default: float, what: str) -> float:
    return default if value is None else parse_time(value, what)


def _epoch(value: dt.datetime, what: str) -> float:
    if not isinstance(value, dt.datetime) or value.tzinfo is None:
        raise ValueError(f"filter {what} must be a timezone-aware datetime, not {value!r}")
    return value.timestamp()


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ""


def _texts(values: Any) -> list[str]:
    return [value for value in values if isinstance(value, str)] if isinstance(values, list) else []


def _batch_rows(events: list[dict[str, Any]]) -> dict[str, EventRow]:
    return merge_batch(event_row(event) for event in events)


def _stored(row: Any) -> StoredEvent:
    return StoredEvent(seq=row[0], event=json.loads(row[1]))


# -- the transactions, mixed into SqlStore --------------------------------------------------------------------


class EventStoreMixin:
    """The event methods of the Store protocol, over SqlStore's connection thread and dialect."""

    # Provided by SqlStore.
    _dialect: Any
    _call: Callable[..., Any]
    _exec: Callable[..., Any]
    _transaction: Callable[..., Any]

    async def ingest_events(self, events: list[dict[str, Any]]) -> IngestResult:
        # Off the event loop (≈20 µs an event, mostly the JSON), and BadEvent before anything is written.
        rows = await asyncio.to_thread(_batch_rows, events) if len(events) > 50 else _batch_rows(events)
        inserted, updated = await self._call(self._ingest_events, list(rows.values()))
        return IngestResult(inserted=inserted, updated=updated, unchanged=len(events) - inserted - updated)

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

    async def latest_event_seq(self) -> int:
        rows = await self._call(self._fetch_events, "SELECT last_seq FROM event_sequence WHERE one = 1", ())
        return int(rows[0][0])

    async def delete_events_before(self, cutoff: dt.datetime) -> int:
        return await self._call(self._delete_events_before, _epoch(cutoff, "cutoff"))

    # -- on the store's thread --------------------------------------------------------------------------

    def _fetch_events(self, conn: Any, statement: str, params: tuple[Any, ...]) -> list[Any]:
        return self._exec(conn, statement, params).fetchall()

    def _lock_sequence(self, conn: Any) -> int:
        return int(self._exec(conn, "SELECT last_seq FROM event_sequence WHERE one = 1"
                                    f"{self._dialect.for_update}", ()).fetchone()[0])

    def _ingest_events(self, conn: Any, rows: list[EventRow]) -> tuple[int, int]:
        """Insert the new ids, replace the grown ones; (inserted, updated). Idempotent, so a retry after a
        lost connection that had in fact committed finds everything unchanged."""
        if not rows:
            return 0, 0
        with self._transaction(conn):
            last_seq = self._lock_sequence(conn)
            held: dict[str, int] = {}
            for start in range(0, len(rows), _LOOKUP_CHUNK):
                chunk = [row.id for row in rows[start:start + _LOOKUP_CHUNK]]
                marks = ", ".join("?" * len(chunk))
                held.update(self._exec(conn, f"SELECT id, count FROM events WHERE id IN ({marks})",
                                       tuple(chunk)).fetchall())
            new = [row for row in rows if row.id not in held]
            grown = [row for row in rows if row.id in held and row.count > held[row.id]]
            if not new and not grown:
                return 0, 0
            now = time.time()
            seqs = iter(range(last_seq + 1, last_seq + 1 + len(new) + len(grown)))
            cursor = conn.cursor()
            sql = self._dialect.sql
            if new:
                cursor.executemany(sql(f"INSERT INTO events ({_ROW_COLUMNS}) "
                                       "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"),
                                   [(r.id, next(seqs), r.time, r.first_seen, r.last_seen, r.count, r.type, r.host,
                                     r.namespace, r.pod, r.pod_aggr, r.body, now) for r in new])
            if grown:
                cursor.executemany(sql("UPDATE events SET seq = ?, time = ?, first_seen = ?, last_seen = ?, "
                                       "count = ?, type = ?, host = ?, namespace = ?, pod = ?, pod_aggr = ?, "
                                       "body = ?, stored_at = ? WHERE id = ?"),
                                   [(next(seqs), r.time, r.first_seen, r.last_seen, r.count, r.type, r.host,
                                     r.namespace, r.pod, r.pod_aggr, r.body, now, r.id) for r in grown])
                for table in ("event_feeds", "event_domains"):
                    cursor.executemany(sql(f"DELETE FROM {table} WHERE event_id = ?"), [(r.id,) for r in grown])
            changed = new + grown
            feeds = [(r.id, feed, r.time) for r in changed for feed in sorted(r.feeds)]
            domains = [(r.id, domain, r.time) for r in changed for domain in sorted(r.domains)]
            if feeds:
                cursor.executemany(sql("INSERT INTO event_feeds (event_id, feed, time) VALUES (?, ?, ?)"), feeds)
            if domains:
                cursor.executemany(sql("INSERT INTO event_domains (event_id, domain, time) VALUES (?, ?, ?)"),
                                   domains)
            self._exec(conn, "UPDATE event_sequence SET last_seq = ? WHERE one = 1",
                       (last_seq + len(changed),))
            return len(new), len(grown)

    def _delete_events_before(self, conn: Any, cutoff: float) -> int:
        with self._transaction(conn):
            # The sequence lock keeps an ingest from moving an event's last_seen between these statements.
            self._lock_sequence(conn)
            doomed = "SELECT id FROM events WHERE last_seen < ?"
            self._exec(conn, f"DELETE FROM event_feeds WHERE event_id IN ({doomed})", (cutoff,))
            self._exec(conn, f"DELETE FROM event_domains WHERE event_id IN ({doomed})", (cutoff,))
            return int(self._exec(conn, "DELETE FROM events WHERE last_seen < ?", (cutoff,)).rowcount)
