"""The store's reads of events as SQL: a filter's conditions, a page's query and its keyset page token,
and the change sequence as a watch reads it (`EventChange`, `change_filter`). Pure: statements and
parameters, run by the transactions in collector/store/events.py.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
from typing import Any, Callable

from dnswatch.names import canonical_name
from collector.store.base import BadEvent, BadPageToken, EventFilter, StoredEvent
from collector.store.eventrows import json_event_row, side_values

MAX_PAGE_SIZE = 1000
"""list_events and events_since return at most this many events per call, whatever is asked."""


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
    conditions += mark_conditions(where)
    if where.since is not None:
        conditions.append(f"{timed} >= ?")
        params.append(epoch(where.since, "since"))
    if where.until is not None:
        conditions.append(f"{timed} < ?")
        params.append(epoch(where.until, "until"))
    return conditions, params


def mark_conditions(where: EventFilter) -> list[str]:
    """The conditions on `e` that leave out excepted and dismissed events unless `where` asks for them (the
    rule of dnswatch.alerting.visibility.is_hidden, in SQL)."""
    conditions = [] if where.include_excepted else ["e.excepted_by = ''"]
    if where.dismissed_only:
        conditions.append("e.dismissed_at IS NOT NULL")
    elif not where.include_dismissed:
        conditions.append("e.dismissed_at IS NULL")
    return conditions


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
    return (f"SELECT e.seq, e.body, {time_id}, {MARK_COLUMNS} FROM {source}{where_sql} ORDER BY {order} LIMIT ?",
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

    __slots__ = ("seq", "id", "body", "time", "type", "host", "namespace", "pod", "pod_aggr", "excepted_by",
                 "dismissed", "_sides")

    def __init__(self, seq: int, id: str, body: bytes | str, time: float, type: str, host: str, namespace: str,
                 pod: str, pod_aggr: str, excepted_by: str = "", dismissed: Any = False) -> None:
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
        self.excepted_by = excepted_by
        """The alert exception that marks the event ("" for none)."""
        self.dismissed = bool(dismissed)
        """Whether the event is dismissed."""
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
            except BadEvent:  # stored before the store checked events: what side_values reads
                side = side_values("", 0.0, "", self.body)
                self._sides = (side.feeds, side.domains)
        return self._sides

    def __repr__(self) -> str:
        return f"EventChange(seq={self.seq}, body={self.body[:40]!r}...)"


CHANGE_COLUMNS = ("e.seq, e.id, {body}, e.time, e.type, e.host, e.namespace, e.pod, e.pod_aggr, e.excepted_by, "
                  "e.dismissed_at IS NOT NULL")

MARK_COLUMNS = "e.excepted_by, e.dismissed_by, e.dismissed_at"
"""A stored event's marks, read after its other columns (see stored_event)."""


def change_filter(where: EventFilter, *, marks: bool = True) -> Callable[[EventChange], bool] | None:
    """The test an EventChange passes when its event matches `where`, exactly as filter_sql's conditions
    select rows; None when `where` filters nothing (every change matches). Without `marks`, the test leaves
    the marks (excepted, dismissed) to the caller: see mark_filter."""
    tests: list[Callable[[EventChange], bool]] = []
    mark_test = mark_filter(where) if marks else None
    if mark_test is not None:
        tests.append(mark_test)
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
        since = epoch(where.since, "since")
        tests.append(lambda change: change.time >= since)
    if where.until is not None:
        until = epoch(where.until, "until")
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


def mark_filter(where: EventFilter) -> Callable[[Any], bool] | None:
    """The test of mark_conditions on a change's `excepted_by` and `dismissed`; None when every change passes."""
    hide_excepted = not where.include_excepted
    if where.dismissed_only:
        return lambda change: change.dismissed and not (hide_excepted and change.excepted_by)
    if where.include_dismissed:
        return (lambda change: not change.excepted_by) if hide_excepted else None
    if hide_excepted:
        return lambda change: not change.excepted_by and not change.dismissed
    return lambda change: not change.dismissed


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


def epoch(value: dt.datetime, what: str) -> float:
    if not isinstance(value, dt.datetime) or value.tzinfo is None:
        raise ValueError(f"filter {what} must be a timezone-aware datetime, not {value!r}")
    return value.timestamp()


def stored_event(row: Any, marks_at: int = 4) -> StoredEvent:
    """The StoredEvent of a row of (seq, body, ...) with MARK_COLUMNS from `marks_at` on."""
    return StoredEvent(seq=row[0], body=row[1], excepted_by=row[marks_at] or "", dismissed_by=row[marks_at + 1],
                       dismissed_at=row[marks_at + 2])
