"""`newlineDelimited`: the line formats of SPEC §4, which `agent.core.feedlines` parses."""

from __future__ import annotations

from agent.core.feedformats.base import NewlineDelimitedFormat
from agent.core.feedlines import ParsedFeed, parse_lines


def parse(body: bytes, content: str, fmt: NewlineDelimitedFormat, max_bytes: int) -> ParsedFeed:
    return parse_lines(body, content, max_bytes)
