"""GlobalThreatFeed body formats (`pull.http.format`), one module each, behind one lookup by name.

`parse_feed_body(body, content, fmt)` is what the agent's `--feed-manifest` and the collector's puller call;
every format returns the same `ParsedFeed` of canonical entries, whatever the body looked like. `now` is
when the body is read: a STIX indicator whose `valid_until` has passed gives no entry.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timezone

from dnswatch.feeds.formats import csv_format, json_format, jsonlines_format, misp_format, newline_format, stix_format
from dnswatch.feeds.formats.base import NEWLINE_DELIMITED, CsvFormat, FeedFormat, JsonFormat, JsonLinesFormat
from dnswatch.feeds.formats.base import MispFormat, NewlineDelimitedFormat, StixFormat
from dnswatch.feeds.formats.jsonpath import JsonPathError, compile_json_path
from dnswatch.feeds.lines import CONTENTS, DEFAULT_MAX_BYTES, ParsedFeed

__all__ = [
    "NEWLINE_DELIMITED",
    "CsvFormat",
    "FeedFormat",
    "JsonFormat",
    "JsonLinesFormat",
    "JsonPathError",
    "MispFormat",
    "NewlineDelimitedFormat",
    "StixFormat",
    "compile_json_path",
    "format_names",
    "parse_feed_body",
]

_PARSERS: dict[str, Callable[[bytes, str, FeedFormat, int, datetime], ParsedFeed]] = {
    NewlineDelimitedFormat.kind: newline_format.parse,
    JsonFormat.kind: json_format.parse,
    CsvFormat.kind: csv_format.parse,
    JsonLinesFormat.kind: jsonlines_format.parse,
    MispFormat.kind: misp_format.parse,
    StixFormat.kind: stix_format.parse,
}


def format_names() -> tuple[str, ...]:
    """The `pull.http.format` keys there is a parser for."""
    return tuple(_PARSERS)


def parse_feed_body(
    body: bytes,
    content: str,
    fmt: FeedFormat = NEWLINE_DELIMITED,
    max_bytes: int = DEFAULT_MAX_BYTES,
    now: datetime | None = None,
) -> ParsedFeed:
    """The canonical entries of a feed body in format `fmt`, for `content` DomainNameSet or IPSet, at `now`
    (None: the current time).

    Raises FeedError (`dnswatch.feeds.lines`) for a body that cannot be read at all; bad lines or values are
    counted in `rejected`.
    """
    if content not in CONTENTS:
        raise ValueError(f"content must be one of {', '.join(CONTENTS)}, not {content!r}")
    return _PARSERS[fmt.kind](body, content, fmt, max_bytes, now or datetime.now(timezone.utc))
