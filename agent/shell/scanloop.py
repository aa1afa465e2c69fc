"""The per-message loop of replay and live capture: scan each DNS message, hand the matched ones to the event
pipeline.

It runs for every message, so it stays flat: it only scans, and everything that happens to a matched message
(transactions, attribution, events) happens in `EventPipeline`, off the hot path. Replay expires windows by
capture time (`tick_seconds`); live capture by the wall clock, from the capture's once-a-second callback, so it
passes none. A live agent whose feeds changed appends the new Matcher to `new_matchers`: it takes over at the
next message.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

from agent.core.eventpipeline import EventPipeline
from agent.core.scanner import Matcher, question_of
from agent.core.sighting import Sighting


@dataclass
class ScanCounts:
    """What the loop went through."""

    malformed: int = 0
    """DNS messages the scanner found damaged (counted, skipped past the damage)."""
    matched_messages: int = 0
    """DNS messages with at least one feed match."""
    events: int = 0
    """Event emissions (an event that grows is emitted again under its id)."""


def scan_messages(messages: Iterable[tuple], matcher: Matcher, pipeline: EventPipeline,
                  emit: Callable[[dict], None], counts: ScanCounts, *, tick_seconds: float | None = None,
                  new_matchers: list[Matcher] | None = None) -> None:
    """Scan `messages` (the decoder's tuples) until they end, emitting every event the pipeline makes."""
    scan_unseen = matcher.scan_unseen
    # Most messages were seen before (see Matcher.scan): look them up here, without the method call.
    seen_before = matcher.seen_messages.get
    swaps = new_matchers if new_matchers is not None else ()
    next_tick = 0.0 if tick_seconds is not None else float("inf")
    for ts, src, sport, dst, dport, proto, payload in messages:
        if swaps:
            while swaps:
                matcher = swaps.pop(0)
            scan_unseen = matcher.scan_unseen
            seen_before = matcher.seen_messages.get
        key = payload[2:]
        damaged, matches = seen_before(key) or scan_unseen(payload, key)
        if damaged:  # rare; counted as it happens, for the live agent's metrics
            counts.malformed += 1
        if matches:
            counts.matched_messages += 1
            for event in pipeline.observe(sighting_of(ts, src, sport, dst, dport, proto, payload, matches)):
                counts.events += 1
                emit(event)
        if ts >= next_tick:
            if next_tick:
                for event in pipeline.tick(ts):
                    counts.events += 1
                    emit(event)
            next_tick = ts + tick_seconds


def drain(events: Iterable[dict], emit: Callable[[dict], None], counts: ScanCounts) -> None:
    """Emit what the pipeline gives outside the loop (its ticks, its finish), counting it."""
    for event in events:
        counts.events += 1
        emit(event)


def sighting_of(ts, src, sport, dst, dport, proto, payload, matches) -> Sighting:
    """A matched DNS message as the event pipeline takes it."""
    qname, qtype = question_of(payload)
    return Sighting(
        ts=ts,
        src=src,
        sport=sport,
        dst=dst,
        dport=dport,
        transport="tcp" if proto == 6 else "udp",
        payload=payload,
        is_response=bool(payload[2] & 0x80),
        dns_id=payload[0] << 8 | payload[1],
        qname=qname,
        qtype=qtype,
        matches=matches,
    )
