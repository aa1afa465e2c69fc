"""IPv4 and IPv6 fragment reassembly, bounded in datagrams, bytes and capture time.

DNS responses larger than the path MTU (DNSSEC, big TXT sets, EDNS buffers of 4096) arrive as IP fragments,
and only the first one holds the UDP header; the name checks need the whole message, so fragments are
held here until their datagram is complete.

A datagram is keyed by (source, destination, protocol, identification), as RFC 791 and RFC 8200 do.
Fragments may arrive in any order. Where fragments overlap, the bytes that arrived first are kept: an attacker
may send overlapping fragments to show one payload to a monitor and another to the host (RFC 5722 drops such
datagrams outright; keeping the first copy still decodes what we can and counts the overlap).

Memory is bounded: at most `max_datagrams` incomplete datagrams and `max_bytes` of fragment data are held,
the oldest datagram giving way first, and a datagram not completed within `timeout` seconds of capture time
after its first fragment is dropped. Every dropped datagram is counted in `evicted`.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass

# Neither IPv4 (16-bit total length) nor IPv6 without jumbograms can carry more than this above the header.
MAX_DATAGRAM_BYTES = 65_535


@dataclass(slots=True)
class FragmentCounters:
    """What the reassembler saw; plain ints bumped per fragment."""

    received: int = 0
    """IP fragments received (IPv4 with MF set or a non-zero offset, IPv6 with a Fragment header)."""
    reassembled: int = 0
    """Datagrams completed from their fragments and passed on to UDP/TCP decoding."""
    evicted: int = 0
    """Incomplete datagrams dropped: timed out, over the datagram or byte limits, or left at end of input."""
    overlaps: int = 0
    """Fragments that overlapped bytes already held (the earlier bytes were kept)."""
    malformed: int = 0
    """Fragments that cannot belong to a valid datagram (past 65,535 bytes, or past a known end)."""


class _Datagram:
    """The pieces held for one datagram: disjoint (start, end, bytes) ranges, kept sorted by start."""

    __slots__ = ("first_ts", "pieces", "held", "total")

    def __init__(self, first_ts: float) -> None:
        self.first_ts = first_ts
        self.pieces: list[tuple[int, int, bytes]] = []
        self.held = 0
        self.total: int | None = None  # known once the last fragment (MF clear) has arrived

    def add(self, start: int, data: bytes) -> tuple[int, bool]:
        """Keep the parts of `data` (placed at `start`) not held yet; return (bytes kept, overlapped)."""
        end = start + len(data)
        kept = 0
        overlapped = False
        cursor = start
        new_pieces = []
        for piece_start, piece_end, _ in self.pieces:
            if piece_end <= cursor:
                continue
            if piece_start >= end:
                break
            overlapped = True
            if piece_start > cursor:
                new_pieces.append((cursor, piece_start, data[cursor - start:piece_start - start]))
            cursor = max(cursor, piece_end)
            if cursor >= end:
                break
        if cursor < end:
            new_pieces.append((cursor, end, data[cursor - start:]))
        for piece in new_pieces:
            kept += piece[1] - piece[0]
        if new_pieces:
            self.pieces.extend(new_pieces)
            self.pieces.sort()
        self.held += kept
        return kept, overlapped

    def complete(self) -> bytes | None:
        if self.total is None or self.held < self.total:
            return None
        # Pieces are disjoint and none passes `total`, so holding `total` bytes means there is no hole.
        return b"".join(piece for _, _, piece in self.pieces)


class FragmentReassembler:
    """Collects fragments and returns each datagram's payload (the bytes after the IP header) once whole."""

    def __init__(self, max_datagrams: int = 1024, max_bytes: int = 8 * 1024 * 1024, timeout: float = 30.0,
                 counters: FragmentCounters | None = None) -> None:
        self.max_datagrams = max_datagrams
        self.max_bytes = max_bytes
        self.timeout = timeout
        self.counters = counters if counters is not None else FragmentCounters()
        self._pending: OrderedDict[tuple, _Datagram] = OrderedDict()  # oldest first fragment first
        self._held = 0

    def add(self, ts: float, key: tuple, offset: int, more_fragments: bool, data: bytes) -> bytes | None:
        """Take one fragment; return the reassembled payload when this fragment completes its datagram.

        `key` identifies the datagram (source, destination, protocol, identification); `offset` is in bytes
        from the start of the payload; `more_fragments` is the MF flag (False on the last fragment).
        """
        counters = self.counters
        counters.received += 1
        self._expire(ts)
        end = offset + len(data)
        if end > MAX_DATAGRAM_BYTES:
            counters.malformed += 1
            return None
        datagram = self._pending.get(key)
        if datagram is None:
            datagram = self._pending[key] = _Datagram(ts)
        if not more_fragments and datagram.total is None:
            datagram.total = end
            dropped = _trim_to(datagram, end)
            if dropped:
                self._held -= dropped
                counters.malformed += 1
        if datagram.total is not None and end > datagram.total:
            counters.malformed += 1
            data = data[:max(0, datagram.total - offset)]
        if data:
            kept, overlapped = datagram.add(offset, data)
            self._held += kept
            if overlapped:
                counters.overlaps += 1
        whole = datagram.complete()
        if whole is not None:
            del self._pending[key]
            self._held -= datagram.held
            counters.reassembled += 1
            return whole
        self._enforce_limits()
        return None

    def pending(self) -> int:
        """Number of incomplete datagrams held."""
        return len(self._pending)

    def drop_all(self) -> None:
        """End of input: whatever is still incomplete will never complete."""
        self.counters.evicted += len(self._pending)
        self._pending.clear()
        self._held = 0

    def _expire(self, now: float) -> None:
        pending = self._pending
        deadline = now - self.timeout
        while pending:
            key, oldest = next(iter(pending.items()))
            if oldest.first_ts >= deadline:
                return
            self._evict(key)

    def _enforce_limits(self) -> None:
        pending = self._pending
        while pending and (len(pending) > self.max_datagrams or self._held > self.max_bytes):
            self._evict(next(iter(pending)))

    def _evict(self, key: tuple) -> None:
        datagram = self._pending.pop(key)
        self._held -= datagram.held
        self.counters.evicted += 1


def _trim_to(datagram: _Datagram, total: int) -> int:
    """Drop held bytes past a newly learnt end (earlier fragments were malformed); return how many."""
    if not datagram.pieces or datagram.pieces[-1][1] <= total:
        return 0
    kept = []
    for start, end, data in datagram.pieces:
        if start >= total:
            continue
        if end > total:
            data = data[:total - start]
            end = total
        kept.append((start, end, data))
    datagram.pieces = kept
    before = datagram.held
    datagram.held = sum(end - start for start, end, _ in kept)
    return before - datagram.held
