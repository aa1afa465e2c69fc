"""The agent's end of the event stream (EventIngest.Send, SPEC §6): events out, acknowledgements back.

It has the shape of every dnswatch stream (STYLE habit 4): connect, send what is held, follow the acks, and
on failure back off and resume from what is held. What is held is the pure `agent.core.outbox.Outbox`
(one entry per event id, bounded, drops counted) and, with a spool directory, `agent.shell.spool.Spool`, so
that unacknowledged events also survive an agent restart.

    shipper = EventShipper(lambda: grpc.insecure_channel("collector:7443"), ShipperSettings(node="node-1"))
    shipper.offer(event)            # from the capture path: never blocks, never raises for a full queue
    shipper.flush(timeout=30)       # True once everything offered is acknowledged
    shipper.close()

Threads: `offer` only takes a lock for the few steps of an outbox insert (it is called from the capture
path). One thread (`event-shipper`) opens the stream and reads the acks; gRPC's own thread pulls the batches
from `_requests`, which cuts them from the outbox when a batch is full or its oldest event has waited
`linger` seconds (or a flush asks). Up to `max_batches_in_flight` batches travel unacknowledged, so the
collector can write several in one transaction. Nothing that touches the network or the disk runs under the
lock that `offer` takes.

With a spool, an offered event is first staged; the sender writes what is staged to the spool (one fsync for
all of it) before the events enter the outbox, so nothing is sent that a restart could not resend. An ack
settles the outbox, and the ids it settles are forgotten by the spool. Events recovered from the spool at
start are queued before anything new and so are sent first.
"""

from __future__ import annotations

import json
import logging
import random
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc

from agent.core.outbox import Batch, Outbox, queued_event
from agent.shell.spool import Spool, SpoolError
from dnswatch_pb.v1 import events_pb2, events_pb2_grpc

__all__ = ["CHANNEL_OPTIONS", "EventShipper", "ShipperSettings", "ShipperStats"]

log = logging.getLogger("dnswatch.agent.shipper")

CHANNEL_OPTIONS = (
    ("grpc.keepalive_time_ms", 30_000),
    ("grpc.keepalive_timeout_ms", 10_000),
    ("grpc.http2.max_pings_without_data", 0),
)
"""Options for the channel `connect` opens: the event stream is idle between alerts, so ping the collector
(it accepts a ping every 10 s) and notice within about 40 s one that vanished without a FIN or RST."""


@dataclass(frozen=True)
class ShipperSettings:
    """How events are held, cut into batches and sent."""

    node: str = "-"
    """This agent's node name (`EventBatch.node`), for the collector's logs."""
    max_events: int = 100_000
    """Events held unacknowledged (queued and in flight) at most; beyond it the oldest are dropped, counted."""
    max_bytes: int = 64 << 20
    """Bytes of event JSON held unacknowledged at most; beyond it the oldest are dropped, counted."""
    batch_events: int = 500
    """Events per batch at most."""
    batch_bytes: int = 1 << 20
    """Bytes of event JSON per batch at most (an event larger than this still travels, alone)."""
    linger: float = 0.2
    """Seconds an event may wait for its batch to fill before the batch is sent anyway."""
    max_batches_in_flight: int = 32
    """Batches sent and not yet acknowledged at most. With a backlog (a burst, or a reconnection) the collector
    writes all of an agent's batches in flight in one transaction, and its cost per event falls with the size of
    that transaction (each page an event touches is written once per commit): 8 batches of 500 gave it
    16-18,000 events/s, 32 gave 19-21,000 (bench/ingest.py). Nothing waits longer for it: a batch still goes
    out as soon as it is full or has lingered."""
    backoff_min: float = 0.5
    """Seconds before the first reconnection after a failure."""
    backoff_max: float = 30.0
    """The longest wait between reconnections (the wait doubles up to this, with jitter)."""
    spool_dir: Path | None = None
    """Keep unacknowledged events in this directory too, so that they survive an agent restart."""
    spool_bytes: int = 256 << 20
    """The spool file's size bound (it holds up to half of it in live events, see agent/shell/spool.py)."""


@dataclass(frozen=True)
class ShipperStats:
    """Counters for the replay summary and metrics: gauges of what is held now, totals since start."""

    queued: int
    """Events waiting to be sent (staged for the spool included)."""
    in_flight: int
    """Events sent and not yet acknowledged."""
    acked: int
    """Event emissions acknowledged by the collector (stored durably)."""
    dropped: int
    """Event emissions dropped unacknowledged because a bound was hit."""
    refused: int
    """Event emissions dropped because the collector refused their batch (INVALID_ARGUMENT)."""
    replaced: int
    """Emissions superseded, unsent or unacknowledged, by a newer emission of the same id (not lost)."""
    recovered: int
    """Events recovered from the spool at start."""
    spooled: int
    """Events held in the spool now (0 without a spool)."""
    spool_dropped: int
    """Events the spool could not keep (its bound, or a disk error); they are still sent if the agent lives."""
    streams: int
    """Send streams opened so far (1 plus the reconnections)."""
    streaming: bool
    """A stream is open now."""
    last_error: str
    """The last stream or spool failure, one line; empty if none."""


class EventShipper:
    """Ships offered events to the collector until `close`; see the module docstring."""

    def __init__(self, connect: Callable[[], grpc.Channel], settings: ShipperSettings = ShipperSettings(), *,
                 rng: random.Random | None = None) -> None:
        """Opens the spool (SpoolError if it cannot be used), queues what it recovers, and starts shipping."""
        self.settings = settings
        self._connect = connect
        self._rng = rng or random.Random()
        self._cond = threading.Condition()
        self._outbox = Outbox(settings.max_events, settings.max_bytes)
        # Spool mode only: emissions offered and not yet written to the spool, latest emission per id.
        self._staged: dict[str, Mapping[str, Any]] = {}
        self._staged_dropped = 0
        self._spooling = 0  # staged events being written to the spool, not yet in the outbox
        self._queued_since: float | None = None  # when the oldest queued event was queued (for `linger`)
        self._in_flight_batches: set[int] = set()
        self._generation = 0  # bumped when a stream ends: its request generator then stops
        self._flushing = 0
        self._closing = False
        self._streaming = False
        self._streams = 0
        self._last_error = ""
        self._spool_errors = 0
        self._call: Any = None
        self._recovered = 0
        self._refused = 0
        # Serializes spool writes with the outbox changes they go with (see _persist_staged and _settle).
        self._spool_lock = threading.Lock()
        self._spool: Spool | None = None
        if settings.spool_dir is not None:
            self._spool = Spool.open(settings.spool_dir, settings.spool_bytes)
            recovered = self._spool.recover()
            for event in recovered:
                self._outbox.offer(_queued(event))
            self._recovered = len(recovered)
            if recovered:
                self._queued_since = float("-inf")  # recovered events go at once
                log.info("resending %d unacknowledged events from the spool %s", len(recovered),
                         settings.spool_dir)
        self._thread = threading.Thread(target=self._run, name="event-shipper", daemon=True)
        self._thread.start()

    # -- the capture side

    def offer(self, event: Mapping[str, Any]) -> None:
        """Queue one emission of a SPEC §3 event (it must not be changed afterwards). Never blocks on the
        network or the disk; when a bound is hit the oldest events are dropped and counted."""
        if self._spool is None:
            queued = _queued(event)  # the JSON encoding, outside the lock
            with self._cond:
                self._outbox.offer(queued)
                self._note_queued()
            return
        event_id = str(event["id"])
        with self._cond:
            self._staged.pop(event_id, None)
            self._staged[event_id] = event
            if len(self._staged) > self.settings.max_events:
                del self._staged[next(iter(self._staged))]
                self._staged_dropped += 1
            self._note_queued()

    def flush(self, timeout: float) -> bool:
        """Send what is queued without waiting for `linger`, and wait until every event offered so far is
        acknowledged (or dropped): True, or False when `timeout` seconds pass first."""
        deadline = time.monotonic() + timeout
        with self._cond:
            self._flushing += 1
            self._cond.notify_all()
            try:
                while self._staged or self._spooling or len(self._outbox):
                    left = deadline - time.monotonic()
                    if left <= 0:
                        return False
                    self._cond.wait(left)
                return True
            finally:
                self._flushing -= 1

    def close(self, timeout: float = 10.0) -> None:
        """Stop shipping: the stream is cancelled and the spool closed. Events not acknowledged are lost
        unless spooled (`flush` first to wait for them)."""
        with self._cond:
            self._closing = True
            call = self._call
            self._cond.notify_all()
        if call is not None:
            call.cancel()
        self._thread.join(timeout)
        with self._spool_lock:
            if self._spool is not None:
                self._persist_staged_locked()  # staged events still get their chance after a restart
                self._spool.close()
                self._spool = None

    def __enter__(self) -> EventShipper:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def stats(self) -> ShipperStats:
        with self._cond:
            outbox = self._outbox.stats()
            spool = self._spool.stats() if self._spool is not None else None
            return ShipperStats(
                queued=outbox.queued + len(self._staged) + self._spooling, in_flight=outbox.in_flight,
                acked=outbox.acked - self._refused, dropped=outbox.dropped + self._staged_dropped,
                refused=self._refused, replaced=outbox.replaced,
                recovered=self._recovered, spooled=spool.events if spool else 0,
                spool_dropped=(spool.dropped if spool else 0) + self._spool_errors, streams=self._streams,
                streaming=self._streaming, last_error=self._last_error)

    # -- the stream

    def _run(self) -> None:
        """Connect, stream, and on failure back off and resume, until `close`."""
        delay = self.settings.backoff_min
        while not self._closing:
            with self._cond:
                generation = self._generation
            channel = None
            try:
                channel = self._connect()
                call = events_pb2_grpc.EventIngestStub(channel).Send(self._requests(generation))
                with self._cond:
                    if self._closing:
                        call.cancel()
                    self._call = call
                    self._streaming = True
                    self._streams += 1
                for ack in call:
                    self._settle(ack.batch_id)
                    delay = self.settings.backoff_min  # a stream that got an ack through was healthy
                self._note_error("the collector ended the event stream")
            except grpc.RpcError as error:
                if not self._closing:
                    self._note_error(_describe(error))
                    if error.code() == grpc.StatusCode.INVALID_ARGUMENT:
                        self._drop_refused_batch()
            except Exception as error:  # noqa: BLE001 - e.g. a channel that cannot be built; retried
                self._note_error(f"{type(error).__name__}: {error}")
            finally:
                with self._cond:
                    self._call = None
                    self._streaming = False
                    self._generation += 1
                    requeued = self._outbox.requeue_in_flight()
                    self._in_flight_batches.clear()
                    if requeued:
                        self._queued_since = float("-inf")
                    self._cond.notify_all()
                if channel is not None:
                    channel.close()
            if self._closing:
                return
            # Jitter spreads the reconnections of a whole cluster's agents after a collector restart.
            self._wait(delay * self._rng.uniform(0.5, 1.0))
            delay = min(delay * 2, self.settings.backoff_max)

    def _wait(self, seconds: float) -> None:
        """Sleep between two connection attempts; meanwhile offered events still go to the spool."""
        deadline = time.monotonic() + seconds
        while not self._closing:
            if self._spool is not None:
                self._persist_staged()
            left = deadline - time.monotonic()
            if left <= 0:
                return
            with self._cond:
                if not self._staged and not self._closing:
                    self._cond.wait(left)

    def _requests(self, generation: int) -> Iterator[events_pb2.EventBatch]:
        """The batches of one stream (pulled by gRPC's thread); ends when the stream or the shipper does."""
        while True:
            if self._spool is not None:
                self._persist_staged()
            batch = None
            with self._cond:
                while True:
                    if self._closing or self._generation != generation:
                        return
                    if self._staged and self._spool is not None:
                        break  # spool them first, then look again
                    batch, wait = self._cut_batch_locked()
                    if batch is not None:
                        break
                    self._cond.wait(wait)
            if batch is not None:
                yield events_pb2.EventBatch(
                    batch_id=batch.batch_id, node=self.settings.node,
                    events=[events_pb2.Event(id=event.id, json=event.json) for event in batch.events])

    def _cut_batch_locked(self) -> tuple[Batch | None, float | None]:
        """The next batch if one is due, else None and how long to wait before one may be (None: until told)."""
        settings = self.settings
        if len(self._in_flight_batches) >= settings.max_batches_in_flight:
            return None, None
        stats = self._outbox.stats()
        if not stats.queued:
            return None, None
        if (stats.queued < settings.batch_events and stats.queued_bytes < settings.batch_bytes
                and not self._flushing and self._queued_since is not None):
            waited = time.monotonic() - self._queued_since
            if waited < settings.linger:
                return None, settings.linger - waited
        batch = self._outbox.next_batch(settings.batch_events, settings.batch_bytes)
        if batch is None:
            return None, None
        self._in_flight_batches.add(batch.batch_id)
        if not self._outbox.stats().queued:
            self._queued_since = None
        return batch, None

    def _settle(self, batch_id: int) -> None:
        """The collector stored batch `batch_id`: the outbox forgets it, and so does the spool."""
        with self._spool_lock:
            with self._cond:
                settled = self._outbox.ack(batch_id)
                self._in_flight_batches.discard(batch_id)
                self._cond.notify_all()
            if self._spool is not None and settled:
                try:
                    self._spool.acknowledge(settled)
                except SpoolError as error:  # at worst a restart resends them: harmless
                    self._note_error(str(error))

    def _drop_refused_batch(self) -> None:
        """The collector refused a batch as unusable (INVALID_ARGUMENT): the oldest unacknowledged one, since
        acks come in order and the stream ends at the refused batch. Resending it would only be refused again,
        for ever, with everything behind it stuck: it is dropped, its events counted as refused."""
        with self._spool_lock:
            with self._cond:
                if not self._in_flight_batches:
                    return
                refused = min(self._in_flight_batches)
                before = self._outbox.stats().acked
                settled = self._outbox.ack(refused)
                self._refused += self._outbox.stats().acked - before
                self._in_flight_batches.discard(refused)
                self._cond.notify_all()
            log.error("the collector refused event batch %d; its events are dropped", refused)
            if self._spool is not None and settled:
                try:
                    self._spool.acknowledge(settled)
                except SpoolError as error:
                    self._note_error(str(error))

    def _persist_staged(self) -> None:
        with self._spool_lock:
            self._persist_staged_locked()

    def _persist_staged_locked(self) -> None:
        """Write the staged events to the spool (one fsync), then queue them. Holding the spool lock keeps an
        ack from settling an id in between (the spool would then forget the newer emission just written)."""
        spool = self._spool
        if spool is None:
            return
        with self._cond:
            staged, self._staged = self._staged, {}
            self._spooling = len(staged)
        if not staged:
            return
        try:
            spool.append(staged.values())
        except SpoolError as error:
            # Still sent while this agent lives; only a restart would lose them.
            self._spool_errors += len(staged)
            self._note_error(str(error))
        queued = [_queued(event) for event in staged.values()]
        with self._cond:
            dropped: list[str] = []
            for event in queued:
                dropped += self._outbox.offer(event)
            self._spooling = 0
            self._note_queued()
        if dropped:
            try:
                spool.acknowledge(dropped)  # dropped for good: the spool must not resend them either
            except SpoolError as error:
                self._note_error(str(error))

    # -- small helpers (the ones ending in _queued/_error need no lock or take it themselves)

    def _note_queued(self) -> None:
        """Under the lock: something was queued; start the linger clock and wake the sender."""
        if self._queued_since is None:
            self._queued_since = time.monotonic()
        self._cond.notify_all()

    def _note_error(self, message: str) -> None:
        with self._cond:
            if message != self._last_error:
                log.warning("event stream: %s", message)
            self._last_error = message


def _queued(event: Mapping[str, Any]):
    return queued_event(str(event["id"]), json.dumps(event, separators=(",", ":"), ensure_ascii=False))


def _describe(error: grpc.RpcError) -> str:
    """One line for a failed stream: gRPC's details can span lines and repeat the address."""
    code = error.code() if hasattr(error, "code") else None
    details = (error.details() if hasattr(error, "details") else "") or ""
    text = " ".join(details.split()) or str(code)
    return f"{code.name if code is not None else 'error'}: {text}"
