"""`dnswatch-agent replay`'s source: capture files, read in order, through decode and the scan loop
(agent/shell/scanloop.py) to events. Time is the captures': windows close as capture time passes them."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from agent.core.decode import Decoder
from agent.core.eventpipeline import EventPipeline
from agent.core.pcapformat import FrameReader
from agent.core.scanner import CLEAN, Matcher
from agent.shell.capturefile import STDIN, capture_label, open_capture
from agent.shell.scanloop import ScanCounts, drain, scan_messages
from dnswatch.errors import BadInput

TICK_SECONDS = 1.0  # how often, in capture time, transactions and aggregation windows are expired

log = logging.getLogger("dnswatch.agent.replay")


@dataclass
class ReplayStats:
    """What a replay went through, for the summary line."""

    packets: int = 0
    """Frames read from the captures."""
    dns_messages: int = 0
    """Whole DNS messages decoded (UDP datagrams, reassembled TCP messages)."""
    malformed: int = 0
    """DNS messages the scanner found damaged (counted, skipped past the damage), and `bad_timestamps`."""
    bad_timestamps: int = 0
    """Packet records skipped because their time cannot be a capture time (pcapformat's `bad_timestamps`)."""
    event_errors: int = 0
    """Events that could not be built, and were dropped (the event pipeline's `build_errors`)."""
    matched_messages: int = 0
    """DNS messages with at least one feed match."""
    events: int = 0
    """Event emissions (an event that grows is emitted again under its id)."""
    distinct_events: int = 0
    """Events, each id once however often it was emitted (what the collector holds)."""
    seconds: float = 0.0
    """Wall time spent replaying."""
    decode: dict = field(default_factory=dict)
    """The decoder's own counters (non-DNS frames, fragments, TCP gaps, evictions...)."""
    truncated_files: list = field(default_factory=list)
    """Captures that ended in the middle of a record."""

    @property
    def packets_per_second(self) -> float:
        return self.packets / self.seconds if self.seconds > 0 else 0.0


def replay(
    paths: Iterable[Path],
    matcher: Matcher,
    pipeline: EventPipeline,
    ports: frozenset[int],
    emit: Callable[[dict], None],
    progress: Callable[[str, int, float], None] | None = None,
) -> ReplayStats:
    """Replay captures in order; `emit` receives every event emission; `progress(file label, messages, share of
    the bytes before this file)` at the start of each file and every 65,536 messages."""
    stats = ReplayStats()
    counts = ScanCounts()
    decoder = Decoder(ports)
    started = time.perf_counter()
    paths = list(paths)
    buffers = [open_capture(path) for path in paths]  # every file is checked before the first is replayed
    readers = []
    for path, buffer in zip(paths, buffers):
        try:
            readers.append(FrameReader(buffer))
        except BadInput as error:
            raise BadInput(f"{capture_label(path)}: {error}") from error
    total_bytes = sum(len(buffer) for buffer in buffers) or 1
    done_bytes = 0
    ids: set[str] = set()

    def emit_counting(event: dict) -> None:
        ids.add(event["id"])
        emit(event)

    for index, (path, reader, buffer) in enumerate(zip(paths, readers, buffers)):
        # Messages the matcher has already found clean are not even handed over (see capture_messages).
        messages = decoder.capture_messages(reader, matcher.seen_messages.get, CLEAN)
        if progress is not None:
            name = "standard input" if path == STDIN else path.name
            messages = _reporting(messages, progress, f"{name} ({index + 1}/{len(paths)})",
                                  done_bytes / total_bytes)
        scan_messages(messages, matcher, pipeline, emit_counting, counts, tick_seconds=TICK_SECONDS)
        done_bytes += len(buffer)
        if reader.truncated:
            stats.truncated_files.append(capture_label(path))
        if reader.bad_timestamps:
            log.warning("warning: %s: %d packets skipped: their timestamps are out of range (before 1970 or after "
                        "9999, or an impossible fraction of a second or timestamp resolution)", capture_label(path),
                        reader.bad_timestamps)
            stats.bad_timestamps += reader.bad_timestamps
    drain(pipeline.finish(), emit_counting, counts)
    stats.seconds = time.perf_counter() - started
    stats.malformed, stats.matched_messages, stats.events = counts.malformed, counts.matched_messages, counts.events
    stats.distinct_events = len(ids)
    stats.packets = decoder.stats.frames + stats.bad_timestamps
    stats.malformed += stats.bad_timestamps
    stats.event_errors = pipeline.build_errors
    if pipeline.build_errors:
        log.warning("warning: %d events could not be built and were left out; the last error: %s",
                    pipeline.build_errors, pipeline.last_build_error)
    stats.dns_messages = decoder.stats.udp_messages + decoder.stats.tcp.messages
    stats.decode = decoder.stats.as_dict()
    return stats


def _reporting(messages, progress, label: str, share_done: float, every: int = 65536):
    """Pass messages through, calling `progress(label, messages so far, share_done)` first and every `every`."""
    count = 0
    progress(label, count, share_done)
    for message in messages:
        yield message
        count += 1
        if not count % every:
            progress(label, count, share_done)
