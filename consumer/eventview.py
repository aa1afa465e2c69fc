"""Events as `dnswatch events list|watch` shows them, and the times its filters take (pure).

`-o json` prints each event exactly as stored (docs/event.md); `-o table` is a compact view of the same event:
time, who asked (namespace/pod, or the client address when no pod was found), what was asked (and what
matched, in parentheses, when that was a CNAME target or an answer address rather than the question), which
feeds, how many times.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from dnswatch.durations import DURATION_FORMS, parse_duration

__all__ = ["TABLE_COLUMNS", "WIDE_COLUMNS", "parse_when", "table_row", "wide_row"]

TABLE_COLUMNS = ("TIME", "SOURCE", "QNAME", "FEEDS", "COUNT")
WIDE_COLUMNS = ("TIME", "SOURCE", "CLIENT", "QNAME", "QTYPE", "RCODE", "FEEDS", "LISTED", "COUNT", "NODE", "ID")
"""`-o wide`: the table's columns and the client's address, the question's type, the answer's code, where
each match is listed (`LISTED`: feed, version of its set and line, `c2@7:4711`, to find the entry in the feed
as it was), the node that reported it and the event's id (for `--resume-token`-free lookups in the store or a
log)."""


def parse_when(text: str, now: dt.datetime) -> dt.datetime:
    """An instant from an RFC 3339 time (`2026-11-27T20:11:36Z`, any offset) or a duration before `now`
    (`90s`, `15m`, `2h`, `1d`, `1w`, `1h30m`); ValueError with a message saying what is accepted."""
    text = text.strip()
    try:
        seconds = parse_duration(text, bare_number=False)  # a bare number could be seconds or a year: refused
    except ValueError:
        seconds = None
    if seconds is not None:
        try:
            return now - dt.timedelta(seconds=seconds)
        except OverflowError:  # past the year 1 (or past what a timedelta holds): no instant to filter on
            raise ValueError(f"{text!r} reaches back before the year 1: give a shorter duration or an RFC 3339 "
                             "time") from None
    try:
        moment = dt.datetime.fromisoformat(text)
    except ValueError:
        moment = None
    if moment is None or "T" not in text.upper() and " " not in text:
        raise ValueError(f"{text!r} is neither an RFC 3339 time (2026-11-27T20:00:00Z) nor a duration before "
                         f"now ({DURATION_FORMS})")
    if moment.tzinfo is None:
        raise ValueError(f"{text!r} has no timezone: add Z (UTC) or an offset such as +01:00")
    return moment


def table_row(event: dict[str, Any]) -> tuple[str, ...]:
    """The TABLE_COLUMNS cells of one event (missing fields show as `-`)."""
    record = event.get("record") if isinstance(event.get("record"), dict) else {}
    namespace = _text(event.get("source_namespace"))
    name = _text(event.get("source_name"))
    if name == "-" and _text(event.get("source_name_aggr")) != "-":
        name = _text(event.get("source_name_aggr"))  # aggregated by workload
    source = f"{namespace}/{name}" if name != "-" else _text(event.get("source_ip"))
    qname = _text(record.get("qname"))
    # What matched, when it is not the question itself (a CNAME target, an answer address), follows it.
    matched = [m for m in _texts(record.get("suspicious_domains")) + _texts(record.get("suspicious_ips"))
               if m != qname]
    if qname == "-" and matched:
        qname, matched = matched[0], matched[1:]
    if matched:
        qname += f" ({','.join(matched)})"
    feeds = ",".join(_texts(record.get("feeds"))) or "-"
    count = record.get("count")
    return (_short_time(_text(event.get("time"))), source, qname, feeds, str(count) if count is not None else "-")


def wide_row(event: dict[str, Any]) -> tuple[str, ...]:
    """The WIDE_COLUMNS cells of one event (missing fields show as `-`)."""
    record = event.get("record") if isinstance(event.get("record"), dict) else {}
    when, source, qname, feeds, count = table_row(event)
    return (when, source, _text(event.get("source_ip")), qname, _text(record.get("qtype")),
            _text(record.get("rcode")), feeds, _listed(record.get("matches")), count, _text(event.get("host")),
            _text(event.get("id")))


def _listed(matches: Any) -> str:
    """`c2@7:4711,ips@3`: per match, its feed, the version of the set it matched and the entry's line."""
    places = []
    for match in matches if isinstance(matches, list) else ():
        if not isinstance(match, dict) or not isinstance(match.get("feed"), str):
            continue
        place = match["feed"]
        if isinstance(match.get("feed_version"), str):
            place += "@" + match["feed_version"].removeprefix("sha256:")[:12]
            if isinstance(match.get("line"), int) and not isinstance(match.get("line"), bool):
                place += f":{match['line']}"
        if place not in places:
            places.append(place)
    return ",".join(places) or "-"


def _short_time(text: str) -> str:
    """Seconds are enough to read a table: `2026-11-27T20:11:36Z`."""
    try:
        moment = dt.datetime.fromisoformat(text)
    except ValueError:
        return text
    if moment.tzinfo is None:
        return text
    return moment.astimezone(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _text(value: Any) -> str:
    return value if isinstance(value, str) and value else "-"


def _texts(values: Any) -> list[str]:
    return [v for v in values if isinstance(v, str)] if isinstance(values, list) else []
