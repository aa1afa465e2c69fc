"""The agent's outgoing event queue: emitted events waiting for the collector's acknowledgement (docs/grpc-api.md).

Pure: event ids and JSON text in, batches and the ids they settle out; no I/O and no clock (nothing here
depends on time: backoff and flush timers belong to the shell that drives the EventIngest stream).

One entry per event id. A growing event is emitted again under the same id with its cumulative count
(docs/detection.md), and the latest emission supersedes: an emission of an id already queued replaces the queued one
and moves to the back, so "oldest" always means "least recently emitted". An emission of an id whose older
emission is in flight is queued beside it; it may travel in a later batch, which is safe because the
collector writes and acknowledges batches in order, so the newer emission always lands last.

`ack` settles a batch. The ids it returns are those the agent no longer holds at all (no newer emission queued
or in flight): exactly the ids an on-disk spool may forget. `requeue_in_flight` (after a lost stream) puts every
unacknowledged batch back at the front of the queue, in the order they were cut, so a reconnect resends
them first; batch ids keep increasing, so a late Ack from the dead stream matches nothing.

Bounds (events and bytes) cover everything held, queued and in flight, because both occupy memory. When an
emission would exceed them the oldest queued events are dropped first (in-flight ones are on the wire and
most likely about to be acknowledged), then the oldest in-flight ones; each drop is counted. (Dropping a
queued emission whose older emission is in flight leaves that older one, which a requeue resends: a true
count, if a smaller one, rather than nothing.) Offering never
blocks and never raises: the capture path must not wait on the network.
"""

from __future__ import annotations

from dataclasses import dataclass

_NOTHING: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class QueuedEvent:
    """One emission of an event, as EventIngest carries it (events.proto `Event`)."""

    id: str
    """The event's `id` (docs/event.md); re-emissions share it."""
    json: str
    """The event object as JSON text."""
    size: int
    """`json`'s length in UTF-8 bytes: what the byte bounds count."""


@dataclass(frozen=True, slots=True)
class Batch:
    """Events cut for one `EventBatch`, acknowledged (or requeued) as a whole."""

    batch_id: int
    """Increasing over the outbox's life (never reused across reconnects); echoed by the collector's Ack."""
    events: tuple[QueuedEvent, ...]
    """Oldest emission first."""

    @property
    def size(self) -> int:
        return sum(ev.size for ev in self.events)


@dataclass(frozen=True, slots=True)
class OutboxStats:
    """Counters for metrics: gauges of what is held now, totals since the outbox was made."""

    queued: int
    """Events waiting to be cut into a batch."""
    queued_bytes: int
    in_flight: int
    """Events in batches sent and not yet acknowledged."""
    in_flight_bytes: int
    acked: int
    """Total events acknowledged by the collector."""
    dropped: int
    """Total events dropped unacknowledged because a bound was hit (or one event alone exceeded it)."""
    replaced: int
    """Total emissions superseded, unsent or unacknowledged, by a newer emission of the same id."""


def queued_event(event_id: str, json_text: str) -> QueuedEvent:
    """An emission, its size measured once."""
    return QueuedEvent(event_id, json_text, len(json_text.encode("utf-8")))


class Outbox:
    """Unacknowledged events, one per id, bounded; see the module docstring for the rules."""

    def __init__(self, max_events: int, max_bytes: int) -> None:
        if max_events < 1 or max_bytes < 1:
            raise ValueError("an outbox needs room for at least one event and one byte")
        self.max_events = max_events
        self.max_bytes = max_bytes
        # Insertion order is emission order: a dict is the queue and the index by id at once.
        self._queued: dict[str, QueuedEvent] = {}
        self._queued_bytes = 0
        # batch id -> {event id: emission}, in the order the batches were cut.
        self._in_flight: dict[int, dict[str, QueuedEvent]] = {}
        self._in_flight_events = 0
        self._in_flight_bytes = 0
        self._next_batch_id = 1
        self._acked = 0
        self._dropped = 0
        self._replaced = 0

    @property
    def queued_events(self) -> int:
        """Events waiting to be cut into a batch (as `stats().queued`, without building the stats)."""
        return len(self._queued)

    @property
    def queued_bytes(self) -> int:
        """Their bytes of JSON."""
        return self._queued_bytes

    def __len__(self) -> int:
        """Events held, queued and in flight (an id queued and in flight counts twice)."""
        return len(self._queued) + self._in_flight_events

    def offer(self, event: QueuedEvent) -> tuple[str, ...]:
        """Queue an emission, superseding a queued one of the same id; returns the ids dropped and no longer held.

        Those ids (and only those) may be forgotten by a spool as well.
        """
        if event.size > self.max_bytes:
            # It could never be held; keep whatever was held (an older emission of it included) rather than
            # empty the queue for nothing.
            self._dropped += 1
            return _NOTHING if self._holds(event.id) else (event.id,)
        old = self._queued.pop(event.id, None)
        if old is not None:
            self._replaced += 1
            self._queued_bytes -= old.size
        self._queued[event.id] = event
        self._queued_bytes += event.size
        if (len(self._queued) + self._in_flight_events <= self.max_events
                and self._queued_bytes + self._in_flight_bytes <= self.max_bytes):
            return _NOTHING
        return self._make_room(keep=event.id)

    def next_batch(self, max_events: int, max_bytes: int) -> Batch | None:
        """Cut the oldest queued events into a batch (None when nothing is queued) and mark them in flight.

        A batch holds at most `max_events` events and `max_bytes` bytes of JSON, but always at least one event,
        so an event larger than `max_bytes` still travels, alone.
        """
        if not self._queued:
            return None
        taken: dict[str, QueuedEvent] = {}
        size = 0
        for event_id, event in self._queued.items():
            if len(taken) >= max_events or (taken and size + event.size > max_bytes):
                break
            taken[event_id] = event
            size += event.size
        for event_id in taken:
            del self._queued[event_id]
        self._queued_bytes -= size
        batch_id = self._next_batch_id
        self._next_batch_id += 1
        self._in_flight[batch_id] = taken
        self._in_flight_events += len(taken)
        self._in_flight_bytes += size
        return Batch(batch_id, tuple(taken.values()))

    def ack(self, batch_id: int) -> tuple[str, ...]:
        """The collector stored batch `batch_id`: forget its events. Returns the ids now settled.

        An id stays held (and is not returned) when a newer emission of it arrived after the batch was cut;
        an unknown batch id (a late Ack from a stream already given up) changes nothing.
        """
        batch = self._in_flight.pop(batch_id, None)
        if batch is None:
            return _NOTHING
        self._in_flight_events -= len(batch)
        self._in_flight_bytes -= sum(ev.size for ev in batch.values())
        self._acked += len(batch)
        # Acks come in order, but should one overtake an earlier batch's, that batch's emissions of these ids
        # are older than what is now stored: resending them after a requeue would store an older count.
        emptied = []
        for earlier_id, earlier in self._in_flight.items():
            if earlier_id > batch_id:
                break
            for event_id in [event_id for event_id in earlier if event_id in batch]:
                self._superseded_in_flight(earlier, event_id)
            if not earlier:
                emptied.append(earlier_id)
        for earlier_id in emptied:
            del self._in_flight[earlier_id]
        return tuple(event_id for event_id in batch if not self._holds(event_id))

    def requeue_in_flight(self) -> int:
        """The stream is gone: every unacknowledged batch goes back to the front of the queue, in order.

        An emission already superseded by a newer one (queued, or in a later batch) is not resent. Returns
        the number of events requeued.
        """
        if not self._in_flight:
            return 0
        requeued: dict[str, QueuedEvent] = {}
        for batch in self._in_flight.values():
            for event_id, event in batch.items():
                if event_id in self._queued:
                    self._replaced += 1
                    continue
                if requeued.pop(event_id, None) is not None:
                    self._replaced += 1
                requeued[event_id] = event
        count = len(requeued)
        requeued.update(self._queued)
        self._queued = requeued
        self._queued_bytes = sum(ev.size for ev in requeued.values())
        self._in_flight.clear()
        self._in_flight_events = self._in_flight_bytes = 0
        return count

    nack = requeue_in_flight

    def stats(self) -> OutboxStats:
        return OutboxStats(queued=len(self._queued), queued_bytes=self._queued_bytes,
                           in_flight=self._in_flight_events, in_flight_bytes=self._in_flight_bytes,
                           acked=self._acked, dropped=self._dropped, replaced=self._replaced)

    def _superseded_in_flight(self, batch: dict[str, QueuedEvent], event_id: str) -> None:
        event = batch.pop(event_id)
        self._in_flight_events -= 1
        self._in_flight_bytes -= event.size
        self._replaced += 1

    def _holds(self, event_id: str) -> bool:
        return event_id in self._queued or any(event_id in batch for batch in self._in_flight.values())

    def _make_room(self, keep: str) -> tuple[str, ...]:
        """Drop oldest-first until within bounds, sparing the emission just offered (the newest)."""
        dropped: list[str] = []
        while (len(self._queued) + self._in_flight_events > self.max_events
               or self._queued_bytes + self._in_flight_bytes > self.max_bytes):
            oldest = next(iter(self._queued))
            if oldest != keep:
                event = self._queued.pop(oldest)
                self._queued_bytes -= event.size
            else:
                batch_id = next(iter(self._in_flight))
                batch = self._in_flight[batch_id]
                oldest = next(iter(batch))
                event = batch.pop(oldest)
                if not batch:
                    # The batch is still acknowledged by id later; an empty entry would only linger.
                    del self._in_flight[batch_id]
                self._in_flight_events -= 1
                self._in_flight_bytes -= event.size
            self._dropped += 1
            if not self._holds(oldest):
                dropped.append(oldest)
        return tuple(dropped)
