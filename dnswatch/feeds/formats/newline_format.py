"""`newlineDelimited`: the line formats of docs/feeds.md, which `dnswatch.feeds.lines` parses."""

from __future__ import annotations

from datetime import datetime

from dnswatch.feeds.formats.base import NewlineDelimitedFormat
from dnswatch.feeds.lines import ParsedFeed, parse_lines


def parse(body: bytes, content: str, fmt: NewlineDelimitedFormat, max_bytes: int, now: datetime) -> ParsedFeed:
    return parse_lines(body, content, max_bytes)
