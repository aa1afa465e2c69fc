"""GlobalThreatFeed body formats (`pull.http.format`), one module each, behind one lookup by name.

`parse_feed_body(body, content, fmt)` is what the agent's `--feed-manifest` and the collector's puller call;
every format returns the same `ParsedFeed` of canonical entries, whatever the body looked like.
"""

from __future__ import annotations

from collections.abc import Callable

from dnswatch.feeds.formats import csv_format, json_format, newline_format
from dnswatch.feeds.formats.base import NEWLINE_DELIMITED, CsvFormat, FeedFormat, JsonFormat, NewlineDelimitedFormat
from dnswatch.feeds.formats.jsonpath import JsonPathError, compile_json_path
from dnswatch.feeds.lines import CONTENTS, DEFAULT_MAX_BYTES, ParsedFeed

__all__ = [
    "NEWLINE_DELIMITED",
    "CsvFormat",
    "FeedFormat",
    "JsonFormat",
    "JsonPathError",
    "NewlineDelimitedFormat",
    "compile_json_path",
    "format_names",
    "parse_feed_body",
]

_PARSERS: dict[str, Callable[[bytes, str, FeedFormat, int], ParsedFeed]] = {
    NewlineDelimitedFormat.kind: newline_format.parse,
    JsonFormat.kind: json_format.parse,
    CsvFormat.kind: csv_format.parse,
}


def format_names() -> tuple[str, ...]:
    """The `pull.http.format` keys there is a parser for."""
    return tuple(_PARSERS)


def parse_feed_body(
    body: bytes, content: str, fmt: FeedFormat = NEWLINE_DELIMITED, max_bytes: int = DEFAULT_MAX_BYTES
) -> ParsedFeed:
    """The canonical entries of a feed body in format `fmt`, for `content` DomainNameSet or IPSet.

    Raises FeedError (`dnswatch.feeds.lines`) for a body that cannot be read at all; bad lines or values are
    counted in `rejected`.
    """
    if content not in CONTENTS:
        raise ValueError(f"content must be one of {', '.join(CONTENTS)}, not {content!r}")
    return _PARSERS[fmt.kind](body, content, fmt, max_bytes)
