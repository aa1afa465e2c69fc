"""The newest rows of the event store's change sequence, held once for every event watch of the process.

Each watch reading the store itself cost two queries per ring of the bell (the latest number, then its
rows): with a hundred watches, two hundred queries per ingest commit, queued on the store's one thread in
front of the next commit. The tail is the one reader instead. The rows this process's ingest commits are
handed over by the store, numbered (`add_change_listener`), and held as they are, with no read back; after
each ring, or each `poll_seconds` for other replicas' writes, it reads what else was stored since (on the
store's reading connection, beside the writes). Watches are woken at most every `read_interval_seconds`
(more of them, less often: each wake-up costs each a response), and what they are given ends where they were woken (`shown`), not at the newest row: the watches of one
wake-up then all take the same page, made once, however many rows arrive while they take it.

It keeps the newest `window_events` rows, and older ones while an attached watch still needs them (within
`max_held_bytes`), each with its wire encoding made once, when first asked for. A watch whose resume point is
held takes its pages from here: unfiltered watches at the same place share one response, and a filter on the
namespace, pod, host or type reads only its rows through a column index; its test (`change_filter`) is the
SQL filter's. A watch further behind reads its own pages from the store, filtered there, until it is held.

The guarantee a watch gives rests on what is held: every row changed after `floor` and up to `head` is
held, in sequence order, and no change numbered at or below `head` can still appear (a read takes the number
before the rows, writers commit in number order, and a commit is handed over whole). So a watch that has
considered every held row up to `head` may move its resume point to `head`.

    tail = EventTail(store, bell, encode, frame)
    async with tail.attached() as place:         # the reader runs while a watch is attached
        place.cursor = cursor                    # what it still needs is kept for it
        if tail.holds(cursor):
            response, count, cursor = tail.page(cursor, where, limit=500, max_bytes=1 << 20, compress=True)
        await tail.wait(cursor)                  # until the next read, if nothing after cursor is held
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import logging
import operator
import time
from collections.abc import AsyncIterator, Callable, Iterable
from dataclasses import dataclass
from typing import Any

from collector.shell.eventbell import EventBell
from collector.store import StoreError
from collector.store.eventqueries import EventChange, change_filter
from collector.store.eventrows import EventRow
from collector.store.events import MAX_CHANGES_READ
from dnswatch.eventfilter import EventFilter

__all__ = ["EventTail", "Place", "TailSettings"]

log = logging.getLogger(__name__)

Row = EventChange | EventRow
"""A held change: read back from the store (EventChange), or as this process's ingest wrote it (EventRow).
Both are read by attribute only: id, body, time, type, host, namespace, pod, pod_aggr, feeds, domains."""


@dataclass(frozen=True)
class TailSettings:
    """How much the tail keeps and how often it reads."""

    window_events: int = 20_000
    """Rows always kept in memory (each about twice its JSON: the text and its encoding): 20,000 events of
    1 kB are about 50 MB, a second of ingest at full speed."""
    max_held_bytes: int = 64 << 20
    """Older rows are kept too while an attached watch still needs them, up to this much JSON in all; a watch
    behind what is held reads the store itself."""
    poll_seconds: float = 1.0
    """The longest wait between two reads when the bell stays silent: other replicas writing to the same
    PostgreSQL database ring no bell here, and their writes are seen within this."""
    read_interval_seconds: float = 0.1
    """The shortest time from one read to the next when the bell rings again at once: what an event may wait
    at most beyond its commit, against a response per watch per ingest commit (a hundred watches sending
    after each of the 30-50 commits a second of a busy ingest cost it a fifth of its rate here)."""
    watches_per_interval: int = 25
    """More watches attached than this space the reads out further, read_interval_seconds more for each
    such number begun: each wake-up costs every watch a response (about 40 µs of the event loop's time
    here), so a hundred watches are woken a quarter as often as 25, in pages four times as large."""
    max_read_interval_seconds: float = 0.5
    """However many watches are attached, they are woken at least this often while rows arrive."""
    read_batch: int = MAX_CHANGES_READ
    """Rows read per query at most: what one group commit writes, so that one read per commit keeps up."""


class Place:
    """Where one attached watch is: `cursor`, its resume point, which it keeps up to date."""

    __slots__ = ("cursor",)

    def __init__(self) -> None:
        self.cursor = 1 << 62  # not yet known: needs nothing


class EventTail:
    """The shared reader and what it holds. Only the event loop that runs the watches may call it."""

    def __init__(self, store: Any, bell: EventBell, encode: Callable[[EventChange], bytes],
                 frame: Callable[[int, list[bytes], bool], bytes], settings: TailSettings = TailSettings()) -> None:
        """`encode` makes a change's wire encoding, once; `frame(resume, encodings, compress)` a response of
        several, compressed or not."""
        self._store = store
        self._bell = bell
        self._encode = encode
        self._frame = frame
        self._settings = settings
        self._pages: dict[tuple[int, EventFilter, int, int, bool], tuple[bytes, int, int]] = {}
        self._changes: list[Row] = []
        self._encoded: list[bytes | None] = []  # None: not encoded yet; b"": superseded
        self._seqs: list[int] = []
        self._held: dict[str, int] = {}  # event id -> the seq of its change held
        self._floor: int | None = None  # None: nothing read since the reader (re)started
        self._head = 0
        self._shown = 0  # `head` when the watches were last woken: what they are given ends there
        self._failure: StoreError | None = None
        self._attached = 0
        self._places: set[Place] = set()
        self._bytes = 0  # the JSON held, for max_held_bytes
        self._reader: asyncio.Task[None] | None = None
        self._read_done: asyncio.Future[None] | None = None  # resolved after each read
        self._signalled_at = 0.0
        self._signal_timer: asyncio.TimerHandle | None = None
        self._plans: dict[EventFilter, tuple[Callable[[EventChange], bool] | None, tuple[str, ...]]] = {}
        self._indexes: dict[str, dict[str, list[int]]] = {}  # column -> value -> seqs held with it

    @property
    def head(self) -> int:
        """Every change numbered up to this has been read (and those after `floor` are held)."""
        return self._head

    @property
    def shown(self) -> int:
        """Where what the watches are given ends: `head` when they were last woken."""
        return self._shown

    @property
    def read_interval(self) -> float:
        """The shortest time between two wake-ups now: longer with more watches attached."""
        settings = self._settings
        steps = max(1, -(-self._attached // max(1, settings.watches_per_interval)))
        return max(settings.read_interval_seconds,
                   min(settings.read_interval_seconds * steps, settings.max_read_interval_seconds))

    @property
    def failure(self) -> StoreError | None:
        """Why the last read failed, until a read succeeds again."""
        return self._failure

    @property
    def closed(self) -> bool:
        """The bell is closed: the collector is stopping."""
        return self._bell.closed

    @contextlib.asynccontextmanager
    async def attached(self) -> AsyncIterator[Place]:
        """One watch attached for the duration; the reader runs while at least one is. The watch keeps its
        resume point in the Place it is given, so that what it still needs is kept for it."""
        place = Place()
        self._places.add(place)
        self._attached += 1
        if self._reader is None:
            self._reader = asyncio.get_running_loop().create_task(self._read(), name="event tail")
            if hasattr(self._store, "add_change_listener"):
                self._store.add_change_listener(self._published)
        try:
            yield place
        finally:
            self._places.discard(place)
            self._attached -= 1
            if self._attached == 0 and self._reader is not None:
                self._reader.cancel()
                self._reader = None
                if hasattr(self._store, "remove_change_listener"):
                    self._store.remove_change_listener(self._published)
                # Nothing keeps what is held up to date now: the next reader starts afresh.
                self._changes, self._encoded, self._seqs, self._floor = [], [], [], None
                self._held, self._pages, self._indexes, self._bytes = {}, {}, {}, 0
                self._signal()

    def holds(self, cursor: int) -> bool:
        """Whether every change after `cursor` up to `head` (and so up to `shown`) is held here."""
        return self._floor is not None and cursor >= self._floor

    def after(self, cursor: int, where: EventFilter, *, limit: int, max_bytes: int,
              with_seqs: bool = False) -> tuple[list[bytes], list[int], int]:
        """The encodings of the held changes after `cursor` that match `where`, oldest first: at most `limit`
        of them and, past the first, at most `max_bytes` in all, none after `shown`; their seqs if
        `with_seqs` (else an empty list); and the resume point after them (`shown` when every change up to
        it was considered). Call only when `holds(cursor)`."""
        test, driver = self._plan(where)
        if test is None:
            # Such pages end at the next multiple of `limit` (in sequence numbers) after the cursor: watches
            # at different places, laggards catching up, meet there after their first page and then share
            # every page (see `page`) instead of each joining its own copy of every event.
            start = bisect.bisect_right(self._seqs, cursor)
            boundary = (cursor // limit + 1) * limit
            resume = boundary if boundary < self._shown else max(cursor, self._shown)
            end = bisect.bisect_right(self._seqs, resume, start)
            size = 0
            for index in range(start, end):
                size += len(self._encoding(index))
                if size > max_bytes and index > start:
                    end, resume = index, self._seqs[index - 1]
                    break
            # Superseded changes are held as empty encodings.
            picked = [encoded for encoded in self._encoded[start:end] if encoded]
            seqs = ([seq for seq, encoded in zip(self._seqs[start:end], self._encoded[start:end]) if encoded]
                    if with_seqs else [])
            return picked, seqs, resume
        picked, seqs, size = [], [], 0
        for seq in self._candidates(cursor, driver):
            if seq > self._shown:
                break
            index = bisect.bisect_left(self._seqs, seq)
            if self._encoded[index] == b"" or not test(self._changes[index]):
                continue
            encoded = self._encoding(index)
            if picked and (len(picked) >= limit or size + len(encoded) > max_bytes):
                return picked, seqs, seq - 1
            picked.append(encoded)
            if with_seqs:
                seqs.append(seq)
            size += len(encoded)
        return picked, seqs, max(cursor, self._shown)

    def page(self, cursor: int, where: EventFilter, *, limit: int, max_bytes: int,
             compress: bool = False) -> tuple[bytes, int, int]:
        """One response made of `after`'s changes: `frame(resume, encodings, compress)`, how many events it
        holds and its resume point. Watches with the same filter at the same place get the same response,
        made (and compressed) once: most of them follow at the head, and a page made per watch was a copy of
        every event per watch."""
        key = (cursor, where, limit, max_bytes, compress)
        made = self._pages.get(key)
        if made is None:
            encoded, _, resume = self.after(cursor, where, limit=limit, max_bytes=max_bytes)
            made = (self._frame(resume, encoded, compress), len(encoded), resume)
            if len(self._pages) >= 256:  # watches spread out while they catch up: keep the newest only
                self._pages.clear()
            self._pages[key] = made
        return made

    async def wait(self, cursor: int) -> None:
        """Until the watches are next woken (after a read, at least every poll_seconds) if nothing after
        `cursor` is shown yet; at once if something is, a read failed or the bell is closed."""
        if self._shown > cursor or self._failure is not None or self.closed:
            return
        # One future for every waiting watch, not a timer each: the reader resolves it after every read.
        await asyncio.shield(self._next_read())

    # -- filters --------------------------------------------------------------------------------------------

    def _plan(self, where: EventFilter) -> tuple[Callable[[EventChange], bool] | None, tuple[str, ...]]:
        """The filter's test and the indexed columns (one, or pod's two) whose value it requires."""
        plan = self._plans.get(where)
        if plan is None:
            driver: tuple[str, ...] = ()
            if where.pod is not None:
                driver = ("pod", "pod_aggr", where.pod)
            else:
                for column in ("namespace", "host", "type"):
                    if getattr(where, column) is not None:
                        driver = (column, getattr(where, column))
                        break
            plan = self._plans[where] = (change_filter(where), driver)
        return plan

    def _candidates(self, cursor: int, driver: tuple[str, ...]) -> list[int]:
        """The seqs after `cursor` of the held changes with the driver's value in one of its columns (every
        held change with no driver), ascending. A watch with an equality filter reads only its own rows:
        a hundred watches each scanning every new row was most of what they cost."""
        if not driver:
            return self._seqs[bisect.bisect_right(self._seqs, cursor):]
        *columns, value = driver
        found: list[int] = []
        for column in columns:
            seqs = self._column_index(column).get(value, [])
            found += seqs[bisect.bisect_right(seqs, cursor):]
        return sorted(found) if len(columns) > 1 else found

    def _column_index(self, column: str) -> dict[str, list[int]]:
        index = self._indexes.get(column)
        if index is None:  # first asked for: built from what is held, then kept up by _append
            index = self._indexes[column] = {}
            for change, seq, encoded in zip(self._changes, self._seqs, self._encoded):
                if encoded != b"":
                    index.setdefault(getattr(change, column), []).append(seq)
        return index

    def _encoding(self, index: int) -> bytes:
        """A held change's encoding, made when first needed (a change no watch asks for is never encoded)."""
        encoded = self._encoded[index]
        if encoded is None:
            encoded = self._encoded[index] = self._encode(self._changes[index])
        return encoded

    def _next_read(self) -> asyncio.Future[None]:
        if self._read_done is None or self._read_done.done():
            self._read_done = asyncio.get_running_loop().create_future()
        return self._read_done

    def _signal(self) -> None:
        """A read happened (or failed, or the bell closed): wake every waiting watch, showing what is held."""
        if self._shown != self._head:
            self._shown = self._head
            self._pages.clear()
        self._signalled_at = time.monotonic()
        if self._signal_timer is not None:
            self._signal_timer.cancel()
            self._signal_timer = None
        if self._read_done is not None and not self._read_done.done():
            self._read_done.set_result(None)

    def _signal_soon(self) -> None:
        """`_signal`, but not sooner than `read_interval` after the last: rows handed over after each commit
        would otherwise wake every watch 30-50 times a second, each to send a small page."""
        wait = self.read_interval - (time.monotonic() - self._signalled_at)
        if wait <= 0:
            self._signal()
        elif self._signal_timer is None:
            self._signal_timer = asyncio.get_running_loop().call_later(wait, self._signal)

    # -- the reader -----------------------------------------------------------------------------------------

    async def _read(self) -> None:
        settings = self._settings
        while not self.closed:
            ticket = self._bell.ticket()
            started = time.monotonic()
            try:
                if self._floor is None:
                    self._head = await self._store.latest_event_seq()
                    self._floor = self._head
                    latest, changes = self._head, []
                else:
                    latest, changes = await self._store.event_changes(self._head, settings.read_batch)
            except Exception as error:  # noqa: BLE001 - the watches must hear of it, and the reader go on
                if not isinstance(error, StoreError):
                    log.exception("event watches: reading new events failed")
                    error = StoreError(f"reading new events failed: {error}")
                elif self._failure is None:
                    log.warning("event watches: the store failed: %s", error)
                self._failure = error
                self._signal()
                await self._bell.wait(settings.poll_seconds)
                continue
            self._failure = None
            full = len(changes) >= settings.read_batch
            # This process's commits may have been handed over while the read ran: those rows are held.
            changes = [change for change in changes if change.seq > self._head]
            if changes:
                self._append(changes, [change.seq for change in changes])
            if not full and latest > self._head:
                self._head = latest
            self._signal()
            if not full and await self._bell.wait(settings.poll_seconds, after=ticket):
                # A busy ingest rings after every commit: reads, and the response each watch sends after
                # one, are spaced out so that a hundred watches send a few larger pages, not many small.
                pause = self.read_interval - (time.monotonic() - started)
                if pause > 0 and not self.closed:
                    await asyncio.sleep(pause)
        self._signal()

    def _published(self, first_seq: int, rows: list[Row]) -> None:
        """This process's store committed `rows`, numbered first_seq on: held at once, as they are (no read
        back, no copy), when nothing unknown lies between `head` and them (else another writer's rows do,
        and the reader reads them all, theirs and these, after the bell)."""
        if self._floor is None or first_seq > self._head + 1:
            return
        skip = self._head + 1 - first_seq
        if skip < len(rows):
            self._append(rows[skip:], range(first_seq + skip, first_seq + len(rows)))
            self._signal_soon()

    def _append(self, changes: list[Row], numbers: Iterable[int]) -> None:
        held, seqs = self._held, self._seqs
        new_seqs = list(numbers)
        ids = [change.id for change in changes]
        # The store holds one row per id, at its newest number: an older change of an id held here is
        # superseded, and dropped (its encoding emptied), so that a watch reading here gets what it would
        # have read from the store. Most new rows are new ids: looked for all at once.
        if not held.keys().isdisjoint(ids):
            for event_id in ids:
                before = held.get(event_id)
                if before is not None:
                    self._encoded[bisect.bisect_left(seqs, before)] = b""
            self._pages.clear()  # a page made before may hold what is superseded now
        held.update(zip(ids, new_seqs))
        self._changes += changes
        self._bytes += sum(len(change.body) for change in changes)
        self._encoded += [None] * len(changes)
        seqs += new_seqs
        for column, index in self._indexes.items():
            value_of = operator.attrgetter(column)
            for change, seq in zip(changes, new_seqs):
                index.setdefault(value_of(change), []).append(seq)
        self._head = new_seqs[-1]
        self._trim()

    def _trim(self) -> None:
        """Keep the newest window_events rows, and older ones while an attached watch still needs them and
        what is held stays within max_held_bytes; trimmed a quarter of the window at a time, so that the
        lists are not shifted on every read."""
        window = self._settings.window_events
        excess = len(self._seqs) - window
        if excess <= window // 4:
            return
        # A watch behind the window (a slow consumer, or a burst) keeps what it has still to send: read
        # here, its pages are shared with the watches at the same place, where from the store each of a
        # hundred laggards read and encoded every event again, for itself.
        slowest = min((place.cursor for place in self._places), default=self._head)
        excess = min(excess, bisect.bisect_right(self._seqs, slowest))
        bytes_after = self._bytes - sum(len(change.body) for change in self._changes[:excess])
        while bytes_after > self._settings.max_held_bytes and excess < len(self._seqs) - window:
            bytes_after -= len(self._changes[excess].body)
            excess += 1
        if excess <= 0:
            return
        self._bytes = bytes_after
        self._floor = self._seqs[excess - 1]
        for change, seq in zip(self._changes[:excess], self._seqs[:excess]):
            if self._held.get(change.id) == seq:
                del self._held[change.id]
        for column, index in self._indexes.items():
            for value in list(index):
                seqs = index[value]
                del seqs[:bisect.bisect_right(seqs, self._floor)]
                if not seqs:
                    del index[value]
        del self._changes[:excess], self._encoded[:excess], self._seqs[:excess]
