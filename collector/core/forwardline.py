"""What a forwarding target receives of one stored event: its JSON in the documented field order, followed by
the forwarder's own fields (docs/forwarding.md), on one line.

    forwarded = forwarded_event(change.body, change.seq, forwarded_at="2026-12-03T17:00:00.000Z")
    forwarded.line      # b'{"id":...,"record":{...},"seq":42,"forwarded_at":"..."}' (no newline)
    forwarded.event     # the event as a dict, parsed when first asked for

The order is docs/event.md's (the agent's `schema()`): the event's fields, then any field this collector does
not know (in the order stored), then `seq` and `forwarded_at`. Each value is written as stored.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import msgspec

__all__ = ["EVENT_FIELDS", "FORWARD_FIELDS", "RECORD_FIELDS", "Forwarded", "forwarded_event", "rfc3339_ms"]

EVENT_FIELDS = ("id", "time", "type", "severity", "origin", "name", "description", "host", "source_ip",
                "source_namespace", "source_name", "source_name_aggr", "source_labels", "source_workload",
                "attack_vector", "mitre_ids", "mitre_tactic", "mitigations", "record")
"""The event's top-level fields in docs/event.md's order."""

RECORD_FIELDS = ("feeds", "feed_labels", "suspicious_domains", "suspicious_ips", "matches", "qname", "qtype", "rcode",
                 "server_ip", "answers", "count", "first_seen", "last_seen")
"""`record`'s fields in docs/event.md's order."""

FORWARD_FIELDS = ("seq", "forwarded_at")
"""What the forwarder adds after the event's fields: the change sequence number of this emission in the
collector's store (higher for each emission; a receiver that sees one again after a crash may drop it), and
when the forwarder made the line (RFC 3339 UTC, milliseconds)."""


_decode = msgspec.json.Decoder()

# The documented fields as structs of unparsed values, in the documented order: decoding into them and encoding
# them again puts any event of known fields in that order, each value copied as it came. A field this collector
# does not know is refused (forbid_unknown_fields), and such an event takes the slower way that keeps it.
_UNSET = msgspec.field(default=msgspec.UNSET)
_KnownRecord = msgspec.defstruct("_KnownRecord", [(name, msgspec.Raw | msgspec.UnsetType, _UNSET)
                                                  for name in RECORD_FIELDS],
                                 forbid_unknown_fields=True, omit_defaults=True)
_KnownEvent = msgspec.defstruct("_KnownEvent", [(name, (_KnownRecord if name == "record" else msgspec.Raw)
                                                 | msgspec.UnsetType, _UNSET) for name in EVENT_FIELDS],
                                forbid_unknown_fields=True, omit_defaults=True)
_known = msgspec.json.Decoder(_KnownEvent)
_encode = msgspec.json.Encoder()


class Forwarded:
    """One event as forwarded."""

    __slots__ = ("seq", "body", "line", "_event")

    def __init__(self, seq: int, body: bytes, line: bytes) -> None:
        self.seq = seq
        """The change sequence number of the emission."""
        self.body = body
        """The event's JSON as stored."""
        self.line = line
        """Its JSON in the forwarded order, with FORWARD_FIELDS, on one line (no newline at the end)."""
        self._event: dict[str, Any] | None = None

    @property
    def event(self) -> dict[str, Any]:
        """The event as stored, parsed when first asked for."""
        if self._event is None:
            self._event = _decode.decode(self.body)
        return self._event


def forwarded_event(body: bytes | str, seq: int, forwarded_at: str) -> Forwarded:
    """The forwarded form of the event stored as `body` (its JSON text) under change sequence number `seq`.
    msgspec.DecodeError (a ValueError) if `body` is no JSON object.

    An event of known fields only (what every agent sends) is put in order through `_KnownEvent`, its values
    left unparsed: 2.7 µs an event where checking the order of the names of both levels took 4.7, and parsing
    the whole event made some sixty objects per event for the garbage collector to count."""
    raw = body.encode() if isinstance(body, str) else bytes(body)
    tail = b',"seq":%d,"forwarded_at":%s}' % (seq, _encode.encode(forwarded_at))
    if b"\n" not in raw and b"\r" not in raw:  # a line break between a value's tokens would end the line
        try:
            known = _known.decode(raw)
        except msgspec.ValidationError:  # a field this collector does not know, or not an event's shape
            pass
        else:
            encoded = _encode.encode(known)
            return Forwarded(seq, raw, encoded[:-1] + (tail if len(encoded) > 2 else tail.replace(b",", b"", 1)))
    event = _decode.decode(raw)
    if not isinstance(event, dict):
        raise msgspec.DecodeError("the stored event is no JSON object")
    ordered = _ordered(event, EVENT_FIELDS)
    if isinstance(ordered.get("record"), dict):
        ordered["record"] = _ordered(ordered["record"], RECORD_FIELDS)
    for name in FORWARD_FIELDS:  # ours, after everything: an event's own field of that name gives way
        ordered.pop(name, None)
    encoded = _encode.encode(ordered)
    return Forwarded(seq, raw, encoded[:-1] + (tail if ordered else tail.replace(b",", b"", 1)))


def rfc3339_ms(moment: dt.datetime) -> str:
    """`2026-12-03T17:00:00.123Z`: as the agent writes times."""
    moment = moment.astimezone(dt.timezone.utc)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def _ordered(fields: dict[str, Any], order: tuple[str, ...]) -> dict[str, Any]:
    ordered = {name: fields[name] for name in order if name in fields}
    ordered.update((name, value) for name, value in fields.items() if name not in ordered)
    return ordered
