"""What a forwarding target receives of one stored event: its JSON in the documented field order, followed by
the forwarder's own fields (docs/forwarding.md), on one line.

    forwarded = forwarded_event(change.body, change.seq, forwarded_at="2026-12-03T17:00:00.000Z")
    forwarded.line      # b'{"id":...,"record":{...},"seq":42,"forwarded_at":"..."}' (no newline)
    forwarded.event     # the event as a dict (for the syslog header and structured data)

The order is docs/event.md's (the agent's `schema()`): the event's fields, then any field this collector does
not know (in the order stored), then `seq` and `forwarded_at`. An event stored in that order already (what
every agent sends) is spliced as stored rather than encoded again: the forwarder's cost per event is one
parse.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

import msgspec

__all__ = ["EVENT_FIELDS", "FORWARD_FIELDS", "RECORD_FIELDS", "Forwarded", "forwarded_event", "rfc3339_ms"]

EVENT_FIELDS = ("id", "time", "type", "severity", "origin", "name", "description", "host", "source_ip",
                "source_namespace", "source_name", "source_name_aggr", "source_labels", "source_workload",
                "attack_vector", "mitre_ids", "mitre_tactic", "record")
"""The event's top-level fields in docs/event.md's order."""

RECORD_FIELDS = ("feeds", "suspicious_domains", "suspicious_ips", "matches", "qname", "qtype", "rcode",
                 "server_ip", "answers", "count", "first_seen", "last_seen")
"""`record`'s fields in docs/event.md's order."""

FORWARD_FIELDS = ("seq", "forwarded_at")
"""What the forwarder adds after the event's fields: the change sequence number of this emission in the
collector's store (higher for each emission; a receiver that sees one again after a crash may drop it), and
when the forwarder made the line (RFC 3339 UTC, milliseconds)."""

_decode = msgspec.json.Decoder()
_encode = msgspec.json.Encoder()


@dataclass(frozen=True, slots=True)
class Forwarded:
    """One event as forwarded."""

    seq: int
    """The change sequence number of the emission."""
    event: dict[str, Any]
    """The event as stored, parsed."""
    line: bytes
    """Its JSON in the forwarded order, with FORWARD_FIELDS, on one line (no newline at the end)."""


def forwarded_event(body: bytes | str, seq: int, forwarded_at: str) -> Forwarded:
    """The forwarded form of the event stored as `body` (its JSON text) under change sequence number `seq`.
    msgspec.DecodeError (a ValueError) if `body` is no JSON object."""
    raw = body.encode() if isinstance(body, str) else bytes(body)
    event = _decode.decode(raw)
    if not isinstance(event, dict):
        raise msgspec.DecodeError("the stored event is no JSON object")
    tail = b',"seq":%d,"forwarded_at":%s}' % (seq, _encode.encode(forwarded_at))
    if _in_order(event) and b"\n" not in raw and b"\r" not in raw:
        return Forwarded(seq, event, raw[:raw.rindex(b"}")] + tail)
    ordered = _ordered(event, EVENT_FIELDS)
    record = ordered.get("record")
    if isinstance(record, dict):
        ordered["record"] = _ordered(record, RECORD_FIELDS)
    for name in FORWARD_FIELDS:  # ours, after everything: an event's own field of that name gives way
        ordered.pop(name, None)
    encoded = _encode.encode(ordered)
    line = encoded[:-1] + (tail if ordered else tail.replace(b",", b"", 1))
    return Forwarded(seq, event, line)


def rfc3339_ms(moment: dt.datetime) -> str:
    """`2026-12-03T17:00:00.123Z`: as the agent writes times."""
    moment = moment.astimezone(dt.timezone.utc)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def _in_order(event: dict[str, Any]) -> bool:
    record = event.get("record")
    return (tuple(event) == EVENT_FIELDS and isinstance(record, dict) and tuple(record) == RECORD_FIELDS)


def _ordered(fields: dict[str, Any], order: tuple[str, ...]) -> dict[str, Any]:
    ordered = {name: fields[name] for name in order if name in fields}
    ordered.update((name, value) for name, value in fields.items() if name not in ordered)
    return ordered
