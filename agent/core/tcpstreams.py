"""DNS over TCP: per-direction stream reassembly and the 2-byte length framing (RFC 1035 §4.2.2, RFC 7766).

Over TCP a DNS message is preceded by its length in two bytes, and TCP may cut the stream anywhere: one
message over several segments, several messages in one segment, the length in one segment and the message in
the next. Each direction of a connection is one `_Stream`, which puts segments back in sequence order and
cuts whole messages out of the bytes.

Captures are imperfect, and a monitor must not wedge on them:

- Retransmitted and overlapping segments: bytes already delivered are dropped, new bytes are kept.
- Out-of-order segments are held until the hole before them fills.
- A hole that will never fill (the capture dropped a segment) is given up on when the peer has acknowledged
  data past it (it was delivered, just not to us), when the bytes held behind it exceed the per-stream limit,
  or when the stream ends. The stream then loses track of message boundaries and resynchronises.
- Resynchronising (also how a flow whose SYN was not captured starts): the stream waits for a segment whose
  first bytes plausibly begin a message (`looks_like_message_start`) and skips everything before it; skipped
  bytes are counted. Messages are only looked for at segment starts because senders write a message (or its
  length) with one call, so after a loss the next message almost always starts a segment; guessing at every
  byte would produce garbage "messages" from the middle of real ones.
- FIN or RST end the stream; bytes of a message left unfinished are counted as skipped.

Memory is bounded: at most `max_streams` streams (the least recently used is dropped first), at most
`max_stream_bytes` held out of order per stream, and a stream idle for `idle_timeout` seconds of capture time
is closed. Buffered in-order bytes are bounded by the framing itself (one message, at most 65,537 bytes).
"""

from __future__ import annotations

import struct
from collections import OrderedDict
from dataclasses import dataclass

TCP_FIN = 0x01
TCP_SYN = 0x02
TCP_RST = 0x04
TCP_ACK = 0x10

_SEQ_MASK = 0xFFFFFFFF
_DNS_HEADER = struct.Struct("!HHHHHHH")  # length prefix, then id, flags, qd/an/ns/ar counts
_MIN_QUESTION = 5  # root name (1) + type (2) + class (2)
_MIN_RECORD = 11  # root name (1) + type, class (4) + TTL (4) + rdlength (2)
# QUERY, IQUERY, STATUS, NOTIFY, UPDATE, DSO: the opcodes anything sends.
_KNOWN_OPCODES = frozenset({0, 1, 2, 4, 5, 6})

Flow = tuple  # (src address bytes, src port, dst address bytes, dst port): one direction of a connection
Message = tuple  # (timestamp, flow, DNS message bytes without the length prefix)


@dataclass(slots=True)
class TcpCounters:
    """What the reassembler saw; plain ints bumped per segment."""

    segments: int = 0
    """TCP segments on DNS ports handed to the reassembler (with or without payload)."""
    messages: int = 0
    """Whole DNS messages cut out of the streams."""
    retransmitted: int = 0
    """Segments whose bytes had all been received already."""
    out_of_order: int = 0
    """Segments that arrived ahead of a hole and were held."""
    gaps: int = 0
    """Holes given up on: stream bytes that were never captured."""
    bytes_skipped: int = 0
    """Captured stream bytes not delivered in a whole message: skipped while resynchronising, a message cut
    by a gap, or unfinished when its stream ended."""
    streams_evicted: int = 0
    """Streams dropped because `max_streams` were open (least recently used first)."""
    streams_expired: int = 0
    """Streams closed after `idle_timeout` seconds without a segment."""


def looks_like_message_start(buf: bytes | bytearray, off: int) -> bool | None:
    """Whether the bytes at `off` plausibly begin a length-prefixed DNS message; None when fewer than the
    14 bytes needed (length and header) are there yet.

    The checks are what every real message satisfies and random bytes rarely do: a length that holds the
    header and the records the counts announce, an opcode in use, at most one question, and for a query, no
    response code and a question unless the opcode needs none (IQUERY, DSO).
    """
    if len(buf) - off < 14:
        return None
    length, _id, flags, qdcount, ancount, nscount, arcount = _DNS_HEADER.unpack_from(buf, off)
    if qdcount > 1 or (flags >> 11) & 0xF not in _KNOWN_OPCODES:
        return False
    if not flags & 0x8000 and (flags & 0xF or (qdcount == 0 and (flags >> 11) & 0xF not in (1, 6))):
        return False
    return length >= 12 + qdcount * _MIN_QUESTION + (ancount + nscount + arcount) * _MIN_RECORD


def _seq_delta(seq: int, reference: int) -> int:
    """seq - reference in sequence space (RFC 793 arithmetic modulo 2**32), between -2**31 and 2**31."""
    return ((seq - reference + 0x80000000) & _SEQ_MASK) - 0x80000000


class _Stream:
    """One direction of one connection."""

    __slots__ = ("flow", "syn_next", "wire_next", "pos", "buf", "synced", "starts", "pending", "pending_bytes",
                 "peer_ack", "last_ts")

    def __init__(self, flow: Flow, wire_next: int, synced: bool, syn_next: int | None, ts: float) -> None:
        self.flow = flow
        self.syn_next = syn_next  # wire sequence number after the SYN, when the SYN was seen
        self.wire_next = wire_next  # wire sequence number of the next byte expected
        self.pos = 0  # the same position counted from the stream start, unbounded (no wrap-around)
        self.buf = bytearray()  # in-order bytes not yet delivered
        self.synced = synced  # buf starts at a message boundary
        self.starts: list[int] = []  # while not synced: offsets in buf where segments began (candidates)
        self.pending: dict[int, tuple[bytes, float]] = {}  # position -> (bytes, ts), held out of order
        self.pending_bytes = 0
        self.peer_ack: int | None = None  # latest acknowledgement number sent by the other direction
        self.last_ts = ts


class TcpReassembler:
    """Turns the TCP segments of DNS connections into whole DNS messages."""

    def __init__(self, max_streams: int = 10_000, max_stream_bytes: int = 128 * 1024, idle_timeout: float = 60.0,
                 counters: TcpCounters | None = None) -> None:
        self.max_streams = max_streams
        self.max_stream_bytes = max_stream_bytes
        self.idle_timeout = idle_timeout
        self.counters = counters if counters is not None else TcpCounters()
        self._streams: OrderedDict[Flow, _Stream] = OrderedDict()  # least recently used first

    def segment(self, ts: float, flow: Flow, seq: int, ack: int, flags: int, payload: bytes) -> list[Message]:
        """Take one segment of `flow`; return the messages it completes, on this flow or (when its
        acknowledgement settles a hole) on the reverse one."""
        self.counters.segments += 1
        out: list[Message] = []
        streams = self._streams
        if streams:
            self._close_idle(ts, out)
        stream = streams.get(flow)
        if flags & TCP_RST:
            # The connection is aborted both ways: nothing held will be completed.
            if stream is not None:
                self._close(stream, out)
            reverse = streams.get((flow[2], flow[3], flow[0], flow[1]))
            if reverse is not None:
                self._close(reverse, out)
            return out
        if flags & TCP_SYN:
            seq = (seq + 1) & _SEQ_MASK
            if stream is not None and stream.syn_next != seq:
                self._close(stream, out)  # a new connection on the same ports
                stream = None
            if stream is None:
                stream = self._open(_Stream(flow, seq, True, seq, ts), out)
        if payload:
            if stream is None:
                # The connection started before the capture: find a message start before trusting lengths.
                stream = self._open(_Stream(flow, seq, False, None, ts), out)
            self._add(stream, seq, payload, ts, out)
        if flags & TCP_ACK:
            reverse = streams.get((flow[2], flow[3], flow[0], flow[1]))
            if reverse is not None:
                reverse.peer_ack = ack
                if reverse.pending:
                    self._skip_acknowledged_holes(reverse, out)
        if stream is not None and stream.flow in streams:
            if flags & TCP_FIN:
                self._close(stream, out)
            else:
                stream.last_ts = ts
                streams.move_to_end(flow)
        return out

    def finish(self) -> list[Message]:
        """End of input: close every stream, delivering what held segments still complete."""
        out: list[Message] = []
        for stream in list(self._streams.values()):
            self._close(stream, out)
        return out

    def open_streams(self) -> int:
        return len(self._streams)

    # -- stream lifecycle ---------------------------------------------------------------------------------

    def _open(self, stream: _Stream, out: list[Message]) -> _Stream:
        streams = self._streams
        while len(streams) >= self.max_streams and streams:
            self.counters.streams_evicted += 1
            self._close(next(iter(streams.values())), out)
        streams[stream.flow] = stream
        return stream

    def _close(self, stream: _Stream, out: list[Message]) -> None:
        while stream.pending:
            self._skip_hole(stream, out)
        self.counters.bytes_skipped += len(stream.buf)
        stream.buf.clear()
        self._streams.pop(stream.flow, None)

    def _close_idle(self, now: float, out: list[Message]) -> None:
        streams = self._streams
        deadline = now - self.idle_timeout
        while streams:
            oldest = next(iter(streams.values()))
            if oldest.last_ts >= deadline:
                return
            self.counters.streams_expired += 1
            self._close(oldest, out)

    # -- sequencing ---------------------------------------------------------------------------------------

    def _add(self, stream: _Stream, seq: int, data: bytes, ts: float, out: list[Message]) -> None:
        delta = _seq_delta(seq, stream.wire_next)
        if delta < 0:
            if -delta >= len(data):
                self.counters.retransmitted += 1
                return
            data = data[-delta:]
            delta = 0
        if delta == 0:
            self._append(stream, data, ts, out)
            if stream.pending:
                self._drain(stream, out)
            return
        self.counters.out_of_order += 1
        position = stream.pos + delta
        held = stream.pending.get(position)
        if held is None or len(held[0]) < len(data):
            stream.pending_bytes += len(data) - (len(held[0]) if held else 0)
            stream.pending[position] = (data, ts)
        self._skip_acknowledged_holes(stream, out)
        while stream.pending_bytes > self.max_stream_bytes:
            self._skip_hole(stream, out)

    def _drain(self, stream: _Stream, out: list[Message]) -> None:
        """Append held segments that the stream has now reached."""
        pending = stream.pending
        while pending:
            position = min(pending)
            if position > stream.pos:
                return
            data, ts = pending.pop(position)
            stream.pending_bytes -= len(data)
            overlap = stream.pos - position
            if overlap >= len(data):
                self.counters.retransmitted += 1
                continue
            self._append(stream, data[overlap:] if overlap else data, ts, out)

    def _skip_acknowledged_holes(self, stream: _Stream, out: list[Message]) -> None:
        """The peer acknowledged bytes we never saw: they were delivered, the capture lost them."""
        while stream.pending and stream.peer_ack is not None:
            if _seq_delta(stream.peer_ack, stream.wire_next) < min(stream.pending) - stream.pos:
                return
            self._skip_hole(stream, out)

    def _skip_hole(self, stream: _Stream, out: list[Message]) -> None:
        """Give up on the bytes missing before the first held segment and carry on from there."""
        position = min(stream.pending)
        self.counters.gaps += 1
        self.counters.bytes_skipped += len(stream.buf)
        stream.buf.clear()
        stream.starts.clear()
        stream.synced = False
        stream.wire_next = (stream.wire_next + position - stream.pos) & _SEQ_MASK
        stream.pos = position
        self._drain(stream, out)

    # -- framing ------------------------------------------------------------------------------------------

    def _append(self, stream: _Stream, data: bytes, ts: float, out: list[Message]) -> None:
        """Add in-order bytes and deliver every message they complete."""
        stream.pos += len(data)
        stream.wire_next = (stream.wire_next + len(data)) & _SEQ_MASK
        buf = stream.buf
        if stream.synced and not buf:
            # The common case, a segment starting at a message boundary: cut messages without copying.
            used = self._deliver(data, stream.flow, ts, out)
            if used < len(data):
                buf += data[used:]
            return
        if not stream.synced:
            stream.starts.append(len(buf))
        buf += data
        if not stream.synced and not self._resync(stream):
            return
        used = self._deliver(buf, stream.flow, ts, out)
        if used:
            del buf[:used]

    def _resync(self, stream: _Stream) -> bool:
        """Drop bytes up to the first segment start that plausibly begins a message; True once found."""
        buf = stream.buf
        starts = stream.starts
        while starts:
            start = starts[0]
            verdict = looks_like_message_start(buf, start)
            if verdict is False:
                starts.pop(0)
                continue
            if start:
                self.counters.bytes_skipped += start
                del buf[:start]
                starts[:] = [s - start for s in starts]
            if verdict is None:
                return False  # too few bytes after this start yet to judge it
            starts.clear()
            stream.synced = True
            return True
        self.counters.bytes_skipped += len(buf)
        buf.clear()
        return False

    def _deliver(self, data: bytes | bytearray, flow: Flow, ts: float, out: list[Message]) -> int:
        """Append every whole length-prefixed message at the start of `data`; return the bytes used."""
        size = len(data)
        at = 0
        while size - at >= 2:
            end = at + 2 + ((data[at] << 8) | data[at + 1])
            if end > size:
                break
            if end > at + 2:  # a zero length announces nothing; skip it rather than deliver b""
                out.append((ts, flow, bytes(data[at + 2:end])))
                self.counters.messages += 1
            at = end
        return at
