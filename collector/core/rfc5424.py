"""Syslog messages of forwarded events: RFC 5424's format, framed by octet counting (RFC 6587 section 3.4.1,
the framing RFC 5425 prescribes over TLS). Written here rather than taken from a library: the Python logging
handlers on PyPI are for log records, synchronous, and give no say over when bytes count as sent, and the
stdlib's SysLogHandler writes neither RFC 5424 nor TLS. docs/forwarding.md has the mapping.

    message = syslog_message(forwarded.body, forwarded.line, hostname="collector-0", procid="1")
    frame = octet_counted(message)      # b"612 <130>1 2026-11-27T20:11:53.309Z collector-0 dnswatch ..."

`<PRI>1 TIMESTAMP HOSTNAME APP-NAME PROCID MSGID [dnswatch@32473 ...] MSG`:

- PRI: facility local0 (16) × 8 + the syslog severity of the event's `severity` (`syslog_severity`);
- TIMESTAMP: the event's `record.last_seen` (the newest DNS transaction of this emission), else `time`;
- HOSTNAME: the collector's; APP-NAME `dnswatch`; PROCID the collector's process id; MSGID the event's `type`;
- STRUCTURED-DATA: one element `dnswatch@32473` (32473 is the example enterprise number of RFC 5612) with the
  event's `id`, `count`, `host`, `namespace`, `pod`, and a `feed` per feed, a `domain` per suspicious domain
  and an `ip` per suspicious address (RFC 5424 lets a parameter repeat);
- MSG: the forwarded JSON line, UTF-8 without a BOM (MSG-ANY: a BOM would be the first bytes a JSON parser
  sees).
"""

from __future__ import annotations

import re
from typing import Any

import msgspec

__all__ = ["APP_NAME", "FACILITY", "SD_ID", "octet_counted", "syslog_message", "syslog_severity"]

APP_NAME = "dnswatch"
SD_ID = "dnswatch@32473"
FACILITY = 16
"""local0: the facility a site routes its own applications' messages by."""

# RFC 5424's TIMESTAMP: FULL-DATE "T" FULL-TIME, at most 6 digits of fraction, Z or an offset.
_TIMESTAMP = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,6})?(Z|[+-]\d{2}:\d{2})")
_NOT_PRINTABLE = re.compile(r"[^!-~]")  # PRINTUSASCII is %d33-126


def syslog_severity(severity: Any) -> int:
    """The syslog severity (0 emergency ... 7 debug) of an event's `severity` (0-100, Calico's scale; dnswatch's
    events are 100): 80 and more critical (2), 60 error (3), 40 warning (4), 20 notice (5), less informational
    (6). A severity that is no number is a warning: the event is still a detection."""
    if isinstance(severity, bool) or not isinstance(severity, (int, float)):
        return 4
    for floor, level in ((80, 2), (60, 3), (40, 4), (20, 5)):
        if severity >= floor:
            return level
    return 6


class _Record(msgspec.Struct, gc=False):
    count: Any = None
    feeds: Any = None
    suspicious_domains: Any = None
    suspicious_ips: Any = None
    last_seen: Any = None


class _Fields(msgspec.Struct, gc=False):
    """What the header and the structured data take from an event: read alone, the rest of it skipped."""

    id: Any = None
    time: Any = None
    type: Any = None
    severity: Any = None
    host: Any = None
    source_namespace: Any = None
    source_name: Any = None
    record: _Record | None = None


class _FieldsWithOddRecord(_Fields, gc=False):
    record: Any = None


_read_fields = msgspec.json.Decoder(_Fields)
_read_odd = msgspec.json.Decoder(_FieldsWithOddRecord)


def syslog_message(body: bytes, msg: bytes, *, hostname: str, procid: str) -> bytes:
    """The RFC 5424 message of one event, stored as `body` (its JSON), whose forwarded JSON is `msg`."""
    try:
        event = _read_fields.decode(body)
    except msgspec.ValidationError:  # a `record` that is no object: the rest without it
        event = _read_odd.decode(body)
    record = event.record if isinstance(event.record, _Record) else _Record()
    pri = FACILITY * 8 + syslog_severity(event.severity)
    timestamp = next((value for value in (record.last_seen, event.time)
                      if isinstance(value, str) and _TIMESTAMP.fullmatch(value)), "-")
    header = " ".join((f"<{pri}>1", timestamp, _header_field(hostname, 255), APP_NAME, _header_field(procid, 128),
                       _header_field(str(event.type or ""), 32)))
    return f"{header} {_structured_data(event, record)} ".encode() + msg


def octet_counted(message: bytes) -> bytes:
    """The message framed for a stream: its length in octets, a space, the message (RFC 6587 3.4.1)."""
    return b"%d %s" % (len(message), message)


def _header_field(value: str, limit: int) -> str:
    """A header field as RFC 5424 allows it: printable US-ASCII, at most `limit` characters, `-` if empty."""
    cleaned = _NOT_PRINTABLE.sub("_", value)[:limit]
    return cleaned or "-"


def _structured_data(event: _Fields, record: _Record) -> str:
    params = [("id", event.id), ("count", record.count), ("host", event.host),
              ("namespace", event.source_namespace), ("pod", event.source_name)]
    for name, key in (("feed", "feeds"), ("domain", "suspicious_domains"), ("ip", "suspicious_ips")):
        values = getattr(record, key)
        if isinstance(values, list):
            params += [(name, value) for value in values]
    rendered = "".join(f' {name}="{_param_value(value)}"' for name, value in params if value is not None)
    return f"[{SD_ID}{rendered}]"


def _param_value(value: Any) -> str:
    # Inside PARAM-VALUE, '"', '\' and ']' are escaped with a backslash (RFC 5424 6.3.3).
    text = value if isinstance(value, str) else str(value)
    return text.replace("\\", "\\\\").replace('"', '\\"').replace("]", "\\]")
