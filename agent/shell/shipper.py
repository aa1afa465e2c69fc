"""The agent's end of the event stream (EventIngest.Send, docs/grpc-api.md): events out, acknowledgements back.

It has the shape of every dnswatch stream: connect, send what is held, follow the acks, and
on failure back off and resume from what is held. What is held is the pure `agent.core.outbox.Outbox`
(one entry per event id, bounded, drops counted) and, with a spool directory, `agent.shell.spool.Spool`, so
that unacknowledged events also survive an agent restart.

    shipper = EventShipper(lambda: grpc.insecure_channel("collector:7443"), ShipperSettings(node="node-1"))
    shipper.offer(event)            # from the capture path: never blocks on the network, never raises
    shipper.flush(timeout=30)       # True once everything offered is acknowledged
    shipper.close()

Threads: `offer` only takes a lock for the few steps of an outbox insert (it is called from the capture
path), and with a spool the spool's lock for one write system call. One thread (`event-shipper`) opens the
stream and reads the acks; gRPC's own thread pulls the batches from `_requests`, which cuts them from the
outbox when a batch is full or its oldest event has waited `linger` seconds (or a flush asks). Up to
`max_batches_in_flight` batches travel unacknowledged, so the collector can write several in one transaction.
Nothing that touches the network, and no fsync, runs under a lock that `offer` takes.

With a spool, `offer` writes the event to the spool file (one write system call, no fsync) before it returns
and before the event enters the outbox. The capture path offers an event before it prints it, so an event
that was printed is in the spool even if the agent is killed the next instant: it loses nothing it emitted.
(Staging events for the sender thread to write instead lost printed events to a kill -9, thousands of them
while a replay printed at full speed: that thread gets the GIL only now and then.) The fsync comes later, on the sender's thread: before each batch goes
out, for everything written until then, so nothing is sent that a power cut could keep a restart from
resending. An ack settles the outbox, and the ids it settles are forgotten by the spool. Events recovered
from the spool at start are queued before anything new and so are sent first.
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
        self._unsynced = False  # spool mode: events written to the spool since its last fsync
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
        # Serializes spool writes with the outbox changes they go with (see offer and _settle).
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
        """Queue one emission of an event (it must not be changed afterwards); with a spool, write it
        there first (one write system call, so it survives a kill once this returns). Never blocks on the
        network and never waits for an fsync; when a bound is hit the oldest events are dropped and counted."""
        queued = _queued(event)  # the JSON encoding, outside the locks
        if self._spool is None:
            with self._cond:
                queued_bytes = self._outbox.queued_bytes
                self._outbox.offer(queued)
                self._note_queued(queued_bytes)
            return
        # The spool lock is held from the write to the outbox insert: an ack settling an older emission of this
        # id in between would make the spool forget the newer one just written (see _settle).
        with self._spool_lock:
            spool = self._spool
            if spool is not None:
                try:
                    spool.append_json([(queued.id, queued.json)], sync=False)
                except SpoolError as error:
                    # Still sent while this agent lives; only a restart would lose it.
                    self._spool_errors += 1
                    self._note_error(str(error))
            with self._cond:
                queued_bytes = self._outbox.queued_bytes
                dropped = self._outbox.offer(queued)
                self._unsynced = spool is not None
                self._note_queued(queued_bytes)
            if dropped and spool is not None:
                try:
                    spool.acknowledge(dropped)  # dropped for good: the spool must not resend them either
                except SpoolError as error:
                    self._note_error(str(error))

    def flush(self, timeout: float) -> bool:
        """Send what is queued without waiting for `linger`, and wait until every event offered so far is
        acknowledged (or dropped): True, or False when `timeout` seconds pass first."""
        deadline = time.monotonic() + timeout
        with self._cond:
            self._flushing += 1
            self._cond.notify_all()
            try:
                while len(self._outbox):
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
                self._spool.close()  # fsyncs what is unsynced: every event offered gets its chance after a restart
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
                queued=outbox.queued, in_flight=outbox.in_flight,
                acked=outbox.acked - self._refused, dropped=outbox.dropped,
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
            self._sync_spool()
            left = deadline - time.monotonic()
            if left <= 0:
                return
            with self._cond:
                if not self._closing:
                    # Offers do not wake this thread for each event: look again each linger for what to fsync.
                    self._cond.wait(min(left, self.settings.linger) if self._spool is not None else left)

    def _requests(self, generation: int) -> Iterator[events_pb2.EventBatch]:
        """The batches of one stream (pulled by gRPC's thread); ends when the stream or the shipper does."""
        while True:
            with self._cond:
                while True:
                    if self._closing or self._generation != generation:
                        return
                    batch, wait = self._cut_batch_locked()
                    if batch is not None or self._unsynced:
                        break  # an fsync is due even when no batch is (in-flight batches at their bound)
                    self._cond.wait(wait)
            self._sync_spool()  # a batch's events were written before it was cut: now they are durable
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

    def _sync_spool(self) -> None:
        """fsync what `offer` wrote to the spool, outside the spool lock (offer must not wait for the disk)."""
        try:
            with self._spool_lock:
                with self._cond:
                    self._unsynced = False
                sync = self._spool.detach_sync() if self._spool is not None else None
            if sync is not None:
                sync()
        except SpoolError as error:  # the events are still sent; only a power cut would lose them
            self._note_error(str(error))

    # -- small helpers (the ones ending in _queued/_error need no lock or take it themselves)

    def _note_queued(self, bytes_before: int) -> None:
        """Under the lock: an event was queued (`bytes_before` were queued before it). The sender is woken only
        when that makes a batch due sooner: the first event (its linger clock starts now) or a batch filled up;
        otherwise it wakes by itself when the linger ends. Waking it for every event cost the capture path more
        than the shipping itself (each wake-up hands the GIL over and back); with a spool it also means an
        fsync per batch rather than per event."""
        if self._queued_since is None:
            self._queued_since = time.monotonic()
            self._cond.notify_all()
            return
        settings = self.settings
        if (not self._outbox.queued_events % settings.batch_events
                or bytes_before < settings.batch_bytes <= self._outbox.queued_bytes):
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
