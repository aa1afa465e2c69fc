"""Events in the store (docs/event.md): one row per event id, filters, pagination and a change sequence.

`EventStoreMixin` holds the transactions and is mixed into SqlStore, so both backends share them; the rows
it writes are collector/store/eventrows.py's, the queries it runs collector/store/eventqueries.py's, and its
writes come in groups from collector/store/groupcommit.py.

Every insert or update takes the next number from the one-row `event_sequence` table, locked first in each
event write: writers commit in sequence order, so a watcher that reads "seq > N" after a commit can never
later see a smaller number appear (no gap).

The ingest's cost per event is what bounds it (20,000 events/s into SQLite, docs/architecture.md), so the work is split
by where it can run: agents' batches come as JSON texts (`ingest_json`), read field by field by msgspec on
the parsing thread, which also flattens each batch's INSERT values in advance; the writer thread, which is
the limit, then only runs SQLite, and a group whose ids are all new (the usual case) goes in as prepared,
without looking its ids up first (see `_insert_new_group`).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import itertools
import sqlite3
import time
from typing import Any, Callable

from collector.store.base import StoredEvent
from collector.store.base import MarkResult
from collector.store.eventqueries import (CHANGE_COLUMNS, MARK_COLUMNS, EventChange, check_limit,
                                          decode_page_token, encode_page_token, epoch, filter_sql, list_sql,
                                          stored_event)
from collector.store.eventrows import (NEW_EVENT_COLUMNS, EventMarker, EventRow, PreparedBatch, marked,
                                       side_values)
from collector.store.groupcommit import GROUP_MAX_EVENTS, GroupCommitMixin, GroupWritten
from dnswatch.eventfilter import EventFilter

# Parameters per statement at most: SQLite allows 32766 since 3.32 (999 before), PostgreSQL 65535. Few
# statements per write matter more than small ones: the store's thread takes the GIL back after each
# statement, and while the event loop is busy parsing the next batches each taking back can wait up to the
# interpreter's switch interval (5 ms), so a group is written in a handful of statements whatever its size.
_MAX_PARAMETERS = 32_000 if sqlite3.sqlite_version_info >= (3, 32) else 999

# Ids per `WHERE id IN (...)` when looking up a batch.
_LOOKUP_CHUNK = _MAX_PARAMETERS

MAX_CHANGES_READ = GROUP_MAX_EVENTS
"""event_changes returns at most this many changes per call: as many as one group commit writes."""

_ROW_COLUMNS = ("id, seq, time, first_seen, last_seen, count, type, host, namespace, pod, pod_aggr, body, "
                "stored_at, excepted_by")


# -- the transactions, mixed into SqlStore --------------------------------------------------------------------


class EventStoreMixin(GroupCommitMixin):
    """The event methods of the Store protocol, over SqlStore's connection thread and dialect."""

    # Provided by SqlStore.
    _dialect: Any
    _call: Callable[..., Any]
    _call_reading: Callable[..., Any]
    _exec: Callable[..., Any]
    _transaction: Callable[..., Any]

    async def list_events(self, filter: EventFilter, page_size: int,
                          page_token: str = "") -> tuple[list[StoredEvent], str]:
        size = check_limit(page_size, "page_size")
        after = decode_page_token(page_token) if page_token else None
        statement, params = list_sql(filter, after, size + 1)
        rows = await self._call(self._fetch_events, statement, params)
        token = encode_page_token(rows[size - 1][2], rows[size - 1][3]) if len(rows) > size else ""
        return [stored_event(row) for row in rows[:size]], token

    async def get_event(self, event_id: str) -> StoredEvent | None:
        rows = await self._call(self._fetch_events, f"SELECT e.seq, e.body, {MARK_COLUMNS} FROM events e "
                                "WHERE e.id = ?", (event_id,))
        return stored_event(rows[0], marks_at=2) if rows else None

    async def events_since(self, seq: int, filter: EventFilter, limit: int) -> list[StoredEvent]:
        size = check_limit(limit, "limit")
        conditions, params = filter_sql(filter)
        conditions.insert(0, "e.seq > ?")
        rows = await self._call(self._fetch_events,
                                f"SELECT e.seq, e.body, {MARK_COLUMNS} FROM events e WHERE {' AND '.join(conditions)} "
                                "ORDER BY e.seq LIMIT ?", (int(seq), *params, size))
        return [stored_event(row, marks_at=2) for row in rows]

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
                                f"SELECT {CHANGE_COLUMNS.format(body=self._dialect.utf8_of('e.body'))} "
                                f"FROM events e WHERE {' AND '.join(conditions)} "
                                "ORDER BY e.seq LIMIT ?", (int(seq), *params, size))

    async def latest_event_seq(self) -> int:
        rows = await self._call(self._fetch_events, "SELECT last_seq FROM event_sequence WHERE one = 1", ())
        return int(rows[0][0])

    async def delete_events_before(self, cutoff: dt.datetime) -> int:
        return await self._call(self._delete_events_before, epoch(cutoff, "cutoff"))

    # -- marks: alert exceptions and dismissal (docs/alert-operations.md) -----------------------------------

    async def dismiss_events(self, ids: list[str], by: str, at: dt.datetime) -> MarkResult:
        result = await self._call(self._set_dismissal, list(dict.fromkeys(ids)), (by, epoch(at, "at")))
        self._publish_marks({event_id: (None, True) for event_id in result.changed})
        return result

    async def undismiss_events(self, ids: list[str]) -> MarkResult:
        result = await self._call(self._set_dismissal, list(dict.fromkeys(ids)), None)
        self._publish_marks({event_id: (None, False) for event_id in result.changed})
        return result

    async def excepted_counts(self) -> dict[str, int]:
        """How many stored events each alert exception marks."""
        rows = await self._call(self._fetch_events, "SELECT excepted_by, COUNT(*) FROM events "
                                "WHERE excepted_by <> '' GROUP BY excepted_by", ())
        return {name: int(count) for name, count in rows}

    async def remark_events(self, marker: EventMarker | None, page_size: int = 5000, after_seq: int = 0) -> int:
        """Every stored event's `excepted_by` set again by `marker`, in pages of `page_size` in sequence order:
        each page (after `after_seq`) read, its bodies judged on a worker thread (not the event loop, nor the store's thread,
        which goes on writing meanwhile) and only the marks that changed written. A change of seq is not
        made: a re-mark is not a new emission, and watches do not send events again for it.

        With no marker only the marked events are visited (their partial index). A page's write checks each
        event's seq, so an event that grew meanwhile keeps the mark its ingest gave it."""
        if marker is None:
            cleared = 0
            while True:  # a page a transaction, so that the ingest's writes come in between
                ids = await self._call(self._clear_marks, page_size)
                self._publish_marks({event_id: ("", None) for event_id in ids})
                cleared += len(ids)
                if len(ids) < page_size:
                    return cleared
        changed, after = 0, after_seq
        while True:
            rows = await self._call(self._fetch_events,
                                    "SELECT seq, id, body, excepted_by FROM events WHERE seq > ? "
                                    "ORDER BY seq LIMIT ?", (after, page_size))
            if not rows:
                return changed
            after = rows[-1][0]
            updates = await asyncio.to_thread(_changed_marks, rows, marker)
            if updates:
                changed += await self._call(self._write_marks, updates)
            self._publish_marks({event_id: (mark, None) for mark, _, event_id in updates})
            if len(rows) < page_size:
                return changed

    def add_mark_listener(self, listener: Callable[[dict[str, tuple[str | None, bool | None]]], None]) -> None:
        """Call `listener({id: (excepted_by or None, dismissed or None)})` on the event loop after marks change
        (None: that mark unchanged): the event watches' held rows follow the store's."""
        self.__dict__.setdefault("_mark_listeners", []).append(listener)

    def remove_mark_listener(self, listener: Callable[..., None]) -> None:
        listeners = self.__dict__.get("_mark_listeners", [])
        if listener in listeners:
            listeners.remove(listener)

    def _publish_marks(self, marks: dict[str, Any]) -> None:
        if not marks:
            return
        for listener in list(self.__dict__.get("_mark_listeners", ())):
            listener(marks)

    # -- on the store's thread --------------------------------------------------------------------------

    def _set_dismissal(self, conn: Any, ids: list[str], dismissal: tuple[str, float] | None) -> MarkResult:
        known: set[str] = set()
        changed: list[str] = []
        with self._transaction(conn):
            for start in range(0, len(ids), _LOOKUP_CHUNK):
                chunk = ids[start:start + _LOOKUP_CHUNK]
                marks = ", ".join("?" * len(chunk))
                for event_id, dismissed_at in self._exec(
                        conn, f"SELECT id, dismissed_at FROM events WHERE id IN ({marks})", tuple(chunk)).fetchall():
                    known.add(event_id)
                    if (dismissed_at is None) == (dismissal is not None):
                        changed.append(event_id)
            if changed:
                by, at = dismissal if dismissal is not None else (None, None)
                conn.cursor().executemany(self._dialect.sql(
                    "UPDATE events SET dismissed_by = ?, dismissed_at = ? WHERE id = ?"),
                    [(by, at, event_id) for event_id in changed])
        return MarkResult(changed=changed, unknown=[event_id for event_id in ids if event_id not in known])

    def _clear_marks(self, conn: Any, limit: int) -> list[str]:
        with self._transaction(conn):
            ids = [event_id for (event_id,) in self._exec(
                conn, "SELECT id FROM events WHERE excepted_by <> '' LIMIT ?", (limit,)).fetchall()]
            if ids:
                conn.cursor().executemany(self._dialect.sql("UPDATE events SET excepted_by = '' WHERE id = ?"),
                                          [(event_id,) for event_id in ids])
            return ids

    def _write_marks(self, conn: Any, updates: list[tuple[str, int, str]]) -> int:
        with self._transaction(conn):
            cursor = conn.cursor()
            cursor.executemany(self._dialect.sql("UPDATE events SET excepted_by = ? WHERE seq = ? AND id = ?"),
                               updates)
            return len(updates)

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

    def _ingest_group(self, conn: Any, batches: list[PreparedBatch]) -> "GroupWritten":
        """Apply the batches in order in one transaction: insert the new ids, replace the grown ones; each
        batch's (inserted, updated), as if each had been written alone, and the rows written in sequence
        order. Only the last change of an id is written (with one sequence number): a watcher reads rows,
        and the row ends as the last change left it. Idempotent, so a retry after a lost connection that had
        in fact committed finds everything unchanged."""
        results = self._write_group(conn, batches)
        written = self.__dict__.pop("_group_rows", None)
        if written is None:
            return GroupWritten(results, 0, [])
        return GroupWritten(results, *written)

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
            dismissed: set[str] = set()
            for start in range(0, len(ids), _LOOKUP_CHUNK):
                chunk = ids[start:start + _LOOKUP_CHUNK]
                marks = ", ".join("?" * len(chunk))
                for event_id, count, was_dismissed in self._exec(
                        conn, f"SELECT id, count, dismissed_at IS NOT NULL FROM events WHERE id IN ({marks})",
                        tuple(chunk)).fetchall():
                    stored[event_id] = count
                    if was_dismissed:
                        dismissed.add(event_id)
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
            # A grown event stays dismissed (the UPDATE leaves the dismissal alone): its row says so to the
            # change listeners, whose watches leave dismissed events out.
            grown = [row._replace(dismissed=True) if row.id in dismissed else row
                     for row in changed.values() if row.id in stored]
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
                self._insert_many(conn, f"events ({_ROW_COLUMNS})", 14,
                                  [(r.id, next(seqs), r.time, r.first_seen, r.last_seen, r.count, r.type, r.host,
                                    r.namespace, r.pod, r.pod_aggr, r.body, now, r.excepted_by) for r in new])
            if grown:
                cursor.executemany(sql("UPDATE events SET seq = ?, time = ?, first_seen = ?, last_seen = ?, "
                                       "count = ?, type = ?, host = ?, namespace = ?, pod = ?, pod_aggr = ?, "
                                       "body = ?, stored_at = ?, excepted_by = ? WHERE id = ?"),
                                   [(next(seqs), r.time, r.first_seen, r.last_seen, r.count, r.type, r.host,
                                     r.namespace, r.pod, r.pod_aggr, r.body, now, r.excepted_by, r.id)
                                    for r in grown])
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
        width = len(NEW_EVENT_COLUMNS)
        values = tuple(itertools.chain.from_iterable(batch.events for batch in batches))
        count = len(values) // width
        by_rowid = (self._seq_is_rowid(conn)
                    and self._exec(conn, "SELECT MAX(seq) FROM events", ()).fetchone()[0] == (last_seq or None))
        per_statement = (_MAX_PARAMETERS - 1) // width
        columns = ", ".join(NEW_EVENT_COLUMNS)
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
                before[event_id] = side_values(event_id, event_time, namespace, body)
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


def _changed_marks(rows: list[Any], marker: EventMarker) -> list[tuple[str, int, str]]:
    """(new mark, seq, id) of the rows (seq, id, body, mark) whose mark `marker` changes."""
    current = [EventRow(event_id, 0.0, 0.0, 0.0, 0, "", "", "", "", "", body, frozenset(), frozenset(),
                        None, mark or "") for _, event_id, body, mark in rows]
    return [(row.excepted_by, seq, event_id) for (seq, event_id, _, mark), row in zip(rows, marked(current, marker))
            if row.excepted_by != (mark or "")]
