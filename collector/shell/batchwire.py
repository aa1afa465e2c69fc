"""An agent's batch as it came over the wire, and its events' encodings cut out of it when a watch wants them.

An `EventBatch.events` element and an `EventWatchResponse.events` element are the same bytes: field 3,
length-delimited, holding an `Event` of `id` and `json`. A watch can then send each event on as the agent
sent it instead of encoding it again, which was half of what an attached watch cost the collector per event
(1-2 µs of the event loop's time, for a cut of 0.2 µs). The cut is made only when a watch asks, once per
batch, so an ingest with no watch attached pays nothing but the reference.
"""

from __future__ import annotations

__all__ = ["BatchWire", "events_elements"]

_EVENTS_TAG = 3 << 3 | 2  # EventBatch.events, as EventWatchResponse.events


class BatchWire:
    """One received EventBatch's bytes; `element(i)` is the encoding of its i-th event as an element of
    `events` (tag, length and the Event), or None if the batch could not be cut (see events_elements)."""

    __slots__ = ("_raw", "_elements")

    def __init__(self, raw: bytes) -> None:
        self._raw = raw
        self._elements: list[bytes] | None = None

    def element(self, index: int) -> bytes | None:
        if self._elements is None:
            self._elements = events_elements(self._raw) or []
            self._raw = b""  # the cuts hold the bytes now
        return self._elements[index] if index < len(self._elements) else None


def events_elements(raw: bytes) -> list[bytes] | None:
    """The `events` elements of an encoded EventBatch, in order, each with its tag and length; None if the
    bytes hold a field this walk does not know how to skip (a group) or end inside a field."""
    elements: list[bytes] = []
    append = elements.append
    position, end = 0, len(raw)
    try:
        while position < end:
            start, tag = position, raw[position]
            if tag >= 0x80:  # a field number past 15: not EventBatch's, skipped as any other field
                position = _varint_end(raw, position)
                tag = _varint_value(raw, start, position)
            else:
                position += 1
            wire_type = tag & 7
            if wire_type == 2:
                length = raw[position]
                if length < 0x80:
                    position += 1
                else:
                    length_end = _varint_end(raw, position)
                    length = _varint_value(raw, position, length_end)
                    position = length_end
                field_end = position + length
                if field_end > end:
                    return None
                if tag == _EVENTS_TAG:
                    append(raw[start:field_end])
                position = field_end
            elif wire_type == 0:
                position = _varint_end(raw, position)
            elif wire_type == 1:
                position += 8
            elif wire_type == 5:
                position += 4
            else:
                return None
    except IndexError:
        return None
    return elements if position == end else None


def _varint_end(raw: bytes, position: int) -> int:
    while raw[position] & 0x80:
        position += 1
    return position + 1


def _varint_value(raw: bytes, start: int, end: int) -> int:
    value, shift = 0, 0
    for byte in raw[start:end]:
        value |= (byte & 0x7F) << shift
        shift += 7
    return value

