"""The group commit of events: concurrent `ingest_events` calls (several agents, or one agent with several
batches in flight) are written together.

Each call takes its place in line when it is made; one writer at a time takes every batch ready at the head
of the line, applies them in that order in one transaction (one commit, one fsync), and only then answers
each call with its own result. While it writes, the next batches are parsed on the event loop, so parsing
and writing overlap. A failed transaction fails every call of its group, and none of them is acknowledged:
an agent resends, and the per-id rules make that harmless. After each commit the rows it wrote are handed
to the store's change listeners, in sequence order.

`GroupCommitMixin` holds the line and its writer; the transaction that writes a group (`_ingest_group`) is
the store's (collector/store/events.py).
"""

from __future__ import annotations

import asyncio
import collections
import concurrent.futures
from typing import Any, Callable, NamedTuple

from collector.store.base import IngestResult, StoreError
from collector.store.eventrows import EventRow, PreparedBatch, prepare_batch, prepare_json_batch

# Events per group transaction at most: the fsync a group saves is already paid for long before this, and a
# bigger group would only hold back the answers to its first batches.
GROUP_MAX_EVENTS = 20_000


class GroupCommitMixin:
    """The ingest methods of the Store protocol: each call's batch parsed, put in line, and written with the
    batches beside it in one group commit; the change listeners told of every group written."""

    # Provided by SqlStore and EventStoreMixin.
    _call: Callable[..., Any]
    _ingest_group: Callable[..., "GroupWritten"]

    async def ingest_events(self, events: list[dict[str, Any]], *,
                            bodies: list[str] | None = None) -> IngestResult:
        return await self._ingest(len(events), prepare_batch, events, bodies)

    async def ingest_json(self, bodies: list[str], *, ids: list[str] | None = None,
                          wire: Any = None) -> IngestResult:
        return await self._ingest(len(bodies), prepare_json_batch, bodies, ids, wire)

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
                       and (not group or size + len(line.pending[0].rows.rows) <= GROUP_MAX_EVENTS)):
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

    def add_change_listener(self, listener: Callable[[int, list[EventRow]], None]) -> None:
        """Call `listener(first_seq, rows)` on the event loop after each group commit of this store, with
        every row it wrote, numbered first_seq, first_seq + 1, ... in order: the event watches of the process
        take new rows from here rather than reading them back (other writers' rows they still read)."""
        self.__dict__.setdefault("_change_listeners", []).append(listener)

    def remove_change_listener(self, listener: Callable[[int, list[EventRow]], None]) -> None:
        listeners = self.__dict__.get("_change_listeners", [])
        if listener in listeners:
            listeners.remove(listener)

    def _publish_changes(self, written: "GroupWritten") -> None:
        for listener in list(self.__dict__.get("_change_listeners", ())):
            listener(written.first_seq, written.rows)


class GroupWritten(NamedTuple):
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
